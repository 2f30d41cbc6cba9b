#!/usr/bin/env python
"""Side by side: the portflow worker against the idiomatic Quix Streams app, on the same records.

    .venv/bin/pip install -e '.[bench]'          # Quix Streams 3.28 (bench only)
    .venv/bin/python bench/peers.py [--events 100000] [--rounds 3] [--broker tansu|apache-kafka]

One broker and one redis-server for the whole run (``bench/pipeline.py``'s ``Bench``). Per round
and kind (single-event records; batch records of 500 events): a fresh topic holding the same N
shipment events (``pipeline.generate_events``), then, in an order that alternates by round,

- **portflow**: one ``portflow worker`` (exactly once into Redis: marks, dedupe, DLQ), timed from
  the first move of its marks to their reaching the end offsets (``pipeline.measure_worker``);
- **Quix**: a Quix Streams app as its documentation builds one, at-least-once: JSON values
  (amounts as floats, rounded to fen and kilograms), one row per event, ``group_by`` the event's cell (a repartition topic), a stateful per-day sum of value,
  weight and count per cell (RocksDB state with its changelog topic); timed from its first
  record to its N-th event summed.

Prints a table and one JSON line: both rates and portflow ÷ Quix per round and kind. The goal
(issue 17): single-event ≥ 2.0x, batch ≥ 10x in at least 3 of 5 runs. See bench/README.md.

tansu answers DescribeConfigs with nothing, and Quix reads ``retention.ms`` from it for its
repartition topic: the Quix script fills in Kafka's default (7 days) where it is missing.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pipeline
from pipeline import (
    Bench,
    generate_events,
    measure_worker,
    progress,
    publish,
    run_stamped,
    write_jsonl,
)

from portflow.adapters.kafka import ensure_topics

KINDS = (("single", 1), ("batch", 500))

QUIX_APP = r"""
import sys, time
from datetime import datetime, timedelta, timezone

from quixstreams import Application
from quixstreams.models.topics import admin

_inspect = admin.TopicAdmin.inspect_topics


def inspect_with_defaults(self, topic_names, timeout=30):
    configs = _inspect(self, topic_names, timeout)
    for config in configs.values():
        if config is not None:  # tansu: DescribeConfigs says nothing
            config.extra_config.setdefault("retention.ms", "604800000")
            config.extra_config.setdefault("retention.bytes", "-1")
    return configs


admin.TopicAdmin.inspect_topics = inspect_with_defaults

bootstrap, topic_name, group, n, stamps_path, state_dir = sys.argv[1:7]
n = int(n)
CST = timezone(timedelta(hours=8))
stamps = open(stamps_path, "w")
seen = [False, 0]  # the first record stamped; events summed

app = Application(broker_address=bootstrap, consumer_group=group, auto_offset_reset="earliest",
                  processing_guarantee="at-least-once", state_dir=state_dir, loglevel="WARNING")
topic = app.topic(topic_name, value_deserializer="json")
sdf = app.dataframe(topic)


def events(value):
    if not seen[0]:
        stamps.write(f"FIRST {time.monotonic()}\n")
        stamps.flush()
        seen[0] = True
    return value if isinstance(value, list) else [value]


def cell(event):
    return "|".join((event["port"], event["mode"], event["direction"], event["partner"],
                     event["trade_mode"], ",".join(event["zones"])))


def add(event, state):
    day = datetime.fromisoformat(event["ts"]).astimezone(CST).date().isoformat()
    value, weight, count = state.get(day, (0, 0, 0))
    state.set(day, (value + round(event["value_cny"] * 100),
                    weight + round(event["weight_tonnes"] * 1000), count + 1))
    seen[1] += 1
    if seen[1] == n:
        stamps.write(f"LAST {time.monotonic()}\n")
        stamps.flush()
        app.stop()


