"""End to end over worker processes: replay files with the oracle's answers, every report checked
against them, the worker's metrics and dead letters, and replays running in the background."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

from click.testing import CliRunner
from kafka import KafkaConsumer

from entrypoints.cli import cli
from portflow.adapters.redis import RedisStore
from portflow.config import Settings
from producers.sample import generate_sample
from tests.support.events import customs, shipment, train
from tests.support.oracle import Oracle

# Structurally complete, invalid by the contract's rules (the oracle skips "bad-" ids).
BAD_LINES = [
    shipment("bad-1", "2024-03-01T10:00:00+08:00", value_cny=-5, weight_tonnes=1),
    shipment("bad-2", "2024-03-01T10:00:00", value_cny=5, weight_tonnes=1),
    shipment("bad-3", "2024-03-01T10:00:00Z", value_cny="5.001", weight_tonnes=1),
    train("bad-4", "2024-03-01T10:00:00Z", service="china-mars", teu=3),
    customs("bad-5", "2024-03-01T10:00:00Z", port="KHORGOS", declaration_id="D1"),
]

REPORTS = [
    ("2024", "value_cny", []),
    ("2024", "value_cny", ["port"]),
    ("2024", "value_cny", ["mode"]),
    ("2024", "value_cny", ["direction"]),
    ("2024", "value_cny", ["partner"]),
    ("2024", "value_cny", ["trade_mode"]),
    ("2024", "value_cny", ["zone"]),
    ("2024", "value_cny", ["zone_group"]),
    ("2024-H1", "value_cny", ["port", "mode"]),
    ("2024-Q1", "value_cny", ["zone", "partner"]),
    ("2024-02", "weight_tonnes", ["port"]),
    ("2024-02-29", "shipments", ["mode"]),
    ("2024-01-01", "value_cny", ["port"]),
    ("2024-12-31", "weight_tonnes", []),
    ("2024-H2", "shipments", ["zone_group", "direction"]),
    ("2024", "trains", ["port", "service"]),
    ("2024-Q3", "teu", ["service", "direction"]),
    ("2024", "declarations", ["status"]),
    ("2024-H1", "declarations", ["port", "status"]),
    ("2024-07-01", "declarations", []),
]


def write_replay_file(path: Path, events: int, seed: int) -> Oracle:
    """A sample replay file with ``BAD_LINES`` at its end; the oracle over it."""
    generate_sample(str(path), events=events, seed=seed)
    with open(path, "ab") as f:
        for bad in BAD_LINES:
            f.write(json.dumps(bad).encode() + b"\n")
    return Oracle(str(path))


def check_reports(env: dict, oracle: Oracle, *options: str) -> None:
    """Every report of REPORTS (with ``options``) equals the oracle's."""
    runner = CliRunner()
    for period, measure, by in REPORTS:
        args = ["report", "--period", period, "--measure", measure, "--json", *options]
        if by:
            args += ["--by", ",".join(by)]
        result = runner.invoke(cli, args, env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        got = json.loads(result.stdout, parse_float=Decimal)
        previous = got["previous_period"]
        want = oracle.report(period, previous, measure, by)
        rows = {
            tuple(r["key"][d] for d in by): (
                Decimal(r["current"]),
                Decimal(r["previous"]),
                None if r["yoy_pct"] is None else Decimal(r["yoy_pct"]),
            )
            for r in got["rows"]
        }
        assert rows == want["rows"], (period, measure, by)
        total = got["total"]
        assert (
            Decimal(total["current"]),
            Decimal(total["previous"]),
            None if total["yoy_pct"] is None else Decimal(total["yoy_pct"]),
        ) == want["total"]
        currents = [r["current"] for r in got["rows"]]
        assert currents == sorted(currents, reverse=True)


def scrape(addr: str) -> dict[str, float]:
    """Each metric family's samples summed over labels, from the worker's /metrics."""
    from urllib.request import urlopen

    from prometheus_client.parser import text_string_to_metric_families

    text = urlopen(f"http://{addr}/metrics", timeout=5).read().decode()
    sums = {}
    for family in text_string_to_metric_families(text):
        name = f"{family.name}_total" if family.type == "counter" else family.name
        sums[name] = sum(s.value for s in family.samples if s.name == name)
    return sums


def dead_letters(env: dict) -> list:
    """Every record on the dead-letter topic so far."""
    settings = Settings.from_env(env)
    consumer = KafkaConsumer(
        settings.dlq_topic,
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=3000,
        enable_auto_commit=False,
    )
    try:
        return list(consumer)
    finally:
        consumer.close()


def start_replay(env: dict, path, batch: int, rate: int) -> subprocess.Popen:
    """`portflow replay --wait` in the background, at ``rate`` events a second."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "entrypoints.cli",
            "replay",
            str(path),
            "--batch",
            str(batch),
            "--rate",
            str(rate),
            "--wait",
            "--timeout",
            "400",
            "--no-progress",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def applied_records(store: RedisStore) -> int:
    return sum(mark + 1 for mark in store.marks().values())


def wait_for_progress(store: RedisStore, replay: subprocess.Popen, records: int) -> bool:
    """Wait until ``records`` more records are applied; False if the replay ended first."""
    start, deadline = applied_records(store), time.monotonic() + 90
    while applied_records(store) < start + records:
        if replay.poll() is not None:
            return False
        assert time.monotonic() < deadline, "the workers made no progress"
        time.sleep(0.02)
    return True


def finish(replay: subprocess.Popen) -> None:
    """Wait for a background replay to succeed."""
    try:
        _out, err = replay.communicate(timeout=420)
    finally:
        replay.kill()
    assert replay.returncode == 0, err
