"""The anomalies object: the request checked before Redis is read, units as in report."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from portflow.domain.detection import Expectation, Judgement
from portflow.domain.measures import MEASURES
from portflow.services.anomalies import (
    AnomaliesRequest,
    InvalidMinDrop,
    anomalies_table,
    anomaly_json,
    last_complete_day,
)


def closed_day(observed: int = 0, expected: float = 215_000_000.0) -> Judgement:
    return Judgement(
        date(2024, 3, 12),
        ("khorgos", "road"),
        observed,
        Expectation(expected, "trailing-weeks", expected, 0.05),
        True,
    )


def test_a_day_is_written_in_the_measures_unit_with_its_drop_and_baseline():
    assert anomaly_json(closed_day(), MEASURES["value_cny"], ["port", "mode"]) == {
        "day": "2024-03-12",
        "key": {"port": "khorgos", "mode": "road"},
        "observed": 0.0,
        "expected": 2150000.0,
        "drop_pct": 100.0,
        "baseline": "trailing-weeks",
    }
    trains = anomaly_json(closed_day(3, 12.0), MEASURES["trains"], ["port", "service"])
    assert (trains["observed"], trains["expected"], trains["drop_pct"]) == (3, 12, 75.0)


COMPLETE_2024 = {
    "newest_event": "2025-01-02T09:00:00+08:00",
    "time_zone": "Asia/Shanghai",
    "period_status": "complete",
    "judged_through": "2024-12-31",
}


def test_the_table_lists_each_day_and_says_none_when_there_is_none():
    result = {
        "period": "2024",
        "measure": "value_cny",
        "by": ["port", "mode"],
        "min_drop_pct": 50,
        "anomalies": [anomaly_json(closed_day(), MEASURES["value_cny"], ["port", "mode"])],
        "data": COMPLETE_2024,
    }
    lines = anomalies_table(result).splitlines()
    assert lines[0] == "value_cny by port, mode: days of 2024 at least 50% below expectation"
    assert lines[1] == "2024 is complete: events applied through 2025-01-02 09:00:00 Asia/Shanghai"
    assert lines[4].split() == [
        "2024-03-12",
        "khorgos",
        "road",
        "0.0",
        "2,150,000.0",
        "100.00",
        "trailing-weeks",
    ]
    assert anomalies_table({**result, "anomalies": []}).endswith("(none)")


@pytest.mark.parametrize(
    ("data", "line"),
    [
        (
            {
                "newest_event": "2024-06-15T14:00:00+08:00",
                "period_status": "in_progress",
                "judged_through": "2024-06-14",
            },
            "2024 is in progress: events applied through 2024-06-15 14:00:00 Asia/Shanghai; days "
            "through 2024-06-14 judged",
        ),
        (
            {
                "newest_event": "2024-01-01T08:00:00+08:00",
                "period_status": "in_progress",
                "judged_through": None,
            },
            "2024 is in progress: events applied through 2024-01-01 08:00:00 Asia/Shanghai; no "
            "complete day to judge yet",
        ),
        (
            {
                "newest_event": "2023-12-31T08:00:00+08:00",
                "period_status": "no_data_yet",
                "judged_through": None,
            },
            "2024 has no data yet: events applied only through 2023-12-31 08:00:00 "
            "Asia/Shanghai; no complete day to judge yet",
        ),
    ],
)
def test_the_table_says_which_days_of_a_period_not_complete_were_judged(data, line):
    result = {
        "period": "2024",
        "measure": "value_cny",
        "by": ["port"],
        "min_drop_pct": 50,
        "anomalies": [],
        "data": {**data, "time_zone": "Asia/Shanghai"},
    }
    assert anomalies_table(result).splitlines()[1] == line


def test_a_request_names_what_is_wrong_with_it():
    request = AnomaliesRequest.parse("2024-Q1", "trains", ["port", "service"], 30)
    assert (str(request.period), request.spec.name, request.by, request.min_drop_pct) == (
        "2024-Q1",
        "trains",
        ["port", "service"],
        30,
    )
    with pytest.raises(InvalidMinDrop, match="above 0 and at most 100"):
        AnomaliesRequest.parse("2024", "value_cny", ["port"], 150)


class OneEvent:
    def __init__(self, latest: datetime | None) -> None:
        self.latest = latest

    def latest_event_time(self):
        return None if self.latest is None else int(self.latest.timestamp())


def test_the_complete_days_end_at_the_clocks_however_far_ahead_the_newest_event_lies():
    utc, now = ZoneInfo("UTC"), datetime(2026, 5, 28, 12, tzinfo=UTC).timestamp()
    year_2999 = OneEvent(datetime(2999, 6, 1, tzinfo=UTC))
    assert last_complete_day(year_2999, utc, now, None) == date(2026, 5, 28)  # guard off: +1 day
    assert last_complete_day(year_2999, utc, now, 3600) == date(2026, 5, 27)
    history = OneEvent(datetime(2024, 6, 30, 8, tzinfo=UTC))
    assert last_complete_day(history, utc, now, 86400) == date(2024, 6, 29)
    assert last_complete_day(OneEvent(None), utc, now, 86400) is None
