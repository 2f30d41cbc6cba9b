"""End to end through real tansu, redis-server and worker processes: replay and report
(crashes and other faults: test_faults.py).

Expected figures come from ``tests/oracle.py``, which reads the replay file on its own.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from kafka import KafkaConsumer

from entrypoints.cli import cli
from portflow.config import Settings
from producers.sample import generate_sample
from tests.cli import portflow
from tests.oracle import Oracle

pytestmark = pytest.mark.slow

BAD_LINES = [
    # structurally complete, invalid by the contract's rules (the oracle skips "bad-" ids)
    {
        "type": "shipment",
        "event_id": "bad-1",
        "ts": "2024-03-01T10:00:00+08:00",
        "port": "khorgos",
        "mode": "rail",
        "direction": "export",
        "value_cny": -5,
        "weight_tonnes": 1,
        "partner": "KZ",
        "trade_mode": "general",
        "zones": [],
    },
    {
        "type": "shipment",
        "event_id": "bad-2",
        "ts": "2024-03-01T10:00:00",
        "port": "khorgos",
        "mode": "rail",
        "direction": "export",
        "value_cny": 5,
        "weight_tonnes": 1,
        "partner": "KZ",
        "trade_mode": "general",
        "zones": [],
    },
    {
        "type": "shipment",
        "event_id": "bad-3",
        "ts": "2024-03-01T10:00:00Z",
        "port": "khorgos",
        "mode": "rail",
        "direction": "export",
        "value_cny": "5.001",
        "weight_tonnes": 1,
        "partner": "KZ",
        "trade_mode": "general",
        "zones": [],
    },
    {
        "type": "train",
        "event_id": "bad-4",
        "ts": "2024-03-01T10:00:00Z",
        "port": "khorgos",
        "service": "china-mars",
        "direction": "outbound",
        "teu": 3,
    },
    {
        "type": "customs",
        "event_id": "bad-5",
        "ts": "2024-03-01T10:00:00Z",
        "port": "KHORGOS",
        "declaration_id": "D1",
        "status": "filed",
    },
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


@pytest.mark.brokers("apache-kafka", "tansu")
def test_replay_gives_exact_reports_and_replaying_again_changes_nothing(
    stack_env, tmp_path, worker_factory
):
    path = tmp_path / "events.jsonl"
    oracle = write_replay_file(path, events=4000, seed=11)
    worker_factory()

    portflow(stack_env, "replay", str(path), "--wait", "--timeout", "120")
    check_reports(stack_env, oracle)
    table = portflow(stack_env, "report", "--period", "2024", "--by", "port")
    assert "TOTAL" in table

    metrics = scrape(stack_env["PORTFLOW_METRICS_ADDR"])
    assert metrics["portflow_events_applied_total"] == len(oracle.events)
    assert metrics["portflow_events_rejected_total"] == oracle.dead_letters

    letters = dead_letters(stack_env)
    assert len(letters) == oracle.dead_letters
    for letter in letters:
        headers = dict(letter.headers)
        assert headers["portflow-reason"]
        assert headers["portflow-source-topic"]
        assert int(headers["portflow-source-offset"]) >= 0

    portflow(stack_env, "replay", str(path), "--batch", "1", "--wait", "--timeout", "120")
    check_reports(stack_env, oracle)
    assert len(dead_letters(stack_env)) == 2 * oracle.dead_letters
