"""Turn a batch of Kafka records into one atomic Redis step per chunk, exactly once.

The processor owns the worker's correctness and needs no Faust app (only Faust's error types,
to tell a Kafka failure from a bug): the agents hand it plain ``SourceRecord``s and acknowledge
them only after ``process`` returns, so Kafka's committed offset never passes what Redis holds.
Per partition, Redis keeps the offset of the last record applied (its mark); a record at or below it is skipped, so a restarted worker that re-reads
records is harmless. Event ids already seen within the dedupe window count nothing, so producer
retries and repeated replays are harmless too.

A partition's records are applied strictly in offset order with no gap: a record beyond the
mark + 1 is held back and its partition reported in ``BatchStats.gaps`` (the caller re-reads it
from the mark; Kafka's offsets of plain, uncompacted, non-transactional topics have no holes), except
at the position the consumer was moved to (``position``: after retention deleted offsets). So
records still in flight from before a move are dropped, never counted past a hole. Every step
names the state epoch it adds to, so nothing is added to a Redis that lost its state
(``StateLost`` goes up to the caller, who re-reads).

No record can stop the processor. Parsing never raises (``parse_record``); an event whose
effect cannot be computed is found among its chunk's and dead-lettered alone
(``internal_error``). Whatever else fails is either infrastructure (``is_transient``: the caller
retries) or not: then ``isolate`` applies the batch up to the record that fails, proves that
record fails alone, and quarantines it, so the next try dead-letters it and applies the rest.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

import aiokafka.errors
import kafka.errors
import redis
from faust.exceptions import ProducerSendError

from portflow.adapters import dead_letter_headers as header
from portflow.adapters.redis import RedisStore, StateConflict, StateLost
from portflow.adapters.redis.progress import RUN_REJECTIONS_KEPT
from portflow.config import Settings
from portflow.domain.aggregates import Increments
from portflow.domain.event_time import EventTimeGuard
from portflow.domain.events import Event, Rejection, batch_elements, internal_error, parse_record
from portflow.domain.partitions import partition_name
from portflow.domain.periods import LocalCalendar
from portflow.retry import Backoff, retry_async

log = logging.getLogger(__name__)

# Events per atomic Redis step: large enough to amortise the round trip, small enough that the
# script never blocks Redis for long.
MAX_EVENTS_PER_APPLY = 5000
# Steps sent to Redis and not yet answered: the next step waits in Redis while one runs, so Redis
# does not idle while the worker packs and sends it.
STEPS_IN_FLIGHT = 2
# Failures of the services the processor uses: retried, never blamed on a record.
INFRASTRUCTURE_ERRORS = (
    redis.RedisError,
    kafka.errors.KafkaError,
    aiokafka.errors.KafkaError,
    ProducerSendError,
    OSError,
    TimeoutError,
    asyncio.TimeoutError,
)
# A record is quarantined only after failing this many times on its own (then it is not chance).
FAULT_CONFIRMATIONS = 3


def is_transient(exc: BaseException) -> bool:
    """Whether a failure is the infrastructure's (Redis, Kafka, the network): retry it."""
    return isinstance(exc, INFRASTRUCTURE_ERRORS)


async def call_store_method(fn: Callable, *args):
    """Await a store method that is a coroutine (``apply``, on the event loop); run a blocking
    one in a thread, off the event loop."""
    if inspect.iscoroutinefunction(fn):
        return await fn(*args)
    return await asyncio.to_thread(fn, *args)


@dataclass(frozen=True, slots=True)
class SourceRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()  # as the producer set them
    # made once: the processor asks for it several times a record
    partition_name: str = field(init=False, repr=False, compare=False)
    run: str | None = field(init=False, repr=False, compare=False)  # ``replay_run``

    def __post_init__(self) -> None:
        object.__setattr__(self, "partition_name", partition_name(self.topic, self.partition))
        object.__setattr__(self, "run", replay_run(self.headers) if self.headers else None)


