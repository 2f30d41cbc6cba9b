"""Micro-benchmark of the worker's pure core on the batched path: no Kafka, no Redis, no Faust.

    python -m bench.core [--events N] [--repeat R] [--ordered] [--json] [--profile]

Generates N shipment events with ``bench.harness``'s generator, packs them in batch records
of 500 (as ``replay`` does) and times, per event:

1. ``parse``       ``parse_record`` of every record;
2. ``aggregate``   ``Increments.add`` of every event and ``lines()``, per chunk of 5,000
                   events (the worker's atomic step), with a fresh worker's calendar;
3. ``process``     ``BatchProcessor.process`` in batches of 100 records against an in-memory store
                   whose ``apply`` only takes its arguments: parse + aggregate + bookkeeping;
4. ``bookkeeping`` ``process`` − ``parse`` − ``aggregate`` (seen keys, marks, newest event time);
5. ``metrics``     ``WorkerMetrics.count_applied`` of each step's events and ``observe`` of each
                   batch's stats, with its own registry.

The generator spreads the events over 2024 at random, so nearly every event of a chunk has a day
and cell of its own; ``--ordered`` sorts them by event time, as a live stream brings them.
Each stage runs ``--repeat`` times, the stages taking turns; the best run counts (the machine is
shared, and the best run is the one least disturbed). ``total`` is ``process`` + ``metrics``:
the worker's CPU per event outside Kafka, Faust and Redis. ``--profile`` prints a cProfile of
one ``process`` + ``metrics`` run to stderr. See bench/README.md.
"""

from __future__ import annotations

import asyncio
import cProfile
import io
import pstats
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any
from zoneinfo import ZoneInfo

from prometheus_client import CollectorRegistry

from bench.harness import (
    BATCH_RECORDS,
    PARTITIONS,
    add_output_arguments,
    add_seed_argument,
    best_seconds,
    emit,
    generate_events,
    parser_of,
)
from portflow.adapters.redis import ApplyOutcome
from portflow.config import Settings
from portflow.domain.aggregates import Increments
from portflow.domain.events import parse_record
from portflow.domain.periods import LocalCalendar
from portflow.services.processing import (  # (MemoryStore is a Store)
    MAX_EVENTS_PER_APPLY,
    BatchProcessor,
    BatchStats,
    SourceRecord,
)
from producers.replay import DEFAULT_BATCH
from streams.metrics import WorkerMetrics

BATCH = DEFAULT_BATCH  # events per record
TZ = ZoneInfo("Asia/Shanghai")


class MemoryStore:
    """A ``Store`` (the processor's protocol) without Redis: nothing is seen
    before and every step applies. (Coroutines: the processor awaits them on its loop.)"""

    async def marks_of(self, names: list[str]) -> dict[str, int]:
        return dict.fromkeys(names, -1)

    async def open_epoch(self, tz_name: str) -> str:
        return "bench"

    async def apply(
        self,
        marks: object,
        event_ids: object,
        increments: object,
        dedupe_ttl_seconds: object,
        latest_event_ts: object,
        epoch: object,
        outcome_counts: object = None,
        run_rejections: object = None,
    ) -> ApplyOutcome:
        return ApplyOutcome(applied=True)


async def _no_letters(letters: object) -> None:
    raise AssertionError("the benchmark's events are all valid")


