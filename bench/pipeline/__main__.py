"""``python -m bench.pipeline``: every measurement of the pipeline, on the same events (see the
package's docstring, ``python -m bench.pipeline --help``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench import pipeline
from bench.harness import (
    Bench,
    Machine,
    add_broker_argument,
    add_output_arguments,
    add_seed_argument,
    emit,
    generate_events,
    parser_of,
    progress,
    publish,
    run_on_servers,
    write_jsonl,
)
from bench.pipeline.ceilings import measure_faust_noop, measure_raw_consume
from bench.pipeline.latency import measure_latency
from bench.pipeline.profiling import profile_processor, summarise_py_spy
from bench.pipeline.report import Ceilings, PipelineRun, table
from bench.pipeline.worker import WorkerRun, measure_worker
from portflow.adapters.kafka import ensure_topics
from producers.replay import DEFAULT_BATCH, ReplayResult

LATENCY_RATE = 5000
LATENCY_SECONDS = 10.0


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    status, run = run_on_servers("portflow-bench-", args, measure)
    if run is not None:
        figures = run.figures()
        emit(figures, args.json, lambda: table(figures))
    return status


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = parser_of("bench.pipeline", pipeline.__doc__)
    parser.add_argument("--events", type=int, default=200_000, help="events (default 200000)")
    add_seed_argument(parser)
    parser.add_argument(
        "--latency-rate",
        type=int,
        default=LATENCY_RATE,
        help=f"events/s of the latency runs (default {LATENCY_RATE})",
    )
    parser.add_argument(
        "--latency-seconds",
        type=float,
        default=LATENCY_SECONDS,
        help="duration of each latency run (default 10)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also profile the batched path (py-spy of the worker, cProfile of "
        "BatchProcessor.process); printed to stderr",
    )
    add_broker_argument(parser, "tansu")
    add_output_arguments(parser)
    args = parser.parse_args(argv)
    if args.events < 1000:
        parser.error("--events must be at least 1000")
    return args


def measure(args: argparse.Namespace, bench: Bench) -> PipelineRun:
    n = args.events
    bench.start_servers()
    progress(f"generating {n:,} shipment events")
    lines = generate_events(n, seed=args.seed, id_prefix="ev")
    events_path = bench.workdir / "events.jsonl"
    write_jsonl(events_path, lines)
    published_single, ceilings, single = on_single_event_records(bench, events_path, n)
    published_batched, batched = on_batch_records(bench, events_path, n)
    latency = measure_latency(bench, args.latency_rate, args.latency_seconds)
    paced = measure_latency(bench, args.latency_rate, args.latency_seconds, batch=DEFAULT_BATCH)
    if args.profile:
        print("\n" + profile(bench, events_path, lines, args.keep), file=sys.stderr, flush=True)
    return PipelineRun(
        events=n,
        broker=bench.broker,
        ceilings=ceilings,
        published_single=published_single,
        published_batched=published_batched,
        single=single,
        batched=batched,
        latency=latency,
        paced_batch=paced,
        machine=Machine.now(),
    )


def on_single_event_records(
    bench: Bench, events_path: Path, n: int
) -> tuple[ReplayResult, Ceilings, WorkerRun]:
    """The client's and Faust's ceilings and the worker, on the same single-event records."""
    settings, env = bench.namespace("single")
    ensure_topics(settings)  # kafka-python's admin, 8 partitions
    progress(
        f"publishing {n:,} single-event records (Replayer, batch 1) to {settings.topic('shipment')}"
    )
    published = publish(settings, events_path, batch=1)
    if published.records != n:
        raise RuntimeError(f"published {published.records} records, expected {n}")
    progress(f"published in {published.seconds:.1f}s ({published.events_per_s:,.0f} events/s)")
    topic = settings.topic("shipment")
    ceilings = Ceilings(
        raw_consume_per_s=measure_raw_consume(bench, published.offsets, n),
        faust_noop_per_s=measure_faust_noop(bench, topic, n),
        faust_noop_uvloop_per_s=measure_faust_noop(bench, topic, n, loop="uvloop"),
    )
    worker = measure_worker(bench, settings, env, published.offsets, n, "worker-single")
    return published, ceilings, worker


def on_batch_records(bench: Bench, events_path: Path, n: int) -> tuple[ReplayResult, WorkerRun]:
    """The worker on the same events in replay's batch records."""
    settings, env = bench.namespace("batched")
    ensure_topics(settings)
    progress(
        f"publishing {n:,} events in batch records of {DEFAULT_BATCH} "
        f"to {settings.topic('shipment')}"
    )
    published = publish(settings, events_path, batch=DEFAULT_BATCH)
    progress(
        f"replay: {published.events:,} events in {published.records} "
        f"records in {published.seconds:.2f}s ({published.events_per_s:,.0f} events/s)"
    )
    worker = measure_worker(bench, settings, env, published.offsets, n, "worker-batched")
    return published, worker


def profile(bench: Bench, events_path: Path, lines: list[bytes], keep: bool) -> str:
    """A py-spy profile of a worker on a second batched run, and a cProfile of the processor."""
    settings, env = bench.namespace("profile")
    ensure_topics(settings)
    published = publish(settings, events_path, batch=DEFAULT_BATCH)
    spy_path = bench.workdir / "worker-batched.pyspy.txt"
    profiled = measure_worker(
        bench,
        settings,
        env,
        published.offsets,
        len(lines),
        "worker-batched-py-spy",
        profile_to=spy_path,
    )
    text = ""
    if spy_path.exists():
        text += (
            f"worker under py-spy (200 Hz, non-blocking): {profiled.events_per_s:,.0f} events/s\n"
        )
        text += summarise_py_spy(spy_path)
        if keep:
            text += f"(collapsed stacks: {spy_path})\n"
    return text + profile_processor(bench, lines)


if __name__ == "__main__":
    sys.exit(main())
