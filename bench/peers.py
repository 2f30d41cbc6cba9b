"""Side by side: the portflow worker against the idiomatic Quix Streams app, on the same records.

    .venv/bin/pip install -e '.[bench]'          # Quix Streams 3.28 (bench only)
    python -m bench.peers [--events 100000] [--rounds 3] [--broker tansu|apache-kafka]

One broker and one redis-server for the whole run (``bench.harness.Bench``). Per round
and kind (single-event records; batch records of 500 events): a fresh topic holding the same N
shipment events (``bench.harness.generate_events``), then, in an order that alternates by round,

- **portflow**: one ``portflow worker`` (exactly once into Redis: marks, dedupe, DLQ), timed from
  the first move of its marks to their reaching the end offsets
  (``bench.pipeline.worker.measure_worker``);
- **Quix**: a Quix Streams app as its documentation builds one, at-least-once: JSON values
  (amounts as floats, rounded to fen and kilograms), one row per event, ``group_by`` the
  event's cell (a repartition topic), a stateful per-day sum of value, weight and count per
  cell (RocksDB state with its changelog topic); timed from its first record to its N-th event
  summed.

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
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path

from bench.harness import (
    Bench,
    add_broker_argument,
    add_seed_argument,
    generate_events,
    parser_of,
    progress,
    publish,
    run_on_servers,
    run_stamped,
    write_jsonl,
)
from bench.pipeline.worker import measure_worker
from portflow.adapters.kafka import ensure_topics
from portflow.config import Settings
from producers.replay import ReplayResult

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


GOAL = {"single": 2.0, "batch": 10.0}  # portflow ÷ Quix (issue 17)


def measure_quix(bench: Bench, topic: str, n: int, name: str) -> float:
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
    return n / seconds


@dataclass(frozen=True)
class Round:
    """Events/s of both on single-event records and on batch records, and portflow ÷ Quix."""

    round: int
    portflow_single: float
    quix_single: float
    ratio_single: float
    portflow_batch: float
    quix_batch: float
    ratio_batch: float

    def meets_goal(self) -> bool:
        return self.ratio_single >= GOAL["single"] and self.ratio_batch >= GOAL["batch"]

    def row(self) -> str:
        return (
            f"{self.round:>5}  {self.portflow_single:>15,.0f}  {self.quix_single:>11,.0f}  "
            f"{self.ratio_single:>6.2f}  {self.portflow_batch:>14,.0f}  "
            f"{self.quix_batch:>10,.0f}  {self.ratio_batch:>6.2f}"
        )


@dataclass
class PeersRun:
    bench: str
    broker: str
    events: int
    seed: int
    quixstreams: str
    rounds: list[Round]
    goal: dict[str, float]
    rounds_meeting_goal: int
    seconds: float | None = None

    def table(self) -> str:
        head = (
            f"{'round':>5}  {'portflow single':>15}  {'Quix single':>11}  {'ratio':>6}  "
            f"{'portflow batch':>14}  {'Quix batch':>10}  {'ratio':>6}"
        )
        return "\n".join(
            [
                f"events/s, {self.events:,} events, {self.broker}, Quix Streams {self.quixstreams}",
                head,
                *(r.row() for r in self.rounds),
                f"rounds meeting the goal (single >= 2x and batch >= 10x): "
                f"{self.rounds_meeting_goal} of {len(self.rounds)}",
            ]
        )


def run(args: argparse.Namespace, bench: Bench) -> PeersRun:
    bench.start_servers()
    path = bench.workdir / "events.jsonl"
    write_jsonl(path, generate_events(args.events, args.seed, "peers"))
    rounds = [measure_round(bench, path, n) for n in range(1, args.rounds + 1)]
    return PeersRun(
        bench="peers",
        broker=args.broker,
        events=args.events,
        seed=args.seed,
        quixstreams=version("quixstreams"),
        rounds=rounds,
        goal=GOAL,
        rounds_meeting_goal=sum(r.meets_goal() for r in rounds),
    )


def measure_round(bench: Bench, path: Path, number: int) -> Round:
    """Both on each kind of records; who goes first alternates by round."""
    rates: dict[str, float] = {}
    for kind, batch in KINDS:
        settings, env = bench.namespace(kind)
        ensure_topics(settings)
        published = publish(settings, path, batch)
        progress(
            f"round {number} {kind}: {published.events:,} events in "
            f"{published.records:,} records on {settings.topic('shipment')}"
        )
        for peer in ("portflow", "quix") if number % 2 else ("quix", "portflow"):
            name = f"{peer}-{kind}-{number}"
            rates[f"{peer}_{kind}"] = measure_peer(peer, bench, settings, env, published, name)
        rates[f"ratio_{kind}"] = rates[f"portflow_{kind}"] / rates[f"quix_{kind}"]
    return Round(round=number, **rates)


def measure_peer(
    peer: str,
    bench: Bench,
    settings: Settings,
    env: dict[str, str],
    published: ReplayResult,
    name: str,
) -> float:
    """Events/s of ``peer`` (portflow or quix) on the events just published."""
    if peer == "portflow":
        return measure_worker(
            bench, settings, env, published.offsets, published.events, name
        ).events_per_s
    return measure_quix(bench, settings.topic("shipment"), published.events, name)


def main(argv: list[str] | None = None) -> int:
    parser = parser_of("bench.peers", __doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    add_seed_argument(parser)
    add_broker_argument(parser, "tansu")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    if importlib.util.find_spec("quixstreams") is None:
        print(
            "bench.peers needs Quix Streams: .venv/bin/pip install -e '.[bench]'",
            file=sys.stderr,
        )
        return 2
    started = time.monotonic()
    status, result = run_on_servers("portflow-peers-", args, run)
    if result is not None:
        result.seconds = round(time.monotonic() - started, 1)
        print(result.table())
        print(json.dumps(asdict(result)))
    return status


if __name__ == "__main__":
    sys.exit(main())
