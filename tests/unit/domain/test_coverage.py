"""How far the events applied go against a period: no data yet, in progress, complete."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from portflow.domain.coverage import Coverage, period_status
from portflow.domain.periods import Period

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    ("text", "first", "last"),
    [
        ("2024", date(2024, 1, 1), date(2024, 12, 31)),
        ("2024-H2", date(2024, 7, 1), date(2024, 12, 31)),
        ("2024-Q1", date(2024, 1, 1), date(2024, 3, 31)),
        ("2024-02", date(2024, 2, 1), date(2024, 2, 29)),
        ("2023-02", date(2023, 2, 1), date(2023, 2, 28)),
        ("2024-06-15", date(2024, 6, 15), date(2024, 6, 15)),
        ("9999", date(9999, 1, 1), date(9999, 12, 31)),
    ],
)
def test_a_period_knows_its_first_and_last_day(text, first, last):
    period = Period.parse(text)
    assert (period.first_day(), period.last_day()) == (first, last)
    assert period.days()[0] == first
    assert period.days()[-1] == last


@pytest.mark.parametrize(
    ("newest", "status"),
    [
        (None, "no_data_yet"),
        (date(2024, 3, 31), "no_data_yet"),
        (date(2024, 4, 1), "in_progress"),
        (date(2024, 6, 30), "in_progress"),
        (date(2024, 7, 1), "complete"),
        (date(2025, 1, 1), "complete"),
    ],
)
def test_the_newest_events_day_decides_a_periods_status(newest, status):
    assert period_status(Period.parse("2024-Q2"), newest) == status


def ts(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp())


def test_the_reporting_time_zone_draws_the_periods_bounds():
    june = Period.parse("2024-06")
    # 16:00 UTC on 30 June is already 1 July in Shanghai: June is complete there, not in UTC
    assert Coverage.of(june, ts("2024-06-30T16:00:00+00:00"), SHANGHAI).status == "complete"
    assert (
        Coverage.of(june, ts("2024-06-30T16:00:00+00:00"), ZoneInfo("UTC")).status == "in_progress"
    )
    assert Coverage.of(june, ts("2024-05-31T16:00:00+00:00"), SHANGHAI).status == "in_progress"
    assert Coverage.of(june, ts("2024-05-31T15:59:59+00:00"), SHANGHAI).status == "no_data_yet"


def test_the_last_complete_day_is_the_day_before_the_newest_event_within_the_period():
    june = Period.parse("2024-06")
    assert Coverage.of(june, ts("2024-06-15T09:00:00+08:00"), SHANGHAI).last_complete_day == date(
        2024, 6, 14
    )
    assert Coverage.of(june, ts("2024-08-01T09:00:00+08:00"), SHANGHAI).last_complete_day == date(
        2024, 6, 30
    )
    assert Coverage.of(june, ts("2024-06-01T09:00:00+08:00"), SHANGHAI).last_complete_day is None
    assert Coverage.of(june, None, SHANGHAI).last_complete_day is None


def test_the_newest_event_is_written_in_the_reporting_time_zone():
    coverage = Coverage.of(Period.parse("2024"), ts("2024-06-30T23:30:00Z"), SHANGHAI)
    assert coverage.as_json() == {
        "newest_event": "2024-07-01T07:30:00+08:00",
        "time_zone": "Asia/Shanghai",
        "period_status": "in_progress",
    }
