"""Turn a batch of Kafka records into one atomic Redis step per chunk, exactly once.

The processor owns the worker's correctness and knows nothing of Faust: the agents hand it plain
``SourceRecord``s and acknowledge them only after ``process`` returns, so Kafka's committed offset
never passes what Redis holds. Per partition, Redis keeps the offset of the last record applied
(its high-water mark); a record at or below it is skipped, so a restarted worker that re-reads
records is harmless. Event ids already seen within the dedupe window count nothing, so producer
retries and repeated replays are harmless too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Iterable, Optional, Protocol

import redis

from portflow.adapters.redis_store import RedisStore, StateConflict
from portflow.config import Settings
from portflow.domain.aggregates import Increments
from portflow.domain.events import Event, Rejection, parse_record
from portflow.domain.periods import LocalCalendar

log = logging.getLogger(__name__)

# Events per atomic Redis step: large enough to amortise the round trip, small enough that the
# script never blocks Redis for long.
MAX_EVENTS_PER_APPLY = 5000


@dataclass(frozen=True, slots=True)
class SourceRecord:
    topic: str
    partition: int
    offset: int
    key: Optional[bytes]
    value: bytes

    @property
    def mark_name(self) -> str:
        return f"{self.topic}:{self.partition}"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A rejected record or batch element, with where it came from and why."""

    source: SourceRecord
    rejection: Rejection

    def headers(self) -> list[tuple[str, bytes]]:
        headers = [
            ("portflow-reason", self.rejection.reason.encode()),
            ("portflow-reason-code", self.rejection.code.encode()),
            ("portflow-source-topic", self.source.topic.encode()),
            ("portflow-source-partition", str(self.source.partition).encode()),
            ("portflow-source-offset", str(self.source.offset).encode()),
        ]
        if self.rejection.batch_index is not None:
            headers.append(("portflow-batch-index", str(self.rejection.batch_index).encode()))
        return headers


class DeadLetterSink(Protocol):
    async def __call__(self, letters: list[DeadLetter]) -> None:
        """Publish the letters and return once the broker has them all."""


@dataclass
class BatchStats:
    records: int = 0
    skipped_records: int = 0  # at or below the partition's high-water mark
    applied: list[Event] = field(default_factory=list)  # events whose effect was applied
    duplicate_events: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    redis_write_seconds: list[float] = field(default_factory=list)  # one per atomic step

    @property
    def applied_events(self) -> int:
        return len(self.applied)


@dataclass
class _Parsed:
    record: SourceRecord
    events: list[Event]


class BatchProcessor:
    """Validates, deduplicates and aggregates records; applies each chunk in one Redis step."""

    def __init__(
        self,
        settings: Settings,
        store: RedisStore,
        dead_letters: DeadLetterSink,
        run_blocking: Callable[..., Awaitable] | None = None,
        retry_delay_s: float = 0.5,
    ) -> None:
        self.settings = settings
        self.store = store
        self.dead_letters = dead_letters
        self.event_type_of = settings.event_topics
        self.calendar = LocalCalendar(settings.tz)
        self._marks: dict[str, int] = {}
        self._run_blocking = run_blocking or asyncio.to_thread
        self._retry_delay_s = retry_delay_s

    async def process(self, records: list[SourceRecord]) -> BatchStats:
        """Handle records in partition order; return once all their effects are in Redis."""
        stats = BatchStats(records=len(records))
        await self.load_marks({r.mark_name for r in records} - self._marks.keys())
        fresh = [r for r in records if r.offset > self._marks[r.mark_name]]
        stats.skipped_records = len(records) - len(fresh)

        parsed: list[_Parsed] = []
        letters: list[DeadLetter] = []
        for record in fresh:
            events, rejections = parse_record(record.value, self.event_type_of[record.topic])
            parsed.append(_Parsed(record, events))
            letters += [DeadLetter(record, r) for r in rejections]
        if letters:
            # Published before the step that moves the high-water mark past them: a crash in
            # between re-sends them (at least once) rather than losing them.
            await self.dead_letters(letters)
            stats.rejections = [letter.rejection for letter in letters]

        for chunk in _chunks(parsed, MAX_EVENTS_PER_APPLY):
            await self._apply_chunk(chunk, stats)
        return stats

    async def _apply_chunk(self, chunk: list[_Parsed], stats: BatchStats) -> None:
        """Apply one chunk atomically; retry on conflicts and on Redis outages."""
        known_seen: set[str] = set()
        while True:
            chunk = [p for p in chunk if p.record.offset > self._marks[p.record.mark_name]]
            if not chunk:
                return
            marks = {}
            for p in chunk:
                name = p.record.mark_name
                marks[name] = (self._marks[name], p.record.offset)  # records come in offset order
            increments = Increments(self.calendar)
            seen_keys: list[str] = []
            fresh: list[Event] = []
            duplicates = 0
            for p in chunk:
                for event in p.events:
                    key = self.store.seen_key(event.type, event.event_id)
                    if key in known_seen:
                        duplicates += 1
                        continue
                    known_seen.add(key)  # later copies in this chunk are duplicates
                    seen_keys.append(key)
                    fresh.append(event)
                    increments.add(event)
            started = time.perf_counter()
            try:
                latest = int(max((e.ts_seconds for e in fresh), default=0))
                outcome = await self._with_retries(
                    self.store.apply, marks, seen_keys, list(increments.per_measure()),
                    self.settings.dedupe_ttl_seconds, latest,
                )
            except StateConflict as conflict:
                log.info("another worker moved a partition (%s); re-reading marks", conflict)
                await self.load_marks(set(marks))
                known_seen.clear()
                continue
            stats.redis_write_seconds.append(time.perf_counter() - started)
            if outcome.applied:
                for name, (_, new) in marks.items():
                    self._marks[name] = new
                stats.applied += fresh
                stats.duplicate_events += duplicates
                return
            # Some ids were seen before: leave them out and try again. ``known_seen`` keeps
            # them out; the rest of the chunk stays as it was.
            known_seen = {seen_keys[i] for i in outcome.seen} | (known_seen - set(seen_keys))

    async def load_marks(self, names: Iterable[str]) -> None:
        """(Re)read the high-water marks of these partitions from Redis."""
        names = sorted(names)
        if names:
            self._marks.update(await self._with_retries(self.store.high_water_marks_of, names))

    def applied_offset(self, name: str) -> int | None:
        """The last offset applied for ``<topic>:<partition>``, as far as this worker knows."""
        return self._marks.get(name)

    async def _with_retries(self, fn, *args):
        """Run a blocking Redis call off the event loop, retrying while Redis is unreachable."""
        delay = self._retry_delay_s
        while True:
            try:
                return await self._run_blocking(fn, *args)
            except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError) as exc:
                log.error("Redis unavailable (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)


def _chunks(parsed: list[_Parsed], max_events: int) -> Iterable[list[_Parsed]]:
    """Consecutive runs of whole records holding at most ``max_events`` events (or one record)."""
    chunk: list[_Parsed] = []
    size = 0
    for p in parsed:
        if chunk and size + len(p.events) > max_events:
            yield chunk
            chunk, size = [], 0
        chunk.append(p)
        size += len(p.events)
    if chunk:
        yield chunk
