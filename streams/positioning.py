"""Where the worker reads each partition from: right after what Redis holds, never from Kafka's
committed offset alone.

Redis' marks say what was applied; Kafka's committed offsets only say what some worker
acknowledged. The two part when Redis loses its state (restarted empty, or ``portflow rebuild``)
or when a topic is deleted and created again (a broker that lost its data): then the committed
offsets would skip events or the marks would hide new ones. So the worker seeks every partition
it is assigned to the mark + 1 (Faust's "seek to committed" of every rebalance, replaced), and
restarts itself, to do that again, when it sees while running that

- the state epoch in Redis is not the one it adds to: a new state begins, and as it has no marks,
  all partitions are read again from the beginning (Kafka still holds the events);
- a topic's Kafka id is not the one the marks were made on: that topic's marks are dropped and
  its partitions are read again from the beginning;
- a partition's next offset did not come (Kafka's retention deleted it under a lagging worker).

A restart, not an in-place seek, because Faust keeps records in flight in several places (its
read offsets would drop the re-read records); a clean stop and start costs a rebalance, for
events that happen rarely.

Where Kafka's retention already deleted offsets that were never applied, the worker starts at
the earliest offset left, records the lost range in Redis (``portflow report`` refuses to pretend
the totals are complete) and logs an error.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import faust
from faust.types import TP

from portflow.adapters.redis import RedisStore
from portflow.config import Settings
from portflow.domain.partitions import partition_name
from streams.intake import batching_consumer
from streams.processor import BatchProcessor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StartPoint:
    offset: int  # where to read from
    lost: tuple[int, int] | None = None  # first and last offset deleted before being applied


def start_point(mark: int, earliest: int) -> StartPoint:
    """Read from the mark + 1 (mark -1: nothing applied), or from the earliest offset Kafka still
    holds when retention deleted what came after the mark."""
    if mark + 1 >= earliest:
        return StartPoint(mark + 1)
    return StartPoint(earliest, (mark + 1, earliest - 1))


TopicIds = Callable[[], Mapping[str, tuple[str, int]]]  # topic -> (Kafka topic id, partitions)


class Positioner:
    """Seeks the Faust consumer to the Redis marks, on assignment and when state changes."""

    def __init__(
        self,
        app: faust.App,
        settings: Settings,
        store: RedisStore,
        processor: BatchProcessor,
        topic_ids: TopicIds,
        on_lost: Callable[[str, int], None] = lambda topic, count: None,
    ) -> None:
        self.app = app
        self.settings = settings
        self.store = store
        self.processor = processor
        self._topic_ids = topic_ids
        self._on_lost = on_lost
        self._known_ids: dict[str, str] = {}
        self.restart_reason: str | None = None

    def install(self) -> None:
        """Make Faust's "seek to committed" (every rebalance) seek to the marks instead."""
        consumer = batching_consumer(self.app)
        seek_to_committed = consumer.seek_to_committed

        async def seek_to_marks() -> Mapping[TP, int]:
            committed = dict(await seek_to_committed())
            try:
                targets = await self._targets(self._assigned())
                await consumer.seek_wait(targets)
            except Exception as exc:
                # Faust logs a failed seek and goes on without positions, and those partitions
                # would never be read (seen after a broker restart: the earliest offsets timed
                # out). A new process positions them from the start of its assignment.
                self.request_restart(f"could not position the partitions ({exc!r})")
                raise
            committed.update(targets)
            return committed

        # Faust offers no hook: this consumer's method is replaced.
        consumer.seek_to_committed = seek_to_marks  # type: ignore[method-assign]

    def _assigned(self) -> list[TP]:
        return [
            tp for tp in self.app.consumer.assignment() if tp.topic in self.settings.event_topics
        ]

    async def _targets(self, tps: Iterable[TP]) -> dict[TP, int]:
        """Where each partition should be read from; tells the processor."""
        tps = sorted(tps)
        if not tps:
            return {}
        await self.check_topics()
        names = [partition_name(tp.topic, tp.partition) for tp in tps]
        marks = await self.processor.run_with_retries(self.store.marks_of, names)
        earliest = await self.app.consumer.earliest_offsets(*tps)
        targets = {}
        for tp, name in zip(tps, names, strict=True):
            point = start_point(marks[name], earliest.get(tp) or 0)
            if point.lost:
                first, last = point.lost
                log.error(
                    "Kafka deleted offsets %d-%d of %s before they were applied "
                    "(retention): the totals undercount them; re-publish those events "
                    "from their source (README, Operations)",
                    first,
                    last,
                    name,
                )
                await self.processor.run_with_retries(self.store.record_lost, name, first, last)
                self._on_lost(tp.topic, last - first + 1)
            self.processor.position(name, marks[name], point.offset)
            targets[tp] = point.offset
        return targets

    def request_restart(self, why: str) -> None:
        """Stop this worker cleanly and start it again (``streams.worker`` re-executes it): the
        new process positions every partition from the marks, with no record of the old
        position in flight. Used for the rare events that move the start point while running."""
        if self.restart_reason is None:
            self.restart_reason = why
            log.warning("%s: restarting the worker to re-read from the marks in Redis", why)
            os.kill(os.getpid(), signal.SIGTERM)

    async def check(self) -> None:
        """Periodic: is Redis still at our state epoch, and are the topics the ones the marks
        were made on?"""
        if self.processor.epoch is None:
            return  # not started yet: the first assignment joins the state Redis holds
        epoch = await self.processor.run_with_retries(self.store.epoch)
        if epoch != self.processor.epoch:
            self.request_restart(f"Redis state epoch {self.processor.epoch} is gone")
        changed = await self.check_topics()
        if changed:
            self.request_restart(f"topic(s) {', '.join(changed)} were deleted and created again")

    async def check_topics(self) -> list[str]:
        """Tie the marks to the topics' Kafka ids; return the topics that changed since last seen
        (their marks are dropped). Best effort: a broker that cannot be asked changes nothing."""
        try:
            ids = await asyncio.to_thread(self._topic_ids)
        except Exception as exc:
            log.warning("could not read the topic ids from Kafka: %s", exc)
            return []
        changed = []
        for topic, (topic_id, partitions) in ids.items():
            outcome = await self.processor.run_with_retries(
                self.store.adopt_topic_id, topic, topic_id, partitions
            )
            if outcome == "recreated":
                log.warning(
                    "topic %s has a new id (%s): it was deleted and created again; its "
                    "partitions are counted from their start",
                    topic,
                    topic_id,
                )
            known = self._known_ids.get(topic)
            if known is not None and known != topic_id:
                changed.append(topic)
            self._known_ids[topic] = topic_id
        return changed
