"""Prometheus configuration, recording rules and alerts (prometheus/), checked by promtool.

``promtool check rules`` on every rules file, ``promtool test rules`` on every test file of
prometheus/tests/, and ``promtool check config`` on a copy of prometheus.yml whose rule_files
point at this repository's rules (the production file names /etc/prometheus/rules/*.yml, a glob
that matches nothing here, and promtool accepts a glob that matches nothing without checking
anything). The rest parses the YAML: every alert has a ``for:``, a severity and its annotations,
and a promtool test where it fires and one where it does not; every worker metric a rule reads
is one the worker exports.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "prometheus"
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.yml"))
TEST_FILES = sorted((PROMETHEUS / "tests").glob("*.yml"))
SEVERITIES = {"critical", "warning"}

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not on PATH (Debian/Ubuntu: apt-get install prometheus)"
)


def promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def show(result: subprocess.CompletedProcess) -> str:
    return (
        f"$ {' '.join(map(str, result.args))}\nexit code {result.returncode}\n"
        f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def rules(kind: str) -> list[dict]:
    """Every rule of the rules files that is a ``record`` or an ``alert``."""
    return [
        rule
        for path in RULE_FILES
        for group in load(path)["groups"]
        for rule in group["rules"]
        if kind in rule
    ]


def test_the_files_exist():
    assert [p.name for p in RULE_FILES] == ["portflow-alerts.yml", "portflow-recording.yml"]
    assert TEST_FILES, "no promtool test files in prometheus/tests/"


# ---- promtool ------------------------------------------------------------------------------


@needs_promtool
@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_promtool_check_rules(path):
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, show(result)


@needs_promtool
@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: p.name)
def test_promtool_test_rules(path):
    result = promtool("test", "rules", str(path.relative_to(ROOT)))
    assert result.returncode == 0, show(result)
    assert "SUCCESS" in result.stdout, show(result)


@needs_promtool
def test_promtool_check_config_with_the_repository_rules(tmp_path):
    config = load(PROMETHEUS / "prometheus.yml")
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    config["rule_files"] = [str(PROMETHEUS / "rules" / "*.yml")]
    copy = tmp_path / "prometheus.yml"
    copy.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    result = promtool("check", "config", str(copy), cwd=tmp_path)
    assert result.returncode == 0, show(result)
    for path in RULE_FILES:  # the rules were found and checked, not skipped by an empty glob
        assert f"Checking {path}" in result.stdout, show(result)
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in result.stdout, show(result)


# ---- the production configuration ----------------------------------------------------------


def test_config_scrapes_every_worker_replica_and_alerts():
    config = load(PROMETHEUS / "prometheus.yml")
    assert config["global"]["scrape_interval"] == "15s"
    assert config["global"]["evaluation_interval"] == "15s"
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"portflow", "prometheus"}
    assert jobs["portflow"]["dns_sd_configs"] == [
        {"names": ["worker"], "type": "A", "port": 9464, "refresh_interval": "15s"}
    ]
    targets = [
        t
        for am in config["alerting"]["alertmanagers"]
        for sc in am["static_configs"]
        for t in sc["targets"]
    ]
    assert targets == ["alertmanager:9093"]


# ---- the rules themselves ------------------------------------------------------------------


def test_every_alert_has_for_severity_and_annotations():
    alerts = rules("alert")
    assert len(alerts) >= 7
    for alert in alerts:
        name = alert["alert"]
        assert re.fullmatch(r"\d+[smhdwy]", str(alert.get("for", ""))), f"{name}: no for:"
        assert alert.get("labels", {}).get("severity") in SEVERITIES, f"{name}: severity"
        annotations = alert.get("annotations", {})
        assert annotations.get("summary"), name
        assert annotations.get("description"), name


def test_the_required_alerts_and_thresholds():
    alerts = {a["alert"]: a for a in rules("alert")}
    assert {
        "PortflowThroughputDropWeekOverWeek",
        "PortflowThroughputDropYearOverYear",
        "PortflowPipelineStalled",
        "PortflowWorkerAbsent",
        "PortflowConsumerLagGrowing",
        "PortflowDeadLetterRate",
    } <= set(alerts)
    week = alerts["PortflowThroughputDropWeekOverWeek"]
    year = alerts["PortflowThroughputDropYearOverYear"]
    assert "offset 1w" in week["expr"]
    assert "< 0.5" in week["expr"]
    assert week["for"] == "30m"
    # PromQL's 1y is 365 days: one weekday off. 52w keeps the weekday.
    assert "offset 52w" in year["expr"]
    assert "offset 1y" not in year["expr"]
    assert "< 0.5" in year["expr"]
    assert year["for"] == "1h"
    assert alerts["PortflowPipelineStalled"]["for"] == "5m"
    assert 'absent(up{job="portflow"} == 1)' in alerts["PortflowWorkerAbsent"]["expr"]
    assert alerts["PortflowWorkerAbsent"]["for"] == "2m"
    assert "> 1000" in alerts["PortflowConsumerLagGrowing"]["expr"]
    assert "> 0.01" in alerts["PortflowDeadLetterRate"]["expr"]


def test_every_alert_is_tested_firing_and_not_firing():
    fires, silent = set(), set()
    for path in TEST_FILES:
        for case in load(path)["tests"]:
            for check in case.get("alert_rule_test", []):
                (fires if check.get("exp_alerts") else silent).add(check["alertname"])
    names = {a["alert"] for a in rules("alert")}
    assert names - fires == set(), "alerts without a test where they fire"
    assert names - silent == set(), "alerts without a test where they do not fire"


def test_recorded_series_used_are_recorded():
    recorded = {r["record"] for r in rules("record")}
    assert {
        "portflow:trade_value_yuan:rate5m",
        "portflow:trade_value_yuan:rate1h",
        "portflow:cargo_weight_tonnes:rate1h",
        "portflow:events_applied:rate5m",
        "portflow:events_rejected:rate5m",
        "portflow:consumer_lag_records:sum",
    } <= recorded
    for rule in rules("alert") + rules("record"):
        used = set(re.findall(r"portflow:[a-z0-9_:]+", rule["expr"]))
        assert used <= recorded, f"{rule.get('alert') or rule['record']}: {used - recorded}"


class NothingLost:
    """The store as the lost-offsets gauge reads it, where Kafka deleted nothing."""

    def lost_offsets(self) -> dict:
        return {}


def test_rules_read_only_metrics_the_worker_exports(tmp_path):
    from streams.drops import DropCollector
    from streams.metrics import DataDirCollector, LostOffsetsCollector, WorkerMetrics

    metrics = WorkerMetrics()
    lost = LostOffsetsCollector(NothingLost(), {})
    lost.refresh()
    metrics.registry.register(lost)
    metrics.registry.register(DataDirCollector(str(tmp_path)))  # under `portflow up --data`
    metrics.port("KHG")  # business series exist once a port is known
    metrics.set_partitions(["portflow.shipments:0"])  # per-partition series once it is owned
    metrics.set_progress("portflow.shipments:0", 5, 10)  # lag and offset once progress is known
    exported = {s.name for family in metrics.registry.collect() for s in family.samples}
    exported |= set(DropCollector.NAMES)  # once a day is judged (tests/unit/streams/test_drops)
    for rule in rules("alert") + rules("record"):
        used = set(re.findall(r"\bportflow_[a-z0-9_]+", rule["expr"]))
        assert used <= exported, f"{rule.get('alert') or rule['record']}: {used - exported}"