def replay_run(headers: tuple[tuple[str, bytes], ...]) -> str | None:
    """The replay run a record belongs to (its ``portflow-replay-run`` header), if it names one
    plausibly: a header from anyone may not make the worker write keys of any name or size."""
    for name, value in headers:
        if name == header.REPLAY_RUN and value and len(value) <= 64 and value.isascii():
            run = value.decode()
            if run.replace("-", "").replace("_", "").isalnum():
                return run
    return None


# The largest dead-letter value published whole: with its headers (at most the headroom) it stays
# under Kafka's default message size (1 MiB). A record just under that limit would not fit again
# once headers are added, and a letter that cannot be sent would stop its partition: it is cut,
# and says so (the source offset names the original).
MAX_DEAD_LETTER_BYTES = 1_000_000
DEAD_LETTER_HEADROOM = 1024 * 1024 - MAX_DEAD_LETTER_BYTES


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A rejected record or batch element, with where it came from and why."""

    source: SourceRecord
    rejection: Rejection

    def payload(self) -> tuple[bytes, list[tuple[str, bytes]]]:
        """The value and headers to publish."""
        raw, headers = self.rejection.raw, self.headers()
        if len(raw) > MAX_DEAD_LETTER_BYTES:
            headers.append((header.TRUNCATED_FROM, str(len(raw)).encode()))
            raw = raw[:MAX_DEAD_LETTER_BYTES]
        return raw, headers

    def headers(self) -> list[tuple[str, bytes]]:
        headers = [
            (header.REASON, self.rejection.reason.encode()),
            (header.CODE, self.rejection.code.encode()),
            (header.SOURCE_TOPIC, self.source.topic.encode()),
            (header.SOURCE_PARTITION, str(self.source.partition).encode()),
            (header.SOURCE_OFFSET, str(self.source.offset).encode()),
        ]
        if self.rejection.batch_index is not None:
            headers.append((header.BATCH_INDEX, str(self.rejection.batch_index).encode()))
        # a re-driven record rejected again: its letter names the letter it was re-driven from
        headers += [
            (name, value) for name, value in self.source.headers if name == header.REDRIVEN_FROM
        ]
        return headers


class DeadLetterSink(Protocol):
    async def __call__(self, letters: list[DeadLetter]) -> None:
        """Publish the letters and return once the broker has them all."""


@dataclass
class BatchStats:
    records: int = 0
    skipped_records: int = 0  # at or below the partition's high-water mark, or in flight
    # from before the consumer was moved
    applied_events: int = 0  # events whose effect was applied (each step hands them to on_applied)
    newest_event_s: float | None = None  # the newest event time among them
    duplicate_events: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    gaps: set[str] = field(default_factory=set)  # partitions whose next record was not there
    redis_write_seconds: list[float] = field(default_factory=list)  # one per atomic step

    def absorb(self, earlier: BatchStats) -> None:
        """Fold in an earlier call on a prefix of the same records (``isolate``): what that call
        handled, this one skipped as already applied."""
        self.skipped_records -= earlier.records - earlier.skipped_records
        self.applied_events += earlier.applied_events
        self.duplicate_events += earlier.duplicate_events
        self.rejections[:0] = earlier.rejections
        self.gaps |= earlier.gaps
        self.redis_write_seconds[:0] = earlier.redis_write_seconds
        if earlier.newest_event_s is not None:  # (an event time may be 0: compare with None)
            self.newest_event_s = (
                earlier.newest_event_s
                if self.newest_event_s is None
                else max(self.newest_event_s, earlier.newest_event_s)
            )


@dataclass
class _Parsed:
    record: SourceRecord
    events: list[Event]
    rejections: list[Rejection] = field(default_factory=list)  # the record's, when parsed
    rejected: frozenset[int] = frozenset()  # batch indices of the record's rejected elements

    def elements(self) -> list[tuple[bytes, int | None]]:
        """Per event, its bytes and its index in the batch (None: the whole record)."""
        value = self.record.value
        if not value.lstrip().startswith(b"["):
            return [(value, None)]
        elements = batch_elements(value)
        return [(elements[i], i) for i in range(len(elements)) if i not in self.rejected]

    def fault(self, position: int, exc: BaseException) -> Rejection:
        """The rejection of ``events[position]``, whose effect could not be computed."""
        raw, index = self.elements()[position]
        return internal_error(raw, exc, index)

    def keep_in_time(self, guard: EventTimeGuard, now: float) -> None:
        """Take out the events the guard rejects at ``now``, as rejections of the record."""
        low, high = guard.window(now)
        if all(low <= event.ts_seconds <= high for event in self.events):
            return
        kept, turned_away = [], []
        for event, (raw, index) in zip(self.events, self.elements()):  # (decoded once)
            judged = guard.judge(event.ts_seconds, now)
            if judged is None:
                kept.append(event)
            else:
                turned_away.append(Rejection(judged[1], judged[0], raw, index))
        self.events = kept
        self.rejections += turned_away
        self.rejected |= {r.batch_index for r in turned_away if r.batch_index is not None}


@dataclass
class _Step:
    """One chunk's atomic Redis step: what it expects, what it adds, and its reply."""

    chunk: list[_Parsed]
    marks: dict[str, tuple[int, int]]  # partition -> (expected mark, new mark)
    event_ids: list[tuple[str, str]]  # (type, id) of the events it counts
    increments: Increments
    fresh: list[Event]  # the events it counts (not duplicates)
    lines: list[tuple[str, str, str]] = field(default_factory=list)  # increments.lines()
    letters: list[DeadLetter] = field(default_factory=list)  # events whose sum failed
    duplicates: int = 0
    latest_event_s: float = 0.0  # the newest event time it counts
    started: float = 0.0
    reply: asyncio.Future | None = None