sdf = sdf.apply(events, expand=True)
sdf = sdf.group_by(cell, name="cell")
sdf = sdf.update(add, stateful=True)
stamps.write(f"STARTING {time.monotonic()}\n")
stamps.flush()
app.run()
"""


def measure_quix(bench: Bench, topic: str, n: int, name: str) -> dict:
    """Events/s of the Quix app on ``topic`` (a consumer group and state of its own)."""
    script = bench.workdir / "quix_app.py"
    script.write_text(QUIX_APP)
    stamps = run_stamped(
        bench,
        [str(script), bench.bootstrap, topic, f"{name}-{bench.run_id}", str(n)],
        name,
        [str(bench.workdir / f"{name}-state")],
        180 + n / 500,
        f"{name}: the Quix app summing {n:,} events",
    )
    seconds = stamps["LAST"] - stamps["FIRST"]
    progress(
        f"{name}: start-up {stamps['FIRST'] - stamps['STARTING']:.1f}s, then "
        f"{n:,} events in {seconds:.2f}s = {n / seconds:,.0f} events/s"
    )
    return {"events_per_s": n / seconds, "seconds": seconds}


def run(args: argparse.Namespace, bench: Bench) -> dict:
    bench.start_servers()
    lines = generate_events(args.events, args.seed, "peers")
    path = bench.workdir / "events.jsonl"
    write_jsonl(path, lines)
    rounds = []
    for number in range(1, args.rounds + 1):
        row = {"round": number}
        for kind, batch in KINDS:
            settings, env = bench.namespace(kind)
            ensure_topics(settings)
            published = publish(settings, path, batch)
            progress(
                f"round {number} {kind}: {published.events:,} events in "
                f"{published.records:,} records on {settings.topic('shipment')}"
            )

            def portflow_run():
                return measure_worker(
                    bench,
                    settings,
                    env,
                    published.offsets,
                    args.events,
                    f"portflow-{kind}-{number}",
                )["events_per_s"]

            def quix_run():
                return measure_quix(
                    bench, settings.topic("shipment"), args.events, f"quix-{kind}-{number}"
                )["events_per_s"]

            if number % 2:
                row[f"portflow_{kind}"], row[f"quix_{kind}"] = portflow_run(), quix_run()
            else:
                row[f"quix_{kind}"] = quix_run()
                row[f"portflow_{kind}"] = portflow_run()
            row[f"ratio_{kind}"] = row[f"portflow_{kind}"] / row[f"quix_{kind}"]
        rounds.append(row)
    return {
        "bench": "peers",
        "broker": args.broker,
        "events": args.events,
        "seed": args.seed,
        "quixstreams": _quix_version(),
        "rounds": rounds,
        "goal": {"single": 2.0, "batch": 10.0},
        "rounds_meeting_goal": sum(
            r["ratio_single"] >= 2.0 and r["ratio_batch"] >= 10.0 for r in rounds
        ),
    }


def _quix_version() -> str:
    from importlib.metadata import version

    return version("quixstreams")


def table(result: dict) -> str:
    head = (
        f"{'round':>5}  {'portflow single':>15}  {'Quix single':>11}  {'ratio':>6}  "
        f"{'portflow batch':>14}  {'Quix batch':>10}  {'ratio':>6}"
    )
    rows = [
        f"{r['round']:>5}  {r['portflow_single']:>15,.0f}  {r['quix_single']:>11,.0f}  "
        f"{r['ratio_single']:>6.2f}  {r['portflow_batch']:>14,.0f}  {r['quix_batch']:>10,.0f}"
        f"  {r['ratio_batch']:>6.2f}"
        for r in result["rounds"]
    ]
    return "\n".join(
        [
            f"events/s, {result['events']:,} events, {result['broker']}, Quix Streams "
            f"{result['quixstreams']}",
            head,
            *rows,
            f"rounds meeting the goal (single >= 2x and batch >= 10x): "
            f"{result['rounds_meeting_goal']} of {len(result['rounds'])}",
        ]
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--broker", choices=pipeline.BROKERS, default="tansu")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    if importlib.util.find_spec("quixstreams") is None:
        print(
            "bench/peers.py needs Quix Streams: .venv/bin/pip install -e '.[bench]'",
            file=sys.stderr,
        )
        return 2
    started = time.monotonic()

    status, result = pipeline.run_on_servers("portflow-peers-", args, run)
    if status == 0:
        result["seconds"] = round(time.monotonic() - started, 1)
        print(table(result))
        print(json.dumps(result))
    return status


if __name__ == "__main__":
    sys.exit(main())
