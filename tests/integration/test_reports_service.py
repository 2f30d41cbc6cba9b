"""The report service against a real redis-server: exact answers that follow every write (the
worker bumps each granule's version in its atomic step), re-reading only what changed; and the
CLI's report options."""

from __future__ import annotations

import json
from decimal import Decimal

from portflow.domain.queries import ReportRequest, SeriesRequest
from portflow.domain.report import to_json
from portflow.services.reports import Reports
from tests.support.cli import invoke
from tests.support.events import shipment
from tests.support.processing import apply


def test_a_kept_answer_follows_new_writes_and_rereads_only_the_granules_that_changed(settings):
    store = apply(
        settings,
        [
            shipment("a", "2024-01-05T10:00:00+08:00"),
            shipment("b", "2024-02-05T10:00:00+08:00", port="kashgar"),
        ],
    )
    reports = Reports(store, settings.tz)
    read = spy_on_cells(store)
    request = ReportRequest.parse("2024-Q1", by=["port"])
    assert reports.report(request)["total"]["current"] == Decimal("200.00")
    assert sorted(read.pop()) == ["2023-01", "2023-02", "2023-03", "2024-01", "2024-02", "2024-03"]
    assert reports.report(request)["total"]["current"] == Decimal("200.00")
    assert not read
    apply(settings, [shipment("c", "2024-02-06T10:00:00+08:00", value_cny="0.01")], first_offset=2)
    result = reports.report(request)
    assert result["total"]["current"] == Decimal("200.01")
    assert read.pop() == ["2024-02"]  # the only granule written since
    assert {r["key"]["port"]: r["current"] for r in result["rows"]} == {
        "khorgos": Decimal("100.01"),
        "kashgar": Decimal("100.00"),
    }


def test_a_series_reads_days_against_52_weeks_earlier(settings):
    store = apply(
        settings,
        [
            shipment("a", "2024-06-15T10:00:00+08:00"),
            shipment("b", "2023-06-17T10:00:00+08:00", value_cny="50.00"),
        ],
    )
    result = Reports(store, settings.tz).series(
        SeriesRequest.parse(start="2024-06-15", end="2024-06-15")
    )
    assert result["rows"] == [
        {
            "time": "2024-06-15T00:00:00+08:00",
            "key": "total",
            "value": Decimal("100.00"),
            "previous": Decimal("50.00"),
            "previous_time": "2023-06-17T00:00:00+08:00",
        }
    ]
    assert result["data"] == {
        "newest_event": "2024-06-15T10:00:00+08:00",
        "time_zone": "Asia/Shanghai",
        "last_complete_day": "2024-06-14",
    }


def test_the_cli_report_takes_the_apis_options(settings):
    apply(
        settings,
        [
            shipment("a", "2024-05-05T10:00:00+08:00", value_cny="300.00"),
            shipment("b", "2024-06-05T10:00:00+08:00", port="kashgar"),
            shipment("c", "2024-06-06T10:00:00+08:00"),
        ],
    )
    result = invoke(
        settings,
        "report",
        "--period",
        "2024-06",
        "--compare",
        "previous",
        "--by",
        "port",
        "--filter",
        "mode:rail",
        "--usd-rate",
        "7.2570",
        "--top",
        "1",
        "--json",
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["previous_period"] == "2024-05"
    assert report["currency"] == "USD"
    assert report["total"] == {
        "current": 27.56,
        "previous": 41.34,
        "yoy_pct": -33.33,
        "change": -13.78,
        "growth_pct": -33.33,
    }
    assert [r["key"]["port"] for r in report["rows"]] == ["kashgar", "(other)"]
    table = invoke(settings, "report", "--period", "2024-06", "--by", "port", "--ytd")
    assert table.exit_code == 0
    assert "2024-01-01..2024-06-30" in table.output
    bad = invoke(settings, "report", "--period", "2024-06", "--filter", "service:x")
    assert bad.exit_code == 2
    assert "filter 'service:x'" in bad.output


def spy_on_cells(store) -> list:
    """The granules whose cells the store is asked for, call by call."""
    read: list = []
    cells = store.cells_per_granule
    store.cells_per_granule = lambda *a: read.append(a[2]) or cells(*a)
    return read


def test_another_reader_takes_the_rollups_left_in_redis_and_a_moved_version_is_summed_again(
    settings,
):
    store = apply(settings, [shipment("a", "2024-01-05T10:00:00+08:00")])
    request = ReportRequest.parse("2024-01", by=["port"], filters=["mode:rail"])
    assert Reports(store, settings.tz).report(request)["total"]["current"] == Decimal("100.00")
    read = spy_on_cells(store)
    assert Reports(store, settings.tz).report(request)["total"]["current"] == Decimal("100.00")
    assert read == []  # a new process: the rollups kept in Redis, not the cells
    apply(settings, [shipment("b", "2024-01-06T10:00:00+08:00")], first_offset=1)
    assert Reports(store, settings.tz).report(request)["total"]["current"] == Decimal("200.00")
    assert read == [["2024-01"]]


def test_within_its_staleness_bound_a_reader_answers_from_what_it_summed(settings):
    store = apply(settings, [shipment("a", "2024-01-05T10:00:00+08:00")])
    request = ReportRequest.parse("2024-01")
    patient = Reports(store, settings.tz, max_staleness_s=3600)
    assert patient.report(request)["total"]["current"] == Decimal("100.00")
    apply(settings, [shipment("b", "2024-01-06T10:00:00+08:00")], first_offset=1)
    assert patient.report(request)["total"]["current"] == Decimal("100.00")
    assert Reports(store, settings.tz).report(request)["total"]["current"] == Decimal("200.00")


def test_the_json_answer_is_the_objects_and_follows_the_newest_event(settings):
    store = apply(settings, [shipment("a", "2024-01-05T10:00:00+08:00")])
    reports = Reports(store, settings.tz)
    request = ReportRequest.parse("2024-01", by=["port"])
    first = json.loads(reports.report_json(request))
    assert first == json.loads(to_json(reports.report(request)))
    assert first["data"]["period_status"] == "in_progress"
    apply(
        settings,
        [
            shipment("b", "2023-01-06T10:00:00+08:00", port="kashgar"),
            shipment("c", "2024-02-01T10:00:00+08:00", port="kashgar"),
        ],
        first_offset=1,
    )
    second = json.loads(reports.report_json(request))
    assert second["data"]["period_status"] == "complete"
    assert second["total"]["previous"] == 100.0
    series = SeriesRequest.parse(granularity="month", start="2024-01", end="2024-02")
    assert json.loads(reports.series_json(series)) == json.loads(to_json(reports.series(series)))
