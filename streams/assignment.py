"""What a worker does about the partitions it owns, besides reading them: announce them in
Redis (``R:worker:<id>``), load their marks after each rebalance, export their progress and lag,
refresh the lost-offsets, YoY and throughput-drop gauges, and check that Redis and the topics are
still the ones the marks refer to. Side duties: none of them may stop processing."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable
from typing import Any, TypeVarTuple

import faust
from faust.types import TP

from portflow.adapters.redis import RedisStore
from portflow.config import Settings
from portflow.domain.partitions import partition_name
from streams.drops import DropCollector
from streams.intake import batching_consumer
from streams.metrics import LostOffsetsCollector, WorkerMetrics
from streams.positioning import Positioner
from streams.processor import BatchProcessor
from streams.yoy import YoyCollector

log = logging.getLogger(__name__)
Ts = TypeVarTuple("Ts")

RENEW_S = 5.0  # announcement, lost offsets, state check and progress, this often
YOY_REFRESH_S = 15.0  # at most this often; costly refreshes are spaced further (streams.yoy)
DROPS_REFRESH_S = 5.0  # each refresh judges at most two months of newly complete days


async def best_effort(what: str, fn: Callable[[*Ts], object], *args: *Ts) -> None:
    """Run a blocking side duty in a thread; log, never raise, when it fails."""
    try:
        await asyncio.to_thread(fn, *args)
    except Exception as exc:
        log.warning("could not %s: %s", what, exc)


class AssignmentTracker:
    def __init__(
        self,
        app: faust.App,
        settings: Settings,
        store: RedisStore,
        processor: BatchProcessor,
        positioner: Positioner,
        metrics: WorkerMetrics,
        yoy: YoyCollector,
        lost: LostOffsetsCollector,
        drops: DropCollector,
    ) -> None:
        self.app, self.settings, self.store = app, settings, store
        self.processor, self.positioner, self.metrics = processor, positioner, metrics
        self.yoy, self.lost, self.drops = yoy, lost, drops
        self.worker_id = f"{socket.gethostname()}-{os.getpid()}"
        self.ttl_s = max(15, settings.session_timeout_s * 3)
        # the worker that owns it exports the YoY gauges (one worker only: see streams.yoy)
        self.yoy_partition = partition_name(settings.topic("shipment"), 0)
        self.tps: list[TP] = []  # the event topics' partitions owned
        self.owned: list[str] = []  # their names

    def install(self) -> None:
        # mode types a handler as taking any arguments; Faust sends the assigned set alone
        self.app.on_partitions_assigned.connect(self.on_assigned)  # type: ignore[arg-type]
        self.app.timer(interval=RENEW_S)(self.renew)
        self.app.timer(interval=YOY_REFRESH_S)(self.refresh_yoy)
        self.app.timer(interval=DROPS_REFRESH_S)(self.refresh_drops)

    async def on_assigned(self, sender: faust.App, assigned: set[TP], **kwargs: Any) -> None:
        self.tps = [tp for tp in assigned if tp.topic in self.settings.event_topics]
        self.owned = sorted(partition_name(tp.topic, tp.partition) for tp in self.tps)
        log.info("assigned %d partitions", len(self.owned))
        self.metrics.set_partitions(self.owned)
        self.yoy.active = self.drops.active = self.yoy_partition in self.owned
        await self._announce()
        if self.processor.epoch is None:
            await self.processor.open_epoch()
        await self.processor.load_marks(self.owned)
        if self.yoy.active:
            await best_effort("refresh the YoY gauges", self.yoy.refresh_if_due)

    async def renew(self) -> None:
        await self._announce()
        await best_effort("read the lost offsets", self.lost.refresh)
        try:
            await self.positioner.check()
        except Exception as exc:
            log.warning("could not check the Redis state and the topics: %s", exc)
        for tp in list(self.tps):
            name = partition_name(tp.topic, tp.partition)
            self.metrics.set_progress(name, self.processor.mark(name), self.highwater(tp))

    async def refresh_yoy(self) -> None:
        if self.yoy.active:
            await best_effort("refresh the YoY gauges", self.yoy.refresh_if_due, self.behind())

    async def refresh_drops(self) -> None:
        if self.drops.active:
            await best_effort(
                "judge the days for throughput drops", self.drops.refresh_if_due, self.behind()
            )

    async def _announce(self) -> None:
        await best_effort(
            "announce the assignment",
            self.store.record_worker,
            self.worker_id,
            list(self.owned),
            self.ttl_s,
        )

    def highwater(self, tp: TP) -> int | None:
        """The end offset of ``tp`` (Kafka's high watermark, the next offset) as the consumer heard
        it, None if unknown: also in the moment after a rebalance when the consumer's assignment
        is newer than ``tps`` (aiokafka asserts that the partition is assigned; a timer that
        raised would stop the worker)."""
        try:
            return batching_consumer(self.app).highwater(tp)
        except AssertionError:
            return None

    def behind(self) -> bool:
        """More than ten batches of this worker's records wait (by the consumer's end offsets):
        a backlog or a replay, which a costly YoY refresh would slow down. (A worker keeping up
        holds up to two batches, and more are in flight between Kafka and Redis at high rates.)"""
        waiting = 0
        for tp in list(self.tps):
            high = self.highwater(tp)
            applied = self.processor.mark(partition_name(tp.topic, tp.partition))
            if high is not None and applied is not None:
                waiting += max(0, high - 1 - applied)
        return waiting > 10 * self.settings.batch_records