def batch_records(lines: list[bytes], topic: str) -> list[SourceRecord]:
    """Batch records of ``BATCH`` events, spread over ``PARTITIONS`` partitions in order."""
    records = []
    for i in range(0, len(lines), BATCH):
        n = i // BATCH
        value = b"[" + b",".join(lines[i : i + BATCH]) + b"]"
        records.append(SourceRecord(topic, n % PARTITIONS, n // PARTITIONS, None, value))
    return records


def stage_parse(records: list[SourceRecord]) -> Callable[[], None]:
    def run() -> None:
        for record in records:
            parse_record(record.value, "shipment")

    return run


def stage_aggregate(records: list[SourceRecord]) -> Callable[[], None]:
    events = [e for r in records for e in parse_record(r.value, "shipment")[0]]
    chunks = [
        events[i : i + MAX_EVENTS_PER_APPLY] for i in range(0, len(events), MAX_EVENTS_PER_APPLY)
    ]

    def run() -> None:
        calendar = LocalCalendar(TZ)  # a fresh worker's calendar: its cache fills during the run
        for chunk in chunks:
            increments = Increments(calendar)
            increments.add(chunk)
            list(increments.lines())

    return run


def stage_process(records: list[SourceRecord], settings: Settings) -> Callable[[], None]:
    def run() -> None:
        processor = BatchProcessor(settings, MemoryStore(), _no_letters)

        async def batches() -> None:
            for i in range(0, len(records), BATCH_RECORDS):
                await processor.process(records[i : i + BATCH_RECORDS])

        asyncio.run(batches())

    return run


def stage_metrics(records: list[SourceRecord]) -> Callable[[], None]:
    batches = []
    for i in range(0, len(records), BATCH_RECORDS):
        events = [
            e for r in records[i : i + BATCH_RECORDS] for e in parse_record(r.value, "shipment")[0]
        ]
        steps = [
            events[j : j + MAX_EVENTS_PER_APPLY]
            for j in range(0, len(events), MAX_EVENTS_PER_APPLY)
        ]
        stats = BatchStats(
            records=len(records[i : i + BATCH_RECORDS]),
            applied_events=len(events),
            newest_event_s=max(e.ts_seconds for e in events),
        )
        batches.append((steps, stats))

    def run() -> None:
        metrics = WorkerMetrics(CollectorRegistry())
        for steps, stats in batches:
            for events in steps:
                metrics.count_applied(events)
            metrics.observe("shipment", stats, 0.01)

    return run


def profile(process: Callable[[], None], metrics: Callable[[], None]) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    process()
    metrics()
    profiler.disable()
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("tottime").print_stats(20)
    return text.getvalue()


@dataclass(frozen=True)
class CoreRun:
    """µs of CPU per event of each stage (the best run), and the events/s they add up to."""

    events: int
    repeat: int
    ordered: bool
    us_per_event: dict[str, float]
    events_per_s: int

    @classmethod
    def of(cls, events: int, repeat: int, ordered: bool, best: dict[str, float]) -> CoreRun:
        us = {name: round(seconds / events * 1e6, 2) for name, seconds in best.items()}
        us["bookkeeping"] = round(us["process"] - us["parse"] - us["aggregate"], 2)
        us["total"] = round(us["process"] + us["metrics"], 2)
        return cls(events, repeat, ordered, us, round(1e6 / us["total"]))

    def table(self, records: int) -> str:
        lines = [f"{self.events:,} events in {records} batch records, best of {self.repeat}"]
        lines += [f"  {name:12s} {us:7.2f} µs/event" for name, us in self.us_per_event.items()]
        lines.append(f"  = {self.events_per_s:,} events/s of core CPU")
        return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = parser_of("bench.core", __doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    add_seed_argument(parser)
    parser.add_argument(
        "--ordered",
        action="store_true",
        help="events in event-time order, as a live stream brings them",
    )
    add_output_arguments(parser, keep=False)
    parser.add_argument("--profile", action="store_true", help="cProfile to stderr")
    args = parser.parse_args(argv)

    settings = Settings(topic_prefix="bench.")
    lines = generate_events(args.events, args.seed, "core")
    if args.ordered:  # all times have the same offset, so their text sorts as the times do
        lines.sort(key=lambda line: line[line.index(b'"ts":') :][:32])
    records = batch_records(lines, settings.topic("shipment"))
    stages = stages_of(records, settings)
    run = CoreRun.of(args.events, args.repeat, args.ordered, best_seconds(stages, args.repeat))
    if args.profile:
        print(profile(stages["process"], stages["metrics"]), file=sys.stderr)
    emit(asdict(run), args.json, lambda: run.table(len(records)))
    return 0


def stages_of(records: list[SourceRecord], settings: Settings) -> dict[str, Callable[[], Any]]:
    return {
        "parse": stage_parse(records),
        "aggregate": stage_aggregate(records),
        "process": stage_process(records, settings),
        "metrics": stage_metrics(records),
    }


if __name__ == "__main__":
    sys.exit(main())
