"""The Grafana dashboards: committed JSON matches grafana/build.py, and every query is complete."""

import importlib.util
import json
import re
from pathlib import Path

import pytest

BUILD = Path(__file__).resolve().parents[2] / "grafana" / "build.py"


def _load_build():
    spec = importlib.util.spec_from_file_location("grafana_build", BUILD)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _load_build()
BOARDS = build.dashboards()


def test_both_boards_are_generated():
    assert sorted(BOARDS) == ["portflow-overview.json", "portflow-pipeline.json"]
    assert {b["uid"] for b in BOARDS.values()} == {"portflow-overview", "portflow-pipeline"}


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_committed_json_is_what_the_code_generates(name):
    committed = (build.OUT_DIR / name).read_text(encoding="utf-8")
    assert committed == build.render(BOARDS[name]), \
        f"grafana/dashboards/{name} is stale: run .venv/bin/python grafana/build.py"


def test_generation_is_deterministic():
    assert json.dumps(build.dashboards(), sort_keys=True) == json.dumps(BOARDS, sort_keys=True)


def test_check_flags_a_stale_file(tmp_path, monkeypatch, capsys):
    for name, board in BOARDS.items():
        (tmp_path / name).write_text(build.render(board), encoding="utf-8")
    monkeypatch.setattr(build, "OUT_DIR", tmp_path)
    assert build.main(["--check"]) == 0
    (tmp_path / "portflow-pipeline.json").write_text("{}\n", encoding="utf-8")
    assert build.main(["--check"]) == 1
    assert "portflow-pipeline.json" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_schema_datasource_and_ref_ids(name):
    board = BOARDS[name]
    assert board["schemaVersion"] == 41
    panels = [p for p in board["panels"] if p["type"] != "row"]
    assert panels
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert panel["targets"], panel["title"]
        ref_ids = [t.get("refId") for t in panel["targets"]]
        assert all(ref_ids) and len(set(ref_ids)) == len(ref_ids), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == {"type": "prometheus", "uid": "prometheus"}
            assert target["expr"]


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_port_and_mode_variables(name):
    variables = {v["name"]: v for v in BOARDS[name]["templating"]["list"]}
    for label in ("port", "mode"):
        var = variables[label]
        assert var["type"] == "query" and var["multi"] and var["includeAll"]
        assert var["query"] == f"label_values(portflow_trade_value_yuan_total, {label})"
        assert var["datasource"]["uid"] == "prometheus"


def test_overview_span_variable():
    variables = {v["name"]: v for v in BOARDS["portflow-overview.json"]["templating"]["list"]}
    span = variables["span"]
    assert span["type"] == "custom" and span["query"] == "month,quarter,half,ytd"
    assert span["current"]["value"] == "half"


def test_panel_queries_are_complete():
    queries = build.panel_queries()
    assert queries
    assert {uid for uid, _, _ in queries} == {"portflow-overview", "portflow-pipeline"}
    for uid, title, expr in queries:
        assert isinstance(expr, str) and expr.strip(), (uid, title)
        assert "$" not in expr, (uid, title, expr)
    exprs = [expr for _, _, expr in queries]
    assert any('span="half"' in e for e in exprs)
    assert any(re.search(r"offset 52w\)$", e) for e in exprs)
    assert not any("offset 1y" in e for e in exprs)