MAX_KEPT_REASON_CHARS = 300  # of a run's rejection kept in Redis


@dataclass
class StepOutcomes:
    """What a step did to its events, counted in the same atomic step (``Outcomes``): for the
    whole state (run None) and per replay run, with the first rejections of each run."""

    counts: dict[str | None, Counter] = field(default_factory=dict)
    rejections: dict[str, list[dict]] = field(default_factory=dict)

    @classmethod
    def of(cls, chunk: list[_Parsed], fresh: list[Event], duplicates: int) -> StepOutcomes:
        outcomes = cls({None: Counter(applied=len(fresh), duplicates=duplicates)})
        for parsed in chunk:
            for rejection in parsed.rejections:
                outcomes.counts[None][f"rejected:{rejection.code}"] += 1
        if any(parsed.record.run for parsed in chunk):
            outcomes._count_runs(chunk, fresh, duplicates)
        return outcomes

    def _count_runs(self, chunk: list[_Parsed], fresh: list[Event], duplicates: int) -> None:
        applied_ids = set(map(id, fresh)) if duplicates else None
        for parsed in chunk:
            run = parsed.record.run
            if run is None:
                continue
            counts = self.counts.setdefault(run, Counter())
            events = parsed.events
            applied = (
                len(events)
                if applied_ids is None
                else sum(id(event) in applied_ids for event in events)
            )
            counts["applied"] += applied
            counts["duplicates"] += len(events) - applied
            kept = self.rejections.setdefault(run, [])
            for rejection in parsed.rejections:
                counts[f"rejected:{rejection.code}"] += 1
                if len(kept) < RUN_REJECTIONS_KEPT:
                    kept.append(
                        {
                            "partition": parsed.record.partition_name,
                            "offset": parsed.record.offset,
                            "batch_index": rejection.batch_index,
                            "code": rejection.code,
                            "reason": rejection.reason[:MAX_KEPT_REASON_CHARS],
                        }
                    )


class Handoff:
    """Links a batch to the one before it, so that its CPU work overlaps the other's Redis time.

    A batch is prepared and sent while the batch before it is still in Redis, expecting the
    marks that batch's steps leave (``leaves``); its steps are collected only once that batch is
    through (``done``, set by the caller: applied and acknowledged, or given up). Redis checks
    every step's expected marks, so an expectation that proves wrong costs a retry of the step,
    never a wrong total. Made by the caller, one per batch, in order.
    """

    def __init__(self, previous: Handoff | None = None) -> None:
        self._previous = previous
        self.leaves: dict[str, int] = {}  # the marks once this batch's steps are applied
        self.positions = -1  # the processor's count of ``position`` calls when it was prepared
        self.sent = asyncio.Event()  # all this batch's steps are sent
        # a step was sent again (conflict, ids seen before): the next batch waits for this one,
        # or each batch would find the one before redone after it was sent, and be redone too
        self.redone = False
        self.done = asyncio.Event()

    def pending_previous(self) -> Handoff | None:
        """The batch before, if it is not through yet."""
        previous = self._previous
        if previous is not None and previous.done.is_set():
            previous = self._previous = None  # (no chain of finished batches is kept)
        return previous

    async def previous_done(self) -> None:
        previous = self.pending_previous()
        if previous is not None:
            await previous.done.wait()
            self._previous = None


