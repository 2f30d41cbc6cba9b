"""The benchmark's own reading of the questions (bench.api), which the API's answers are
checked against: it must be right on its own."""

from __future__ import annotations

import json
from datetime import date

from tests.bench import bench_module


def spans(period: str, compare: str = "yoy", ytd: bool = False):
    return bench_module("api").compared_spans(period, compare, ytd)


def test_a_period_is_compared_with_the_same_days_a_year_earlier():
    assert spans("2024-H1") == (
        (date(2024, 1, 1), date(2024, 6, 30)),
        (date(2023, 1, 1), date(2023, 6, 30)),
    )
    assert spans("2024-02") == (
        (date(2024, 2, 1), date(2024, 2, 29)),
        (date(2023, 2, 1), date(2023, 2, 28)),
    )


def test_the_period_before_is_the_day_month_quarter_half_or_year_before():
    assert spans("2024-03-01", "previous")[1] == (date(2024, 2, 29), date(2024, 2, 29))
    assert spans("2024-01", "previous")[1] == (date(2023, 12, 1), date(2023, 12, 31))
    assert spans("2024-Q2", "previous")[1] == (date(2024, 1, 1), date(2024, 3, 31))
    assert spans("2024-H1", "previous")[1] == (date(2023, 7, 1), date(2023, 12, 31))
    assert spans("2024", "previous")[1] == (date(2023, 1, 1), date(2023, 12, 31))


def test_year_to_date_runs_from_the_first_of_january_in_both_years():
    assert spans("2024-06", ytd=True) == (
        (date(2024, 1, 1), date(2024, 6, 30)),
        (date(2023, 1, 1), date(2023, 6, 30)),
    )


def test_the_history_is_the_scenario_26_weeks_later_under_new_ids(tmp_path):
    source, target = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    source.write_text(
        '{"type":"train","event_id":"xj2023-c-1","ts":"2023-01-02T23:30:00Z","port":"khorgos",'
        '"service":"china-europe","direction":"inbound","teu":90,"train_id":"X2300001"}\n'
    )
    assert bench_module("api").shift_history(source, target) == 1
    event = json.loads(target.read_text())
    assert (event["event_id"], event["train_id"]) == ("hxj2023-c-1", "hX2300001")
    assert event["ts"] == "2023-07-03T23:30:00+00:00"  # a Tuesday in Shanghai, as before
    assert event["teu"] == 90
    assert event["port"] == "khorgos"
