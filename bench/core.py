#!/usr/bin/env python
"""Micro-benchmark of the worker's pure core on the batched path: no Kafka, no Redis, no Faust.

    .venv/bin/python bench/core.py [--events N] [--repeat R] [--json] [--profile]

Generates N shipment events with ``bench/pipeline.py``'s generator, packs them in batch records
of 500 (as ``replay`` does) and times, per event:

1. ``parse``       ``parse_record`` of every record;
2. ``aggregate``   ``Increments.add`` of every event and ``lines()``, per chunk of 5,000
                   events (the worker's atomic step), with a fresh worker's calendar;
3. ``process``     ``BatchProcessor.process`` in takes of 100 records against an in-memory store
                   whose ``apply`` only takes its arguments: parse + aggregate + bookkeeping;
4. ``bookkeeping`` ``process`` − ``parse`` − ``aggregate`` (seen keys, marks, newest event time);
5. ``metrics``     ``WorkerMetrics.count_applied`` of each step's events and ``observe`` of each
                   take's stats, with its own registry.

The generator spreads the events over 2024 at random, so nearly every event of a chunk has a day
and cell of its own; ``--ordered`` sorts them by event time, as a live stream brings them.
Each stage runs ``--repeat`` times, the stages taking turns; the best run counts (the machine is
shared, and the best run is the one least disturbed). ``total`` is ``process`` + ``metrics``: the worker's CPU per event
outside Kafka, Faust and Redis. ``--profile`` prints a cProfile of one ``process`` + ``metrics``
run to stderr. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import pstats
import sys
import time
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parents[1]
for path in (REPO, REPO / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from pipeline import generate_events  # noqa: E402  (bench/pipeline.py; starts nothing on import)
from prometheus_client import CollectorRegistry  # noqa: E402

from portflow.adapters.redis import ApplyOutcome  # noqa: E402
from portflow.config import Settings  # noqa: E402
from portflow.domain.aggregates import Increments  # noqa: E402
from portflow.domain.events import parse_record  # noqa: E402
from portflow.domain.periods import LocalCalendar  # noqa: E402
from portflow.services.processing import (  # noqa: E402  (MemoryStore is a Store)
    MAX_EVENTS_PER_APPLY,
    BatchProcessor,
    BatchStats,
    SourceRecord,
)
from streams.metrics import WorkerMetrics  # noqa: E402

BATCH = 500  # events per record, replay's default
TAKE = 100  # records per take, the worker's
PARTITIONS = 8
TZ = ZoneInfo("Asia/Shanghai")


class MemoryStore:
    """The part of ``RedisStore`` that ``BatchProcessor`` calls, without Redis: nothing is seen
    before and every step applies. (Coroutines: the processor awaits them on its loop.)"""

    async def marks_of(self, names: list[str]) -> dict[str, int]:
        return dict.fromkeys(names, -1)

    async def open_epoch(self, tz_name: str) -> str:
        return "bench"

    async def apply(
        self,
        marks,
        event_ids,
        increments,
        dedupe_ttl_seconds,
        latest_event_ts,
        epoch,
        outcome_counts=None,
        run_rejections=None,
    ):
        return ApplyOutcome(applied=True)


async def _no_letters(letters):
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

        async def takes() -> None:
            for i in range(0, len(records), TAKE):
                await processor.process(records[i : i + TAKE])

        asyncio.run(takes())

    return run


def stage_metrics(records: list[SourceRecord]) -> Callable[[], None]:
    takes = []
    for i in range(0, len(records), TAKE):
        events = [e for r in records[i : i + TAKE] for e in parse_record(r.value, "shipment")[0]]
        steps = [
            events[j : j + MAX_EVENTS_PER_APPLY]
            for j in range(0, len(events), MAX_EVENTS_PER_APPLY)
        ]
        stats = BatchStats(
            records=len(records[i : i + TAKE]),
            applied_events=len(events),
            newest_event_s=max(e.ts_seconds for e in events),
        )
        takes.append((steps, stats))

    def run() -> None:
        metrics = WorkerMetrics(CollectorRegistry())
        for steps, stats in takes:
            for events in steps:
                metrics.count_applied(events)
            metrics.observe("shipment", stats, 0.01)

    return run


def best_seconds(stages: dict[str, Callable[[], None]], repeat: int) -> dict[str, float]:
    """The best time of each stage over ``repeat`` rounds; each round runs every stage once, so
    a slow spell of the shared machine hits all stages alike rather than one."""
    best = {name: float("inf") for name in stages}
    for _ in range(repeat):
        for name, run in stages.items():
            started = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - started)
    return best


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument(
        "--ordered",
        action="store_true",
        help="events in event-time order, as a live stream brings them",
    )
    parser.add_argument("--json", action="store_true", help="one JSON line instead of a table")
    parser.add_argument("--profile", action="store_true", help="cProfile to stderr")
    args = parser.parse_args(argv)

    settings = Settings(topic_prefix="bench.")
    lines = generate_events(args.events, args.seed, "core")
    if args.ordered:  # all times have the same offset, so their text sorts as the times do
        lines.sort(key=lambda line: line[line.index(b'"ts":') :][:32])
    records = batch_records(lines, settings.topic("shipment"))
    stages = {
        "parse": stage_parse(records),
        "aggregate": stage_aggregate(records),
        "process": stage_process(records, settings),
        "metrics": stage_metrics(records),
    }
    us = {
        name: round(seconds / args.events * 1e6, 2)
        for name, seconds in best_seconds(stages, args.repeat).items()
    }
    us["bookkeeping"] = round(us["process"] - us["parse"] - us["aggregate"], 2)
    us["total"] = round(us["process"] + us["metrics"], 2)
    result = {
        "events": args.events,
        "repeat": args.repeat,
        "ordered": args.ordered,
        "us_per_event": us,
        "events_per_s": round(1e6 / us["total"]),
    }
    if args.profile:
        print(profile(stages["process"], stages["metrics"]), file=sys.stderr)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.events:,} events in {len(records)} batch records, best of {args.repeat}")
        for name, value in us.items():
            print(f"  {name:12s} {value:7.2f} µs/event")
        print(f"  = {result['events_per_s']:,} events/s of core CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