class BatchProcessor:
    """Validates, deduplicates and aggregates records; applies each chunk in one Redis step."""

    def __init__(
        self,
        settings: Settings,
        store: RedisStore,
        dead_letters: DeadLetterSink,
        call_store: Callable[..., Awaitable] | None = None,
        retry_delay_s: float = 0.5,
        on_applied: Callable[[list[Event]], None] = lambda events: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.guard = EventTimeGuard(settings.max_event_ahead_s, settings.max_event_age_s)
        self.clock = clock  # the event-time guard's
        self.store = store
        self.dead_letters = dead_letters
        # told each step's events once they are in Redis (business metrics): per step, so that
        # a batch of many steps never holds all its events, and while the next step runs
        self.on_applied = on_applied
        self.event_type_of = settings.event_topics
        self.calendar = LocalCalendar(settings.tz)
        self._marks: dict[str, int] = {}
        self._resume_at: dict[str, int] = {}  # where the consumer was moved to, until reached
        self._positions = 0  # calls of ``position``: a batch prepared before one expects too much
        self.epoch: str | None = None
        self._call_store = call_store or call_store_method
        self._retry_delay_s = retry_delay_s
        # (partition, offset) -> the rejection of a record that failed on its own (``isolate``)
        self.quarantine: dict[tuple[str, int], Rejection] = {}

    async def process(
        self, records: list[SourceRecord], handoff: Handoff | None = None
    ) -> BatchStats:
        """Handle records in partition order; return once all their effects are in Redis.

        Chunks are pipelined: while Redis runs one chunk's step, the next is parsed, summed and
        sent, so Redis finds it queued when it is done (``STEPS_IN_FLIGHT``). Each step expects
        the marks the steps before it leave, and Redis checks them first: a step that arrives
        before its predecessor applied (or after one that found ids seen before) writes nothing
        and is prepared again once its predecessor is done. With a ``handoff``, the same holds
        across batches: the batch is prepared and sent while the one before it is in Redis, and
        ``handoff.sent`` tells the caller it may start the next. Raises ``StateLost`` when Redis
        lost the state.
        """
        stats = BatchStats(records=len(records))
        if self.epoch is None:
            await self.open_epoch()
        await self.load_marks({r.partition_name for r in records} - self._marks.keys())
        expected = await self._expected_before(handoff)  # the marks once the running steps apply
        fresh = self._in_order(records, stats.gaps, expected)
        stats.skipped_records = len(records) - len(fresh)

        running: deque[_Step] = deque()
        leaves: dict[str, int] = {}
        try:
            for chunk, letters in self._parsed_chunks(fresh):
                await self._send_letters(letters, stats)
                step = await self._prepared(chunk, expected, set(), stats)
                marks_after = {name: new for name, (_, new) in step.marks.items()}
                expected.update(marks_after)
                leaves.update(marks_after)
                while len(running) >= STEPS_IN_FLIGHT:
                    await self._complete(running.popleft(), stats, handoff)
                running.append(self._send(step))
                await asyncio.sleep(0)  # let the step's task send its call to Redis now
            if handoff is not None:
                previous = handoff.pending_previous()
                handoff.leaves = {**(previous.leaves if previous else {}), **leaves}
                handoff.positions = self._positions
                handoff.sent.set()
            while running:
                await self._complete(running.popleft(), stats, handoff)
        finally:
            for step in running:  # after an error: their outcome is checked by the next try
                step.reply.cancel()
        return stats

    async def _expected_before(self, handoff: Handoff | None) -> dict[str, int]:
        """The marks the batch's first step expects: those the batch before it leaves while it
        is in Redis, unless that batch was redone or the consumer was moved since it was sent
        (then this one waits for it)."""
        previous = handoff.pending_previous() if handoff is not None else None
        if previous is None:
            return dict(self._marks)
        if previous.sent.is_set() and not previous.redone and previous.positions == self._positions:
            return {**self._marks, **previous.leaves}
        await handoff.previous_done()
        return dict(self._marks)

    async def _send_letters(self, letters: list[DeadLetter], stats: BatchStats) -> None:
        """Published before the step that moves the high-water mark past them: a crash in
        between re-sends them (at least once) rather than losing them."""
        if letters:
            await self.dead_letters(letters)
            stats.rejections += [letter.rejection for letter in letters]

    def _parsed_chunks(self, records: list[SourceRecord]):
        """Parse records as they are needed: runs of whole records holding at most
        ``MAX_EVENTS_PER_APPLY`` events (or one record), with their dead letters."""
        chunk: list[_Parsed] = []
        letters: list[DeadLetter] = []
        size = 0
        now = self.clock()
        for record in records:
            quarantined = self.quarantine and self.quarantine.get(
                (record.partition_name, record.offset)
            )
            if quarantined:
                events, rejections = [], [quarantined]
            else:
                events, rejections = parse_record(record.value, self.event_type_of[record.topic])
            parsed = _Parsed(record, events)
            if rejections:  # (rare: a record's cost counts for single-event records)
                parsed.rejections = rejections
                parsed.rejected = frozenset(
                    r.batch_index for r in rejections if r.batch_index is not None
                )
            parsed.keep_in_time(self.guard, now)
            if chunk and size + len(parsed.events) > MAX_EVENTS_PER_APPLY:
                yield chunk, letters
                chunk, letters, size = [], [], 0
            letters += [DeadLetter(record, r) for r in parsed.rejections]
            chunk.append(parsed)
            size += len(parsed.events)
        if chunk:
            yield chunk, letters

    async def _prepared(
        self,
        chunk: list[_Parsed],
        expected: dict[str, int],
        known_seen: set[tuple[str, str]],
        stats: BatchStats,
    ) -> _Step:
        """``_prepare``, with the letters of events whose sum failed sent first."""
        step = self._prepare(chunk, expected, known_seen)
        await self._send_letters(step.letters, stats)
        return step

    def _prepare(
        self, chunk: list[_Parsed], expected: dict[str, int], known_seen: set[tuple[str, str]]
    ) -> _Step:
        """Sum a chunk's increments in memory; ids in ``known_seen`` count as duplicates. If
        that raises, the events it raises for are taken out of their records (each becomes an
        ``internal_error`` letter of the step) and the rest is summed again."""
        try:
            return self._sum(chunk, expected, set(known_seen))
        except Exception:
            letters = self._take_out_faults(chunk)
            step = self._sum(chunk, expected, set(known_seen))
            step.letters = letters
            return step

    def _take_out_faults(self, chunk: list[_Parsed]) -> list[DeadLetter]:
        """The events of ``chunk`` whose effect cannot be computed, each tried alone."""
        letters = []
        for parsed in chunk:
            kept = []
            for position, event in enumerate(parsed.events):
                try:
                    trial = Increments(self.calendar)
                    trial.add([event])
                    list(trial.lines())
                except Exception as exc:
                    log.error(
                        "%s@%d: the effect of event %r cannot be computed (%s: %s); "
                        "dead-lettered as internal_error",
                        parsed.record.partition_name,
                        parsed.record.offset,
                        event.event_id,
                        type(exc).__name__,
                        exc,
                    )
                    letters.append(DeadLetter(parsed.record, parsed.fault(position, exc)))
                else:
                    kept.append(event)
            faults = [letter.rejection for letter in letters if letter.source is parsed.record]
            parsed.events = kept
            parsed.rejections += faults
            parsed.rejected |= {r.batch_index for r in faults if r.batch_index is not None}
        return letters

    def _sum(
        self, chunk: list[_Parsed], expected: dict[str, int], known_seen: set[tuple[str, str]]
    ) -> _Step:
        step = _Step(chunk, {}, [], Increments(self.calendar), [])
        for p in chunk:
            name = p.record.partition_name
            first = step.marks.get(name, (expected[name], 0))[0]
            step.marks[name] = (first, p.record.offset)  # records come in offset order
        events = [event for p in chunk for event in p.events]
        keys = [(event.type, event.event_id) for event in events]
        unique = set(keys)  # (a set against a set: isdisjoint goes over the smaller, no rehashing)
        if len(unique) == len(keys) and known_seen.isdisjoint(unique):  # no duplicates: as a rule
            step.event_ids, step.fresh = keys, events
        else:
            for key, event in zip(keys, events):
                if key in known_seen:
                    step.duplicates += 1
                    continue
                known_seen.add(key)  # later copies in this chunk are duplicates
                step.event_ids.append(key)
                step.fresh.append(event)
        step.increments.add(step.fresh)
        step.lines = list(step.increments.lines())
        return step

    def _send(self, step: _Step) -> _Step:
        """Start the step's atomic Redis call (a task); ``_complete`` collects it."""
        step.started = time.perf_counter()
        step.latest_event_s = max((e.ts_seconds for e in step.fresh), default=0.0)
        outcomes = StepOutcomes.of(step.chunk, step.fresh, step.duplicates)
        step.reply = asyncio.ensure_future(
            self.run_with_retries(
                self.store.apply,
                step.marks,
                step.event_ids,
                step.lines,
                self.settings.dedupe_ttl_seconds,
                math.floor(step.latest_event_s) if step.fresh else None,
                self.epoch,
                outcomes.counts,
                outcomes.rejections,
            )
        )
        return step

    async def _complete(self, step: _Step, stats: BatchStats, handoff: Handoff | None) -> None:
        """Wait for a sent step, once the batch before is through; on a conflict or ids seen
        before, apply its chunk again."""
        if handoff is not None:
            await handoff.previous_done()  # (its steps are noted first: marks only move forward)
        known_seen: set[tuple[str, str]] = set()
        while True:
            try:
                outcome = await step.reply
            except StateConflict as conflict:
                # another worker moved a partition, or the step before this one was redone
                log.debug("%s; re-reading marks", conflict)
                outcome = None
            else:
                stats.redis_write_seconds.append(time.perf_counter() - step.started)
                if outcome.applied:
                    self._note_applied(step, stats)
                    return
            if handoff is not None:
                handoff.redone = True  # (said before anything else may run)
            if outcome is None:
                await self.load_marks(set(step.marks))
                known_seen = set()
            else:
                # Some ids were seen before: leave them out and try again. ``known_seen``
                # keeps them out; the rest of the chunk stays as it was.
                known_seen = set(outcome.seen) | (known_seen - set(step.event_ids))
            # (marks may have been dropped meanwhile: Redis state lost, partition re-read)
            await self.load_marks(
                {p.record.partition_name for p in step.chunk} - self._marks.keys()
            )
            chosen = set(
                map(id, self._in_order([p.record for p in step.chunk], stats.gaps, self._marks))
            )
            chunk = [p for p in step.chunk if id(p.record) in chosen]
            if not chunk:
                return
            step = self._send(await self._prepared(chunk, self._marks, set(known_seen), stats))

    def _note_applied(self, step: _Step, stats: BatchStats) -> None:
        for name, (_, new) in step.marks.items():
            self._marks[name] = new
            if self._resume_at.get(name, new + 1) <= new:
                del self._resume_at[name]
        if self.quarantine:  # a quarantined record the step passed is on the DLQ now
            for key in [
                k for k in self.quarantine if k[0] in step.marks and k[1] <= step.marks[k[0]][1]
            ]:
                del self.quarantine[key]
        if step.fresh:
            stats.applied_events += len(step.fresh)
            newest = stats.newest_event_s
            stats.newest_event_s = (
                step.latest_event_s if newest is None else max(newest, step.latest_event_s)
            )
            try:
                self.on_applied(step.fresh)
            except Exception:
                log.exception("counting the metrics of %d applied events failed", len(step.fresh))
        stats.duplicate_events += step.duplicates

    def _in_order(
        self, records: list[SourceRecord], gaps: set[str], marks: dict[str, int]
    ) -> list[SourceRecord]:
        """The records that continue their partition's mark in ``marks`` without a hole;
        partitions where the next record is missing go in ``gaps``."""
        chosen = []
        next_at: dict[str, int] = {}
        for record in records:
            name = record.partition_name
            want = next_at.get(name)
            if want is None:
                want = marks[name] + 1
                if record.offset == self._resume_at.get(name):
                    want = record.offset
            if record.offset == want:
                chosen.append(record)
                next_at[name] = want + 1
            elif record.offset > want and name not in self._resume_at:
                gaps.add(
                    name
                )  # (while a move is pending, later records are in flight from before it)
        return chosen

    async def isolate(
        self, records: list[SourceRecord], failure: BaseException, probes: list[BatchStats]
    ) -> SourceRecord | None:
        """``process(records)`` raised ``failure``, not the infrastructure's: apply the longest
        prefix of the batch that succeeds (a bisection; the marks make re-running safe), then
        try the next record alone until it has failed ``FAULT_CONFIRMATIONS`` times and
        quarantine it: the next ``process`` dead-letters it as ``internal_error``. Returns that
        record, or None if it passed alone (the failure was not its). The stats of the calls
        that applied something go to ``probes``. Transient failures meanwhile propagate."""
        good, bad = 0, len(records)  # records[:good] are applied; records[:bad] fail
        while bad - good > 1:
            middle = (good + bad) // 2
            fault = await self._try(records[:middle], probes)
            if fault is None:
                good = middle
            else:
                bad, failure = middle, fault
        suspect = records[good]
        for attempt in range(FAULT_CONFIRMATIONS):
            fault = await self._try([suspect], probes)
            if fault is None:
                return None
            failure = fault
            await asyncio.sleep(self._retry_delay_s * attempt)
        log.error(
            "%s@%d fails on its own (%s: %s): dead-lettered as internal_error",
            suspect.partition_name,
            suspect.offset,
            type(failure).__name__,
            failure,
        )
        self.quarantine[(suspect.partition_name, suspect.offset)] = internal_error(
            suspect.value, failure
        )
        return suspect

    async def _try(self, records: list[SourceRecord], probes: list[BatchStats]) -> Exception | None:
        """``process(records)``, its stats added to ``probes``; the failure if it raised one
        that is not the infrastructure's (those, and ``StateLost``, propagate)."""
        try:
            probes.append(await self.process(records))
            return None
        except StateLost:
            raise
        except Exception as exc:
            if is_transient(exc):
                raise
            return exc

    async def open_epoch(self) -> None:
        """Join the state Redis holds now, starting one if it is empty. (Once only: a worker
        that sees its epoch gone restarts, see ``streams.positioning``.)"""
        while True:
            epoch = await self.run_with_retries(self.store.open_epoch, self.settings.tz_name)
            if epoch is not None:
                self.epoch = epoch
                return
            log.warning("Redis state is being dropped (portflow rebuild); waiting")
            await asyncio.sleep(self._retry_delay_s)

    def position(self, name: str, mark: int, resume_at: int) -> None:
        """The consumer of ``<topic>:<partition>`` is moved to ``resume_at``; Redis' mark is
        ``mark``. Records in flight from before the move are dropped until it is reached."""
        self._marks[name] = mark
        self._resume_at[name] = resume_at
        self._positions += 1

    async def load_marks(self, names: Iterable[str]) -> None:
        """(Re)read the high-water marks of these partitions from Redis."""
        names = sorted(names)
        if names:
            self._marks.update(await self.run_with_retries(self.store.marks_of, names))

    def mark(self, name: str) -> int | None:
        """The last offset applied for ``<topic>:<partition>``, as far as this worker knows."""
        return self._marks.get(name)

    async def run_with_retries(self, fn, *args):
        """Call a store method (``call_store``), retrying while Redis is unreachable."""
        return await retry_async(
            lambda: self._call_store(fn, *args),
            (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError),
            Backoff(self._retry_delay_s, 10.0),
            lambda exc, delay: log.error("Redis unavailable (%s); retrying in %.1fs", exc, delay),
        )
