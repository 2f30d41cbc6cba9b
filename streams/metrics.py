"""Prometheus metrics of the worker, served on PORTFLOW_METRICS_ADDR (127.0.0.1 by default).

Labels are bounded: event types, rejection codes (``events.REJECTION_CODES``). Every labelled
series starts at 0 so that rates and alerts see it before the first event.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from portflow.domain.events import EVENT_TYPES, REJECTION_CODES
from streams.processor import BatchStats


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.applied = Counter(
            "portflow_events_applied_total", "Events applied to the aggregates.", ["type"],
            registry=self.registry)
        self.duplicates = Counter(
            "portflow_events_duplicate_total",
            "Events skipped because their event_id was seen within the dedupe window.", ["type"],
            registry=self.registry)
        self.rejected = Counter(
            "portflow_events_rejected_total",
            "Events and records rejected to the dead-letter topic, by reason.", ["type", "reason"],
            registry=self.registry)
        self.skipped_records = Counter(
            "portflow_records_redelivered_total",
            "Records at or below their partition's high-water mark (already applied).", ["type"],
            registry=self.registry)
        self.batch_seconds = Histogram(
            "portflow_batch_processing_seconds", "Time to validate and apply one take of records.",
            ["type"], registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
        for event_type in EVENT_TYPES:
            for metric in (self.applied, self.duplicates, self.skipped_records):
                metric.labels(event_type)
            self.batch_seconds.labels(event_type)
            for code in REJECTION_CODES:
                self.rejected.labels(event_type, code)

    def observe(self, event_type: str, stats: BatchStats, seconds: float) -> None:
        self.applied.labels(event_type).inc(stats.applied_events)
        self.duplicates.labels(event_type).inc(stats.duplicate_events)
        self.skipped_records.labels(event_type).inc(stats.skipped_records)
        for rejection in stats.rejections:
            self.rejected.labels(event_type, rejection.code).inc()
        self.batch_seconds.labels(event_type).observe(seconds)

    def serve(self, host: str, port: int) -> None:
        start_http_server(port, addr=host, registry=self.registry)
