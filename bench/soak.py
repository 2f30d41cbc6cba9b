"""Soak: the rate a one-worker stack sustains for minutes, on each embedded broker.

    python -m bench.soak [--broker apache-kafka|tansu] [--rate 3000] [--duration 600]
                         [--sample 30] [--json] [--keep]

For each broker (both, Apache Kafka first, unless --broker), as a user would try it: the broker,
redis-server and one ``portflow worker`` on free 127.0.0.1 ports, then ``portflow simulate
--rate R --duration S`` into them. Every --sample seconds it samples the events applied (the
worker's portflow_events_applied_total), the consumer lag (records in the event topics past the
worker's marks), the rate applied since the last sample, and the broker's CPU (% of one core)
and RSS. When simulate ends it reads what simulate published and stops the stack: nothing waits
for a backlog, which the last samples show. Progress goes to stderr; stdout gets a table per
broker (or one JSON line, --json). See bench/README.md.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.request import urlopen

from kafka import KafkaConsumer, TopicPartition

from bench.harness import (
    Bench,
    Machine,
    add_broker_argument,
    add_output_arguments,
    cpu_seconds,
    emit,
    parser_of,
    progress,
    rss_mb,
    run_in_workdir,
)
from entrypoints.embedded import BROKERS, wait_for_assignment
from portflow.adapters.kafka import ensure_topics
from portflow.adapters.redis import RedisStore
from portflow.config import Settings


def applied_events(metrics_addr: str) -> int:
    """Events the worker applied so far, all types (from its /metrics)."""
    text = urlopen(f"http://{metrics_addr}/metrics", timeout=10).read().decode()
    return int(
        sum(
            float(line.split()[-1])
            for line in text.splitlines()
            if line.startswith("portflow_events_applied_total{")
        )
    )


class LagReader:
    """Records in the event topics past the worker's marks (Kafka's end offsets, Redis's marks)."""

    def __init__(self, settings: Settings) -> None:
        self.store = RedisStore.from_url(settings.redis_url, settings.topic_prefix)
        self.consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap.split(","))
        self.partitions = [
            TopicPartition(t, p) for t in settings.event_topics for p in range(settings.partitions)
        ]

    def __call__(self) -> int:
        marks = self.store.marks()  # first: the end offsets read after them are never behind
        ends = self.consumer.end_offsets(self.partitions)
        # at least 0 per partition: tansu may report an end offset below its last record's
        return sum(
            max(0, end - (marks.get(f"{tp.topic}:{tp.partition}", -1) + 1))
            for tp, end in ends.items()
        )

    def close(self) -> None:
        self.consumer.close()


def soak(bench: Bench, rate: int, duration: int, sample_s: int) -> dict[str, Any]:
    bench.start_servers()
    settings, env = bench.namespace("soak")
    ensure_topics(settings)
    worker = bench.start_worker(env, "worker")
    wait_for_assignment(settings, worker, timeout_s=120)
    lag = LagReader(settings)  # first: the samples are timed from simulate's start
    simulate = start_simulate(bench, env, rate, duration)
    sampler = Sampler(bench, env["PORTFLOW_METRICS_ADDR"], lag)
    try:
        samples = sampler.until_ended(simulate, sample_s)
    finally:
        sampler.lag.close()
    out, err = simulate.communicate(timeout=60)
    if simulate.returncode != 0 or not worker.alive():
        raise RuntimeError(
            f"simulate exited {simulate.returncode}: {err.strip()[-500:]}; "
            f"worker alive: {worker.alive()}"
        )
    published = re.search(r"published ([\d,]+) events", err + out)
    full = [s for s in samples if s["interval_s"] >= sample_s - 1] or samples
    return {
        "broker": bench.broker,
        "rate": rate,
        "duration_s": duration,
        "published": int(published[1].replace(",", "")) if published else None,
        "applied": samples[-1]["applied"],
        "lag_at_end": samples[-1]["lag_records"],
        "last_full_interval_applied_per_s": full[-1]["applied_per_s"],
        "samples": samples,
    }


