"""The disruption drill end to end: two years of history replayed through a real worker, a real
Prometheus with the repository's rules and a real Alertmanager, whose webhook reaches a receiver
run here. Every disrupted day alerts at its key, while the replay runs; the Spring Festival
weeks and every other day do not; `portflow anomalies` lists exactly the drill's days."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from entrypoints.embedded import start_alertmanager, start_prometheus
from entrypoints.processes import free_port
from tests.support.cli import portflow

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
REPLAY_S = 150  # the two years replayed in about this long: alerts must come while it runs
VIEWS = {("value_cny", "port"), ("value_cny", "port,mode"), ("trains", "port,service")}


class Receiver:
    """An Alertmanager webhook receiver: keeps every alert notified as firing, and when."""

    def __init__(self) -> None:
        self.firing: dict[tuple, float] = {}  # (measure, by, key items, day) -> first seen
        self.other: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.take(body)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def take(self, body: dict) -> None:
        for alert in body["alerts"]:
            labels = alert["labels"]
            if labels["alertname"] != "PortflowThroughputDropEventTime":
                self.other.append(labels)
                continue
            if alert["status"] == "firing":
                dims = labels["by"].split(",")
                key = tuple(sorted((d, labels[d]) for d in dims))
                self.firing.setdefault(
                    (labels["measure"], labels["by"], key, labels["day"]), time.monotonic()
                )

    def close(self) -> None:
        self.server.shutdown()


def expected_alerts(expected: dict) -> set[tuple]:
    return {
        (measure, by, tuple(sorted(a["key"].items())), a["day"])
        for measure, views in expected.items()
        for by, anomalies in views.items()
        for a in anomalies
    }


@pytest.fixture
def alerting(stack_env, tmp_path):
    """Receiver <- Alertmanager (the repository's routes and inhibitions, the receiver's URL,
    short waits) <- Prometheus (the repository's rules, scraping the worker every second)."""
    receiver = Receiver()
    config = yaml.safe_load((REPO / "alertmanager" / "alertmanager.yml").read_text())
    config["receivers"][0]["webhook_configs"][0]["url"] = receiver.url
    config["route"].update(group_wait="1s", group_interval="1s", repeat_interval="1h")
    am_config = tmp_path / "alertmanager.yml"
    am_config.write_text(yaml.safe_dump(config))
    am_port = free_port()
    alertmanager = start_alertmanager(am_port, am_config, tmp_path / "am", tmp_path / "logs")
    prom_config = tmp_path / "prometheus.yml"
    prom_config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(REPO / "prometheus" / "rules" / "*.yml")],
                "alerting": {
                    "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]
                },
                "scrape_configs": [
                    {
                        "job_name": "portflow",
                        "static_configs": [{"targets": [stack_env["PORTFLOW_METRICS_ADDR"]]}],
                    }
                ],
            }
        )
    )
    prometheus = start_prometheus(free_port(), prom_config, tmp_path / "tsdb", tmp_path / "logs")
    yield receiver
    prometheus.stop()
    alertmanager.stop()
    receiver.close()


def test_the_drill_alerts_every_disruption_while_replaying_and_nothing_else(
    stack_env, tmp_path, alerting, worker_factory
):
    drill = tmp_path / "drill.jsonl"
    portflow(stack_env, "scenario", "disruption-drill", "--out", str(drill))
    expected = json.loads((tmp_path / "drill.expected.json").read_text())
    assert {(m, by) for m, views in expected.items() for by in views} == VIEWS
    wanted = expected_alerts(expected)
    assert len(wanted) >= 10

    worker_factory()
    first, last = _event_time_span(drill)
    replay = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "entrypoints.cli",
            "replay",
            str(drill),
            "--speed",
            f"{(last - first) / REPLAY_S:.0f}",
            "--wait",
            "--timeout",
            "300",
        ],
        env=stack_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + REPLAY_S + 60
        while not alerting.firing and time.monotonic() < deadline:
            time.sleep(1)
        assert alerting.firing, "no alert reached the receiver during the replay"
        assert replay.poll() is None, "the first alert came only after the replay had ended"
        _, err = replay.communicate(timeout=REPLAY_S + 120)
        assert replay.returncode == 0, err
    finally:
        replay.kill()

    deadline = time.monotonic() + 150
    while set(alerting.firing) != wanted and time.monotonic() < deadline:
        if set(alerting.firing) - wanted:
            break
        time.sleep(2)
    assert set(alerting.firing) - wanted == set(), "alerts on days the drill did not disrupt"
    assert wanted - set(alerting.firing) == set(), "disrupted days that never alerted"

    for measure, by in sorted(VIEWS):
        found = []
        for year in ("2023", "2024"):
            result = json.loads(
                portflow(
                    stack_env,
                    "anomalies",
                    "--period",
                    year,
                    "--measure",
                    measure,
                    "--by",
                    by,
                    "--json",
                )
            )
            assert (result["measure"], result["by"], result["min_drop_pct"]) == (
                measure,
                by.split(","),
                50,
            )
            found += [(a["day"], sorted(a["key"].items())) for a in result["anomalies"]]
            assert all(
                a["drop_pct"] >= 50 and a["observed"] < a["expected"] for a in result["anomalies"]
            )
        assert sorted(found) == sorted(
            (a["day"], sorted(a["key"].items())) for a in expected[measure][by]
        ), (measure, by)
    table = portflow(stack_env, "anomalies", "--period", "2024-05", "--by", "port")
    rows = [line.split() for line in table.splitlines()[4:]]
    assert [(r[0], r[1], r[-2]) for r in rows] == [
        (day, "khorgos", "100.00")
        for day in ("2024-05-14", "2024-05-15", "2024-05-16", "2024-05-17")
    ], table
    assert {r[-1] for r in rows} <= {"trailing-weeks", "year-earlier"}, table


def _event_time_span(path: Path) -> tuple[float, float]:
    from datetime import datetime

    with open(path) as f:
        lines = f.readlines()
    stamps = [
        datetime.fromisoformat(json.loads(line)["ts"].replace("Z", "+00:00")).timestamp()
        for line in (lines[0], lines[-1])
    ]
    return stamps[0], stamps[1]
