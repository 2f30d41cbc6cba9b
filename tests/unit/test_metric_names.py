"""Every metric a dashboard panel or a Prometheus rule names is one the worker exports."""

import importlib.util
import re
from pathlib import Path

import yaml

from streams.drops import DropCollector
from streams.metrics import DataDirCollector, LostOffsetsCollector, WorkerMetrics
from streams.yoy import YOY_MEASURES

REPO = Path(__file__).resolve().parents[2]
NAME = re.compile(r"\bportflow_[a-z0-9_]+")


SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def exported() -> set[str]:
    """Sample names of every family the worker registers (labelled ones may have no sample yet)."""
    names = {
        family.name + suffix
        for family in WorkerMetrics().registry.collect()
        for suffix in SUFFIXES[family.type]
    }
    names |= {name for name, *_ in YOY_MEASURES} | {LostOffsetsCollector.NAME}
    names |= set(DropCollector.NAMES) | set(DataDirCollector.NAMES)  # the last: with --data
    names |= {
        "portflow_yoy_ratio",
        "portflow_yoy_period_info",
        "portflow_latest_event_timestamp_seconds",
    }
    return names


def referenced_by_dashboards() -> set[str]:
    spec = importlib.util.spec_from_file_location("grafana_build", REPO / "grafana" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {name for _, _, expr in module.panel_queries() for name in NAME.findall(expr)}


def referenced_by_rules() -> set[str]:
    names = set()
    for path in (REPO / "prometheus" / "rules").glob("*.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                names |= set(NAME.findall(rule["expr"]))
    return names


def test_dashboards_and_rules_only_name_exported_metrics():
    missing = (referenced_by_dashboards() | referenced_by_rules()) - exported()
    assert not missing, f"not exported by the worker: {sorted(missing)}"


def test_the_check_sees_metrics_at_all():
    assert "portflow_trade_value_yuan_total" in referenced_by_dashboards() & exported()
    assert "portflow_consumer_lag_records" in referenced_by_rules() & exported()
