"""The batch processor: records in, their effects in Redis exactly once (the terms: the
package's docstring)."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from portflow.adapters.redis import ApplyOutcome, StateConflict, StateLost
from portflow.config import Settings
from portflow.domain.event_time import EventTimeGuard
from portflow.domain.events import Event, Rejection, internal_error
from portflow.domain.periods import LocalCalendar
from portflow.services.processing import steps
from portflow.services.processing.faults import (
    Quarantine,
    find_failing_record,
    forget_passed,
    is_store_failure,
)
from portflow.services.processing.handoff import Handoff, expected_marks
from portflow.services.processing.marks import PartitionMarks
from portflow.services.processing.records import DeadLetter, DeadLetterSink, SourceRecord
from portflow.services.processing.steps import Chunk, EventKey, Step, StepOutcomes, prepare_step
from portflow.services.processing.store import Store, retried

log = logging.getLogger(__name__)

T = TypeVar("T")

# Steps sent to Redis and not yet answered: the next step waits in Redis while one runs, so Redis
# does not idle while the worker packs and sends it.
STEPS_IN_FLIGHT = 2


@dataclass
class BatchStats:
    records: int = 0
    skipped_records: int = 0  # at or below the partition's mark, or in flight
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


class BatchProcessor:
    """Validates, deduplicates and aggregates records; applies each chunk in one Redis step.

    ``is_transient`` tells the infrastructure's failures (retried by the caller) from a record's
    (isolated); by default, the store's and the network's.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        dead_letters: DeadLetterSink,
        *,
        is_transient: Callable[[BaseException], bool] = is_store_failure,
        retry_delay_s: float = 0.5,
        on_applied: Callable[[list[Event]], None] = lambda events: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.guard = EventTimeGuard(settings.max_event_ahead_s, settings.max_event_age_s)
        self.clock = clock  # the event-time guard's
        self.store = store
        self.dead_letters = dead_letters
        self.is_transient = is_transient
        # told each step's events once they are in Redis (business metrics): per step, so that
        # a batch of many steps never holds all its events, and while the next step runs
        self.on_applied = on_applied
        self.event_type_of = settings.event_topics
        self.calendar = LocalCalendar(settings.tz)
        self.marks = PartitionMarks()
        self.epoch: str | None = None
        self._retry_delay_s = retry_delay_s
        self.quarantine: Quarantine = {}

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
        await self.load_marks(self.marks.unknown({r.partition_name for r in records}))
        expected = await expected_marks(handoff, self.marks)  # once the running steps apply
        in_order = self.marks.in_order(records, stats.gaps, expected)
        stats.skipped_records = len(records) - len(in_order)

        running: deque[tuple[Step, asyncio.Task[ApplyOutcome]]] = deque()
        leaves: dict[str, int] = {}
        try:
            now = self.clock()
            for chunk, letters in steps.parsed_chunks(
                in_order, self.event_type_of, self.guard, now, self.quarantine
            ):
                await self._send_letters(letters, stats)
                step = await self._prepare(chunk, expected, set(), stats)
                step_leaves = step.leaves()
                expected.update(step_leaves)
                leaves.update(step_leaves)
                while len(running) >= STEPS_IN_FLIGHT:
                    await self._complete(*running.popleft(), stats, handoff)
                running.append((step, self._send(step)))
                await asyncio.sleep(0)  # let the step's task send its call to Redis now
            if handoff is not None:
                handoff.all_sent(leaves, self.marks.moves)
            while running:
                await self._complete(*running.popleft(), stats, handoff)
        finally:
            for _, reply in running:  # after an error: their outcome is checked by the next try
                reply.cancel()
        return stats

    async def _send_letters(self, letters: list[DeadLetter], stats: BatchStats) -> None:
        """Published before the step that moves the mark past them: a crash in between re-sends
        them (at least once) rather than losing them."""
        if letters:
            await self.dead_letters(letters)
            stats.rejections += [letter.rejection for letter in letters]

    async def _prepare(
        self, chunk: Chunk, expected: dict[str, int], seen_before: set[EventKey], stats: BatchStats
    ) -> Step:
        """``prepare_step``, with the letters of events whose sum failed sent first."""
        step = prepare_step(chunk, expected, seen_before, self.calendar)
        await self._send_letters(step.letters, stats)
        return step

    def _send(self, step: Step) -> asyncio.Task[ApplyOutcome]:
        """Start the step's atomic Redis call (a task, its reply); ``_complete`` collects it."""
        step.started = time.perf_counter()
        step.latest_event_s = max((e.ts_seconds for e in step.counted), default=0.0)
        outcomes = StepOutcomes.of(step)
        epoch = self.epoch
        if epoch is None:
            raise RuntimeError("a step sent before the state's epoch was opened")
        return asyncio.ensure_future(
            self.retried(
                lambda: self.store.apply(
                    step.marks,
                    step.event_ids,
                    step.lines,
                    self.settings.dedupe_ttl_seconds,
                    math.floor(step.latest_event_s) if step.counted else None,
                    epoch,
                    outcomes.counts,
                    outcomes.rejections,
                )
            )
        )

    async def _complete(
        self,
        step: Step,
        reply: asyncio.Task[ApplyOutcome],
        stats: BatchStats,
        handoff: Handoff | None,
    ) -> None:
        """Wait for a sent step, once the batch before is through; on a conflict or ids seen
        before, apply its chunk again."""
        if handoff is not None:
            await handoff.previous_done()  # (its steps are noted first: marks only move forward)
        seen_before: set[EventKey] = set()
        while True:
            seen: list[EventKey] | None  # None: a conflict
            try:
                outcome = await reply
            except StateConflict as conflict:
                # another worker moved a partition, or the step before this one was redone
                log.debug("%s; re-reading marks", conflict)
                seen = None
            else:
                stats.redis_write_seconds.append(time.perf_counter() - step.started)
                if outcome.applied:
                    self._note_applied(step, stats)
                    return
                seen = outcome.seen
            if handoff is not None:
                handoff.redone = True  # (said before anything else may run)
            if seen is None:
                await self.load_marks(set(step.marks))
                seen_before = set()
            else:
                # Some ids were seen before: leave them out and try again. ``seen_before``
                # keeps them out; the rest of the chunk stays as it was.
                seen_before = set(seen) | (seen_before - set(step.event_ids))
            # (marks may have been dropped meanwhile: Redis state lost, partition re-read)
            await self.load_marks(self.marks.unknown({p.record.partition_name for p in step.chunk}))
            marks = self.marks.copy()
            chosen = set(
                map(id, self.marks.in_order([p.record for p in step.chunk], stats.gaps, marks))
            )
            chunk = [p for p in step.chunk if id(p.record) in chosen]
            if not chunk:
                return
            step = await self._prepare(chunk, marks, set(seen_before), stats)
            reply = self._send(step)

    def _note_applied(self, step: Step, stats: BatchStats) -> None:
        for name, (_, new) in step.marks.items():
            self.marks.advance(name, new)
        if self.quarantine:
            forget_passed(self.quarantine, step.marks)
        if step.counted:
            stats.applied_events += len(step.counted)
            newest = stats.newest_event_s
            stats.newest_event_s = (
                step.latest_event_s if newest is None else max(newest, step.latest_event_s)
            )
            try:
                self.on_applied(step.counted)
            except Exception:
                log.exception("counting the metrics of %d applied events failed", len(step.counted))
        stats.duplicate_events += step.duplicates

    async def isolate(
        self, records: list[SourceRecord], failure: BaseException, probes: list[BatchStats]
    ) -> SourceRecord | None:
        """``process(records)`` raised ``failure``, not the infrastructure's: find the record
        that fails alone (``find_failing_record``) and quarantine it, so the next ``process``
        dead-letters it as ``internal_error``. Returns that record, or None if it passed alone
        (the failure was not its). The stats of the calls that applied something go to
        ``probes``. Transient failures meanwhile propagate."""

        async def attempt(prefix: list[SourceRecord]) -> Exception | None:
            return await self._try(prefix, probes)

        found = await find_failing_record(records, failure, attempt, self._retry_delay_s)
        if found is None:
            return None
        suspect, failure = found
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
            if self.is_transient(exc):
                raise
            return exc

    async def open_epoch(self) -> None:
        """Join the state Redis holds now, starting one if it is empty. (Once only: a worker
        that sees its epoch gone restarts, see ``streams.positioning``.)"""
        tz_name = self.settings.tz_name
        while True:
            epoch = await self.retried(lambda: self.store.open_epoch(tz_name))
            if epoch is not None:
                self.epoch = epoch
                return
            log.warning("Redis state is being dropped (portflow rebuild); waiting")
            await asyncio.sleep(self._retry_delay_s)

    def position(self, name: str, mark: int, resume_at: int) -> None:
        """The consumer of ``<topic>:<partition>`` is moved to ``resume_at``; Redis' mark is
        ``mark``. Records in flight from before the move are dropped until it is reached."""
        self.marks.move(name, mark, resume_at)

    async def load_marks(self, names: Iterable[str]) -> None:
        """(Re)read the marks of these partitions from Redis."""
        ordered = sorted(names)
        if ordered:
            self.marks.read(await self.retried(lambda: self.store.marks_of(ordered)))

    def mark(self, name: str) -> int | None:
        """The last offset applied for ``<topic>:<partition>``, as far as this worker knows."""
        return self.marks.get(name)

    async def retried(self, call: Callable[[], Awaitable[T]]) -> T:
        """``await call()`` (a store call), again while Redis is unreachable."""
        return await retried(call, self._retry_delay_s)