def start_simulate(
    bench: Bench, env: dict[str, str], rate: int, duration: int
) -> subprocess.Popen[str]:
    simulate = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "entrypoints.cli",
            "simulate",
            "--rate",
            str(rate),
            "--duration",
            str(duration),
        ],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    bench.popens.append(simulate)
    progress(f"{bench.broker}: simulate --rate {rate} --duration {duration} (pid {simulate.pid})")
    return simulate


class Sampler:
    """Every ``sample_s``: the events applied and their rate since the last sample, the lag,
    and the broker's CPU and RSS."""

    def __init__(self, bench: Bench, metrics_addr: str, lag: LagReader) -> None:
        self.bench, self.metrics_addr, self.lag = bench, metrics_addr, lag
        self.start = self.last_at = time.monotonic()
        self.last_applied = 0
        self.last_cpu = cpu_seconds(bench.broker_pid)

    def until_ended(self, simulate: subprocess.Popen[str], sample_s: int) -> list[dict[str, Any]]:
        samples: list[dict[str, Any]] = []
        while True:
            ended = wait_until(simulate, self.start + sample_s * (len(samples) + 1))
            samples.append(self.sample())
            progress(f"{self.bench.broker}: {samples[-1]}")
            if ended:
                return samples

    def sample(self) -> dict[str, Any]:
        now = time.monotonic()
        applied = applied_events(self.metrics_addr)
        cpu = cpu_seconds(self.bench.broker_pid)
        interval = now - self.last_at
        sample = {
            "s": round(now - self.start),
            "interval_s": round(interval, 1),
            "applied": applied,
            "lag_records": self.lag(),
            "applied_per_s": round((applied - self.last_applied) / interval),
            "broker_cpu_pct": (
                round(100 * (cpu - self.last_cpu) / interval)
                if cpu is not None and self.last_cpu is not None
                else None
            ),
            "broker_rss_mb": round(rss_mb(self.bench.broker_pid) or 0),
        }
        self.last_at, self.last_applied, self.last_cpu = now, applied, cpu
        return sample


def wait_until(process: subprocess.Popen[str], moment: float) -> bool:
    """Sleep until ``moment`` (monotonic) or until the process ends; whether it ended."""
    try:
        process.wait(timeout=max(0.0, moment - time.monotonic()))
        return True
    except subprocess.TimeoutExpired:
        return False


def table(run: dict[str, Any]) -> str:
    lines = [
        f"{run['broker']}: simulate --rate {run['rate']} for {run['duration_s']} s: "
        f"published {run['published']:,}, applied {run['applied']:,} by its end, lag "
        f"{run['lag_at_end']:,} records; its last full interval "
        f"{run['last_full_interval_applied_per_s']:,} events/s",
        f"{'s':>5} {'applied':>10} {'events/s':>9} {'lag':>9} {'CPU %':>6} {'RSS MB':>7}",
    ]
    for s in run["samples"]:
        cpu = "-" if s["broker_cpu_pct"] is None else s["broker_cpu_pct"]
        lines.append(
            f"{s['s']:>5} {s['applied']:>10,} {s['applied_per_s']:>9,} "
            f"{s['lag_records']:>9,} {cpu:>6} {s['broker_rss_mb']:>7,}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = parser_of("bench.soak", __doc__)
    add_broker_argument(parser, None)
    parser.add_argument("--rate", type=int, default=3000, help="events/s (default 3000)")
    parser.add_argument("--duration", type=int, default=600, help="seconds (default 600)")
    parser.add_argument("--sample", type=int, default=30, help="seconds between samples (30)")
    add_output_arguments(parser)
    args = parser.parse_args(argv)
    if args.rate < 1 or args.duration < 1 or args.sample < 1:
        parser.error("--rate, --duration and --sample must be positive")

    def measure(workdir: Path) -> dict[str, Any]:
        runs = []
        for broker in [args.broker] if args.broker else BROKERS:
            bench = Bench(workdir / broker, broker)
            try:
                runs.append(soak(bench, args.rate, args.duration, args.sample))
            finally:
                bench.close()
        return {"runs": runs}

    status, result = run_in_workdir("portflow-soak-", args.keep, measure)
    if result is None:
        return status
    machine = Machine.now()
    result.update(date=machine.date, cpus=machine.cpus, loadavg_1m_at_end=machine.loadavg_1m_at_end)
    emit(result, args.json, lambda: "\n\n".join(table(r) for r in result["runs"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
