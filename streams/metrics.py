"""Prometheus metrics of the worker, served on PORTFLOW_METRICS_ADDR (127.0.0.1 by default).

Pipeline metrics say how the worker is doing; business counters count what it applied, at
processing time, for rates and alerts; the YoY gauges (``streams.yoy``) are by event time.
Labels are bounded: event types, rejection codes, enumerations of the contract, and ports —
the first ``MAX_PORTS`` port codes a worker sees keep their name, later ones count as
``_other``. Every labelled series starts at 0, so rates and alerts see it before its first event.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from portflow.adapters.redis import RedisStore
from portflow.domain.aggregates import cell_values_and_amounts
from portflow.domain.events import (
    CUSTOMS_STATUSES,
    EVENT_TYPES,
    MODES,
    REJECTION_CODES,
    SHIPMENT_DIRECTIONS,
    TRAIN_DIRECTIONS,
    TRAIN_SERVICES,
    Customs,
    Event,
)
from portflow.domain.live_time import lag_seconds
from portflow.domain.measures import unit_scale
from portflow.domain.partitions import split_partition_name
from portflow.services.processing import BatchStats

MAX_PORTS = 64
# A cell's first values (``cell_values_and_amounts``): the event type, then the values of its
# labels, which never reach a shipment's zones (its last value, a tuple).
CellPrefix = tuple[str | tuple[str, ...], ...]
# Declarations whose filing time is remembered for the clearance-time histogram, per worker.
MAX_PENDING_DECLARATIONS = 200_000


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        # Declared in this order, which is the order of /metrics.
        self._declare_event_outcomes(self.registry)
        self._declare_batch_timings(self.registry)
        self._declare_partition_progress(self.registry)
        self._declare_business_counters(self.registry)
        self._index_business_counters()
        self.offsets_lost = Counter(
            "portflow_offsets_lost_total",
            "Offsets Kafka deleted (retention) before they were applied: an undercount.",
            ["type"],
            registry=self.registry,
        )
        self._ports: set[str] = set()
        # (type, port label, labels...) -> its counters' children: ``labels()`` is slow
        self._business_children: dict[tuple[str, ...], list[tuple[Counter, int]]] = {}
        self._filed: dict[str, float] = {}
        self._start_event_series_at_zero()

    def _declare_event_outcomes(self, r: CollectorRegistry) -> None:
        """What became of the events and records of each type: applied, skipped, rejected."""
        self.applied = Counter(
            "portflow_events_applied_total",
            "Events applied to the aggregates.",
            ["type"],
            registry=r,
        )
        self.duplicates = Counter(
            "portflow_events_duplicate_total",
            "Events skipped because their event_id was seen within the dedupe window.",
            ["type"],
            registry=r,
        )
        self.rejected = Counter(
            "portflow_events_rejected_total",
            "Events and records rejected to the dead-letter topic, by reason.",
            ["type", "reason"],
            registry=r,
        )
        self.redelivered = Counter(
            "portflow_records_redelivered_total",
            "Records at or below their partition's mark (last offset applied): already applied.",
            ["type"],
            registry=r,
        )

    def _declare_batch_timings(self, r: CollectorRegistry) -> None:
        """How long batches and Redis steps take, how big batches are, how late events are."""
        self.batch_seconds = Histogram(
            "portflow_batch_processing_seconds",
            "Time to validate, deduplicate and apply one batch of records.",
            ["type"],
            registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.batch_events = Histogram(
            "portflow_batch_events",
            "Events in one batch of records.",
            ["type"],
            registry=r,
            buckets=(1, 10, 50, 100, 500, 1000, 5000, 10000, 50000, 100000),
        )
        self.redis_seconds = Histogram(
            "portflow_redis_write_seconds",
            "Time of one atomic Redis step (a chunk of events).",
            registry=r,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
        )
        self.event_time_lag = Gauge(
            "portflow_event_time_lag_seconds",
            "Processing time minus the newest event time of the last batch; 0 when that event "
            "is ahead of the clock (never negative).",
            ["type"],
            registry=r,
        )

    def _declare_partition_progress(self, r: CollectorRegistry) -> None:
        """Where each owned partition stands: its mark, its lag, batches retried, records
        waiting."""
        self.mark = Gauge(
            "portflow_applied_offset",
            "Offset of the last record applied (the partition's mark), per partition.",
            ["topic", "partition"],
            registry=r,
        )
        self.consumer_lag = Gauge(
            "portflow_consumer_lag_records",
            "Records after the partition's mark, up to its end offset (Kafka's high watermark, the "
            "next offset) as fetch responses report it.",
            ["topic", "partition"],
            registry=r,
        )
        self.partitions = Gauge(
            "portflow_worker_partitions", "Partitions this worker owns.", ["topic"], registry=r
        )
        self.retrying = Gauge(
            "portflow_batches_retrying",
            "Batches of records being retried after a failure (Redis or Kafka away, or a fault "
            "being isolated), per event type.",
            ["type"],
            registry=r,
        )
        self.unapplied = UnappliedAgeCollector()
        r.register(self.unapplied)

    def _declare_business_counters(self, r: CollectorRegistry) -> None:
        """What the events applied carried, per port: the business counters (processing time),
        and the clearance time of declarations (event time)."""
        self._declare_shipment_counters(r)
        self.trains = Counter(
            "portflow_trains_total", "Trains applied.", ["port", "service", "direction"], registry=r
        )
        self.teu = Counter(
            "portflow_train_teu_total",
            "TEU carried by the trains applied.",
            ["port", "service", "direction"],
            registry=r,
        )
        self.declarations = Counter(
            "portflow_customs_declarations_total",
            "Customs status changes applied.",
            ["port", "status"],
            registry=r,
        )
        self.clearance = Histogram(
            "portflow_customs_clearance_seconds",
            "Time from a declaration's filing to its release (event time).",
            ["port"],
            registry=r,
            buckets=(600, 1800, 3600, 7200, 14400, 28800, 43200, 86400, 172800, 345600, 604800),
        )

    def _declare_shipment_counters(self, r: CollectorRegistry) -> None:
        self.value = Counter(
            "portflow_trade_value_yuan_total",
            "Trade value applied, in yuan.",
            ["port", "mode", "direction"],
            registry=r,
        )
        self.weight = Counter(
            "portflow_cargo_weight_tonnes_total",
            "Cargo weight applied, in tonnes.",
            ["port", "mode", "direction"],
            registry=r,
        )
        self.shipments = Counter(
            "portflow_shipments_total",
            "Shipments applied.",
            ["port", "mode", "direction"],
            registry=r,
        )

    def _index_business_counters(self) -> None:
        """Per event type: how many of its cell values are labels (the type first, then the
        first of ``CELL_LAYOUT``), and the counters of its amounts (``STORED_MEASURES`` order)
        with their scale to the unit."""
        self._business = {
            "shipment": (
                4,
                (
                    (self.value, unit_scale("shipment", "value")),
                    (self.weight, unit_scale("shipment", "weight")),
                    (self.shipments, 1),
                ),
            ),
            "train": (4, ((self.trains, 1), (self.teu, 1))),
            "customs": (3, ((self.declarations, 1),)),
        }

    def _start_event_series_at_zero(self) -> None:
        """Every series labelled by event type (and rejection code) exists from the start."""
        for event_type in EVENT_TYPES:
            for metric in (
                self.applied,
                self.duplicates,
                self.redelivered,
                self.batch_seconds,
                self.batch_events,
                self.offsets_lost,
                self.retrying,
            ):
                metric.labels(event_type)
            for code in REJECTION_CODES:
                self.rejected.labels(event_type, code)

    def port(self, code: str) -> str:
        """The port label: its code, while fewer than MAX_PORTS are known; then ``_other``."""
        if code in self._ports:
            return code
        if len(self._ports) >= MAX_PORTS:
            return "_other"
        self._ports.add(code)
        for mode in MODES:  # a port's series start at 0 as soon as it is known
            for direction in SHIPMENT_DIRECTIONS:
                for counter in (self.value, self.weight, self.shipments):
                    counter.labels(code, mode, direction)
        for service in TRAIN_SERVICES:
            for direction in TRAIN_DIRECTIONS:
                self.trains.labels(code, service, direction)
                self.teu.labels(code, service, direction)
        for status in CUSTOMS_STATUSES:
            self.declarations.labels(code, status)
        self.clearance.labels(code)
        return code

    def observe(self, event_type: str, stats: BatchStats, seconds: float) -> None:
        self.applied.labels(event_type).inc(stats.applied_events)
        self.duplicates.labels(event_type).inc(stats.duplicate_events)
        self.redelivered.labels(event_type).inc(stats.skipped_records)
        for rejection in stats.rejections:
            self.rejected.labels(event_type, rejection.code).inc()
        self.batch_seconds.labels(event_type).observe(seconds)
        self.batch_events.labels(event_type).observe(
            stats.applied_events + stats.duplicate_events + len(stats.rejections)
        )
        for write in stats.redis_write_seconds:
            self.redis_seconds.observe(write)
        if stats.newest_event_s is not None:
            self.event_time_lag.labels(event_type).set(
                lag_seconds(time.time(), stats.newest_event_s)
            )

    def count_applied(self, events: list[Event]) -> None:
        """The business counters of events applied (a step's): their amounts are summed per
        label set first, so each counter moves once per step. (A label set's amounts are
        gathered, then summed column by column: a step's events share a few label sets.)"""
        gathered: dict[CellPrefix, list[tuple[int, ...]]] = {}
        business = self._business
        for e in events:
            values, amounts = cell_values_and_amounts(e)
            key = values[: business[values[0]][0]]
            if isinstance(e, Customs):
                self._observe_clearance(e)
            label_set = gathered.get(key)
            if label_set is None:
                gathered[key] = [amounts]
            else:
                label_set.append(amounts)
        for prefix, label_set in gathered.items():
            event_type, port, *labels = cast(tuple[str, ...], prefix)  # (labels: no zones)
            totals = map(sum, zip(*label_set, strict=True))
            label_values = (event_type, self.port(port), *labels)
            children = self._business_children.get(label_values)
            if children is None:  # (bounded: port labels are, and the rest are enumerations)
                children = self._business_children[label_values] = [
                    (counter.labels(*label_values[1:]), scale)
                    for counter, scale in self._business[event_type][1]
                ]
            for (child, scale), amount in zip(children, totals, strict=True):
                child.inc(amount / scale if scale > 1 else amount)

    def _observe_clearance(self, e: Customs) -> None:
        if e.status == "filed":
            if len(self._filed) >= MAX_PENDING_DECLARATIONS:
                self._filed.pop(next(iter(self._filed)))  # forget the oldest
            self._filed[e.declaration_id] = e.ts_seconds
        elif e.status == "released":
            filed: float | None = self._filed.pop(e.declaration_id, None)
            if filed is not None and e.ts_seconds >= filed:
                self.clearance.labels(self.port(e.port)).observe(e.ts_seconds - filed)

    def count_lost_offsets(self, event_type: str, count: int) -> None:
        self.offsets_lost.labels(event_type).inc(count)

    def batch_retrying(self, event_type: str, retrying: bool) -> None:
        self.retrying.labels(event_type).set(1 if retrying else 0)

    def records_pending(self, names: list[str]) -> None:
        """Records of these partitions were handed to the processor (``<topic>:<partition>``)."""
        self.unapplied.pending(names)

    def records_done(self, names: list[str]) -> None:
        """Those records are applied (or the worker gave them up: a rebalance, a stop)."""
        self.unapplied.done(names)

    def set_partitions(self, owned: list[str]) -> None:
        """The partitions owned after a rebalance (``<topic>:<partition>``)."""
        self.unapplied.owned = list(owned)
        self.partitions.clear()
        self.mark.clear()
        self.consumer_lag.clear()
        for name in owned:
            topic, _ = split_partition_name(name)
            self.partitions.labels(topic).inc()

    def set_progress(self, name: str, applied: int | None, end_offset: int | None) -> None:
        topic, partition = split_partition_name(name)
        if applied is not None:
            self.mark.labels(topic, partition).set(applied)
        if end_offset is not None:
            done = applied + 1 if applied is not None else 0
            self.consumer_lag.labels(topic, partition).set(max(0, end_offset - done))

    def serve(self, host: str, port: int) -> None:
        start_http_server(port, addr=host, registry=self.registry)


class LostOffsetsCollector(Collector):
    """``portflow_offsets_lost_recorded``: the offsets Redis records as deleted by Kafka before
    they were applied, per event type. Unlike the counter it survives a worker's restart (a
    worker restarts right after it finds a gap, often before any scrape), and it stays up for as
    long as ``portflow report`` refuses the incomplete totals. Read by ``refresh`` (the worker's
    timer), not at the scrape: a Redis that hangs must not hang /metrics."""

    NAME = "portflow_offsets_lost_recorded"

    def __init__(self, store: RedisStore, event_topics: dict[str, str]) -> None:
        self.store = store
        self.event_topics = event_topics
        self.counts: dict[str, int] | None = None  # None until read once

    def refresh(self) -> None:
        """Read the record from Redis (blocking: run it off the event loop)."""
        counts = dict.fromkeys(EVENT_TYPES, 0)
        for name, spans in self.store.lost_offsets().items():
            event_type = self.event_topics.get(split_partition_name(name)[0])
            if event_type:
                counts[event_type] += sum(last - first + 1 for first, last in spans)
        self.counts = counts

    def describe(self) -> Iterator[Metric]:
        yield self._family()

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(
            self.NAME,
            "Offsets recorded as deleted by Kafka before they were applied (retention): the "
            "totals undercount them.",
            labels=["type"],
        )

    def collect(self) -> Iterator[Metric]:
        gauge = self._family()
        for event_type, count in (self.counts or {}).items():
            gauge.add_metric([event_type], count)
        yield gauge


class DataDirCollector(Collector):
    """``portflow_data_dir_bytes{part="kafka|redis"}``: what ``portflow up --data`` keeps on
    disk (Kafka's log grows with every event, as its retention keeps them all), and the free and
    whole size of the file system it is on, to alert before it fills. Measured at the scrape: a
    walk of a few hundred files."""

    PARTS = ("kafka", "redis")
    NAMES = (
        "portflow_data_dir_bytes",
        "portflow_data_dir_free_bytes",
        "portflow_data_dir_filesystem_bytes",
    )

    def __init__(self, data_dir: str) -> None:
        self.root = Path(data_dir)

    def describe(self) -> Iterator[Metric]:
        yield from self._families()

    def _families(self) -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        used, free, whole = self.NAMES
        return (
            GaugeMetricFamily(
                used,
                "Bytes on disk under the data directory, by part (Kafka's log, Redis' files).",
                labels=["part"],
            ),
            GaugeMetricFamily(
                free, "Bytes free for an unprivileged user on the data directory's file system."
            ),
            GaugeMetricFamily(whole, "Size of the data directory's file system."),
        )

    def collect(self) -> Iterator[Metric]:
        used, free, whole = self._families()
        for part in self.PARTS:
            used.add_metric([part], tree_bytes(self.root / part))
        try:
            disk = os.statvfs(self.root)
            free.add_metric([], disk.f_bavail * disk.f_frsize)
            whole.add_metric([], disk.f_blocks * disk.f_frsize)
        except OSError:
            pass  # not there (yet): no sample rather than a false zero
        yield from (used, free, whole)


def tree_bytes(root: Path) -> int:
    """Bytes allocated on disk to the files under ``root`` (0 if it is missing)."""
    total = 0
    for directory, _, files in os.walk(root):
        for name in files:
            with contextlib.suppress(OSError):  # deleted meanwhile (a Kafka segment, an AOF)
                total += os.stat(os.path.join(directory, name)).st_blocks * 512
    return total


class UnappliedAgeCollector(Collector):
    """``portflow_oldest_unapplied_record_age_seconds``: per owned partition, how long the
    oldest record handed to the processor has waited to be applied (0 when none waits). It
    grows while a batch is retried: a stalled partition shows even when its lag does not."""

    NAME = "portflow_oldest_unapplied_record_age_seconds"

    def __init__(self) -> None:
        self.owned: list[str] = []
        self._since: dict[str, float] = {}

    def pending(self, names: list[str]) -> None:
        now = time.monotonic()
        for name in names:
            self._since.setdefault(name, now)

    def done(self, names: list[str]) -> None:
        for name in names:
            self._since.pop(name, None)

    def describe(self) -> Iterator[Metric]:
        yield self._family()

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(
            self.NAME,
            "Seconds the oldest record handed to the processor has waited to be "
            "applied, per partition (0: none waits).",
            labels=["topic", "partition"],
        )

    def collect(self) -> Iterator[Metric]:
        gauge, now = self._family(), time.monotonic()
        for name in sorted(set(self.owned) | set(self._since)):
            topic, partition = split_partition_name(name)
            since = self._since.get(name)
            gauge.add_metric([topic, str(partition)], 0.0 if since is None else now - since)
        yield gauge
