"""The Grafana dashboards: committed JSON matches grafana/build.py, every Prometheus query is
complete, and every request the Infinity datasource makes to portflow's API is listed by
api_targets() with its variables substituted (tests/integration/test_grafana_api.py runs them)."""

import importlib.util
import json
import re
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

BUILD = Path(__file__).resolve().parents[2] / "grafana" / "build.py"


def _load_build():
    spec = importlib.util.spec_from_file_location("grafana_build", BUILD)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _load_build()
BOARDS = build.dashboards()


EVENT_TIME = BOARDS["portflow-event-time.json"]
PROMETHEUS = {"type": "prometheus", "uid": "prometheus"}
API = {"type": "yesoreyeram-infinity-datasource", "uid": "portflow-api"}
PLAIN_PATH = re.compile(r"[a-z_]+(\.[a-z_]+)*")  # where GJSON and a dict walk agree


def test_the_three_boards_are_generated():
    assert sorted(BOARDS) == [
        "portflow-event-time.json",
        "portflow-overview.json",
        "portflow-pipeline.json",
    ]
    assert {b["uid"] for b in BOARDS.values()} == {
        "portflow-overview",
        "portflow-pipeline",
        "portflow-event-time",
    }


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_committed_json_is_what_the_code_generates(name):
    committed = (build.OUT_DIR / name).read_text(encoding="utf-8")
    assert committed == build.render(BOARDS[name]), (
        f"grafana/dashboards/{name} is stale: run .venv/bin/python grafana/build.py"
    )


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
        assert all(ref_ids), panel["title"]
        assert len(set(ref_ids)) == len(ref_ids), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] in (PROMETHEUS, API), panel["title"]
            assert target["datasource"] == panel["datasource"], panel["title"]
            if target["datasource"] == PROMETHEUS:
                assert target["expr"]
            else:
                assert target["url"].startswith("/v1/"), panel["title"]


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_panels_fit_the_24_columns_without_overlapping(name):
    taken = set()
    for panel in BOARDS[name]["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not cells & taken, panel["title"]
        taken |= cells


@pytest.mark.parametrize("name", ["portflow-overview.json", "portflow-pipeline.json"])
def test_port_and_mode_variables(name):
    variables = {v["name"]: v for v in BOARDS[name]["templating"]["list"]}
    for label in ("port", "mode"):
        var = variables[label]
        assert var["type"] == "query"
        assert var["multi"]
        assert var["includeAll"]
        assert var["query"] == f"label_values(portflow_trade_value_yuan_total, {label})"
        assert var["datasource"]["uid"] == "prometheus"


def test_overview_span_variable():
    variables = {v["name"]: v for v in BOARDS["portflow-overview.json"]["templating"]["list"]}
    span = variables["span"]
    assert span["type"] == "custom"
    assert span["query"] == "month,quarter,half,ytd"
    assert span["current"]["value"] == "half"


def test_panel_queries_are_complete():
    queries = build.panel_queries()
    assert queries
    assert {uid for uid, _, _ in queries} == {"portflow-overview", "portflow-pipeline"}
    for uid, title, expr in queries:
        assert isinstance(expr, str), (uid, title)
        assert expr.strip(), (uid, title)
        assert "$" not in expr, (uid, title, expr)
    exprs = [expr for _, _, expr in queries]
    assert any('span="half"' in e for e in exprs)
    assert any(re.search(r"offset 52w\)$", e) for e in exprs)
    assert not any("offset 1y" in e for e in exprs)


# ---- the event-time board: portflow's API through the Infinity datasource --------------------


def infinity_queries() -> list[tuple[str, dict]]:
    return [found for board in BOARDS.values() for found in build.infinity_targets(board)]


def test_every_infinity_query_is_a_backend_parsed_get_of_the_api():
    queries = infinity_queries()
    assert len(queries) >= 10
    for where, query in queries:
        assert query["datasource"] == API, where
        assert (query["type"], query["source"], query["parser"], query["format"]) == (
            "json",
            "url",
            "backend",
            "table",
        ), where
        assert query["url_options"]["method"] == "GET", where
        assert query["url"] in ("/v1/reports", "/v1/series"), where
        assert PLAIN_PATH.fullmatch(query["root_selector"]), where
        assert query["columns"], where
        for column in query["columns"]:
            assert PLAIN_PATH.fullmatch(column["selector"]), (where, column)
            assert column["type"] in ("string", "number", "timestamp"), (where, column)
            if column["type"] == "timestamp":  # the API's RFC 3339 times, in Go's layout
                assert column["timestampFormat"] == "2006-01-02T15:04:05Z07:00"


def test_api_targets_cover_every_infinity_query_with_every_variable_substituted():
    targets = build.api_targets()
    queries = infinity_queries()
    assert [(t.where, t.root_selector, t.selectors) for t in targets] == [
        (where, q["root_selector"], tuple(c["selector"] for c in q["columns"]))
        for where, q in queries
    ]
    for target in targets:
        assert target.board == "portflow-event-time"
        assert "$" not in target.url, target
        assert target.url.startswith(("/v1/reports?", "/v1/series?")), target


def parameters(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def test_the_period_tables_by_port_mode_zone_group_and_partner_and_the_year_to_date():
    reports = [parameters(t.url) for t in build.api_targets() if t.url.startswith("/v1/reports")]
    for query in reports:
        assert query["period"] == ["2024-H1"]
    tables = [q for q in reports if "compare" in q]
    assert {q["by"][0] for q in tables if "by" in q and "ytd" not in q} == {
        "port",
        "mode",
        "zone_group",
        "partner",
    }
    assert all(q["compare"] == ["yoy"] and q["currency"] == ["CNY"] for q in tables)
    assert any(q.get("ytd") == ["true"] and q.get("by") == ["port"] for q in tables)
    assert any(q.get("ytd") == ["true"] and "by" not in q for q in tables)


def test_the_year_to_date_is_always_against_a_year_earlier():
    """The API takes ytd only with compare=yoy (400 otherwise), whatever $compare says."""
    values = {**build.API_TEST_VALUES, "compare": "previous"}
    queries = [parameters(t.url) for t in build.api_targets(values)]
    ytd = [q for q in queries if "ytd" in q]
    assert len(ytd) == 2
    assert all(q["compare"] == ["yoy"] for q in ytd)
    assert all(q["compare"] == ["previous"] for q in queries if "compare" in q and "ytd" not in q)


def test_the_series_ask_for_days_and_months_over_grafanas_time_range_in_epoch_ms():
    series = {
        parameters(t.url)["granularity"][0]: (parameters(t.url), t.selectors)
        for t in build.api_targets()
        if t.url.startswith("/v1/series")
    }
    assert set(series) == {"day", "month"}
    day, selectors = series["day"]
    assert day["by"] == ["port"]
    assert day["filter"] == ["port:khorgos"]
    assert selectors == ("time", "value", "previous")
    for query, _ in series.values():
        assert query["from"] == ["1704038400000"]  # 2024-01-01T00:00:00+08:00
        assert query["to"] == ["1719763199999"]  # 2024-06-30T23:59:59.999+08:00
    raw = [q for _, q in infinity_queries() if q["url"] == "/v1/series"]
    for query in raw:  # Grafana's own epoch-ms form, not ${__from:date:iso}
        params = {p["key"]: p["value"] for p in query["url_options"]["params"]}
        assert (params["from"], params["to"]) == ("${__from}", "${__to}")


def test_unit_overrides_name_columns_the_panel_reads():
    for panel in EVENT_TIME["panels"]:
        names = {c["text"] for t in panel.get("targets", []) for c in t.get("columns", [])}
        for override in panel.get("fieldConfig", {}).get("overrides", []):
            assert override["matcher"]["id"] == "byName"
            assert override["matcher"]["options"] in names, panel["title"]


def test_event_time_variables():
    variables = {v["name"]: v for v in EVENT_TIME["templating"]["list"]}
    assert set(variables) == {"period", "compare", "currency", "port"}
    assert variables["period"]["type"] == "textbox"
    assert variables["period"]["query"] == "2024-H1"
    assert variables["compare"]["query"] == "yoy,previous"
    assert variables["currency"]["query"] == "CNY,USD"
    port = variables["port"]
    assert port["type"] == "query"
    assert port["datasource"] == API
    assert not port["multi"]
    assert not port["includeAll"]
    assert port["query"]["queryType"] == "infinity"
    used = {
        name
        for target in build.api_targets(values={})
        for name in re.findall(r"\$\{?(\w+)", unquote(target.url))
    }
    assert used <= set(variables) | {"__from", "__to"}
    assert set(build.API_TEST_VALUES) == set(variables) | {"__from", "__to"}
