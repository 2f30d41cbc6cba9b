"""A real Prometheus scrapes a real worker during a replay: every dashboard query and every rule
expression runs through the HTTP API, the YoY panels agree with `portflow report`, and
`portflow backfill` history is queryable by event time."""

from __future__ import annotations

import importlib.util
import json
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
import yaml

from entrypoints.embedded import start_prometheus
from entrypoints.processes import free_port
from tests.support.cli import portflow

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def query(base: str, expr: str, at: float | None = None) -> list:
    params = {"query": expr, **({"time": at} if at is not None else {})}
    response = httpx.get(f"{base}/api/v1/query", params=params, timeout=10)
    if response.is_error:
        raise AssertionError(f"{expr}: HTTP {response.status_code} {response.text}")
    body = response.json()
    assert body["status"] == "success", (expr, body)
    return body["data"]["result"]


def scalar_by(result: list, label: str) -> dict[str, float]:
    return {sample["metric"].get(label, ""): float(sample["value"][1]) for sample in result}


def panel_queries() -> list[tuple[str, str, str]]:
    spec = importlib.util.spec_from_file_location("grafana_build", REPO / "grafana" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.panel_queries()


def rule_expressions() -> list[tuple[str, str]]:
    found = []
    for path in sorted((REPO / "prometheus" / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                found.append((rule.get("record") or rule.get("alert"), rule["expr"]))
    return found


@pytest.fixture
def prometheus(stack_env, tmp_path):
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(REPO / "prometheus" / "rules" / "*.yml")],
                "scrape_configs": [
                    {
                        "job_name": "portflow",
                        "static_configs": [{"targets": [stack_env["PORTFLOW_METRICS_ADDR"]]}],
                    }
                ],
            }
        )
    )
    child = start_prometheus(port, config, tmp_path / "tsdb", tmp_path / "logs")
    yield f"http://127.0.0.1:{port}"
    child.stop()


def wait_for(check, what: str, timeout: float = 90):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(1)


def test_panels_and_rules_run_and_yoy_panels_agree_with_report(
    stack_env, tmp_path, prometheus, worker_factory
):
    path = tmp_path / "xj.jsonl"
    portflow(stack_env, "scenario", "xinjiang-2024h1", "--out", str(path), "--scale", "0.03")
    worker_factory()
    portflow(stack_env, "replay", str(path), "--wait", "--timeout", "300")
    total_yoy = 'sum(portflow_yoy_trade_value_yuan{span="half",window="current",dimension="total"})'
    wait_for(
        lambda: (
            query(prometheus, total_yoy)
            and float(query(prometheus, total_yoy)[0]["value"][1]) > 1.9e11
        ),
        "the YoY gauges",
    )
    wait_for(lambda: query(prometheus, "count(portflow_events_applied_total) > 0"), "scrapes")
    time.sleep(3)  # a few more scrapes, so rate() has points on both sides of the replay

    with_data, queries = 0, panel_queries()
    assert queries
    for _uid, _title, expr in queries:
        with_data += bool(query(prometheus, expr))
    assert with_data >= len(queries) * 0.6, f"only {with_data} of {len(queries)} panels have data"
    rules = rule_expressions()
    assert rules
    for _name, expr in rules:
        query(prometheus, expr)  # asserts the API accepted and evaluated it

    value = json.loads(
        portflow(stack_env, "report", "--period", "2024-H1", "--json", "--by", "port"),
        parse_float=Decimal,
    )
    assert float(query(prometheus, total_yoy)[0]["value"][1]) == pytest.approx(
        float(value["total"]["current"]), rel=1e-12
    )
    by_port = scalar_by(
        query(
            prometheus,
            'portflow_yoy_trade_value_yuan{span="half",window="previous",dimension="port"}',
        ),
        "port",
    )
    assert by_port == pytest.approx(
        {r["key"]["port"]: float(r["previous"]) for r in value["rows"]}, rel=1e-12
    )
    ratio = scalar_by(
        query(prometheus, 'portflow_yoy_ratio{measure="trade_value",span="half",dimension="port"}'),
        "port",
    )
    for row in value["rows"]:
        if row["yoy_pct"] is not None:
            assert (ratio[row["key"]["port"]] - 1) * 100 == pytest.approx(
                float(row["yoy_pct"]), abs=0.005
            )
    trains = json.loads(
        portflow(
            stack_env,
            "report",
            "--period",
            "2024-H1",
            "--measure",
            "trains",
            "--by",
            "service",
            "--json",
        )
    )
    by_service = scalar_by(
        query(prometheus, 'portflow_yoy_trains{span="half",window="current",dimension="service"}'),
        "service",
    )
    assert by_service == {r["key"]["service"]: r["current"] for r in trains["rows"]}

    # backfill: last year's and this year's history, by event time, in a second Prometheus
    blocks = tmp_path / "backfill-tsdb"
    portflow(stack_env, "backfill", "--out", str(blocks))
    history_port = free_port()
    config = tmp_path / "empty.yml"
    config.write_text("global: {scrape_interval: 1m}\n")
    history = start_prometheus(history_port, config, blocks, tmp_path / "logs", "history")
    try:
        base = f"http://127.0.0.1:{history_port}"
        tz = ZoneInfo("Asia/Shanghai")
        h1_start = datetime(2024, 1, 1, tzinfo=tz).timestamp()
        h1_end = datetime(2024, 7, 1, tzinfo=tz).timestamp()
        expr = 'sum(portflow_trade_value_yuan_total{source="backfill"})'
        wait_for(lambda: query(base, expr, h1_end), "the backfilled blocks", timeout=30)
        grown = float(query(base, expr, h1_end)[0]["value"][1]) - float(
            query(base, expr, h1_start)[0]["value"][1]
        )
        assert grown == pytest.approx(float(value["total"]["current"]), rel=1e-9)
        last_year = query(
            base,
            'sum(increase(portflow_trade_value_yuan_total{source="backfill"}[26w] offset 52w))',
            h1_end,
        )
        assert float(last_year[0]["value"][1]) > 0
    finally:
        history.stop()
