"""Calendar periods in the reporting time zone: parsing, previous year, granules, edges."""

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portflow.domain.periods import InvalidPeriod, LocalCalendar, Period

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(text: str, tz=SHANGHAI):
    return LocalCalendar(tz).granules(datetime.fromisoformat(text))


def test_contract_example_belongs_to_next_day_in_shanghai():
    assert at("2024-06-30T23:30:00+00:00") == ("2024-07-01", "2024-07")


def test_day_boundary_is_midnight_local():
    assert at("2024-03-13T15:59:59+00:00")[0] == "2024-03-13"
    assert at("2024-03-13T16:00:00+00:00")[0] == "2024-03-14"


def test_offsets_are_honoured():
    assert at("2024-03-14T00:30:00+08:00")[0] == "2024-03-14"
    assert at("2024-03-14T00:30:00+09:00")[0] == "2024-03-13"
    assert at("2024-03-13T20:00:00-05:00")[0] == "2024-03-14"


def test_year_end_rolls_over_in_local_time():
    assert at("2023-12-31T16:00:00Z") == ("2024-01-01", "2024-01")
    assert at("2023-12-31T15:59:59Z") == ("2023-12-31", "2023-12")


def test_29_february():
    assert at("2024-02-28T16:00:00Z")[0] == "2024-02-29"
    assert at("2024-02-29T16:00:00Z")[0] == "2024-03-01"


def test_other_reporting_zone():
    assert at("2024-06-30T23:30:00Z", ZoneInfo("UTC"))[0] == "2024-06-30"
    # New York changes to daylight time on 2024-03-10; 04:30Z is 23:30 on the 9th (EST)
    assert at("2024-03-10T04:30:00Z", ZoneInfo("America/New_York"))[0] == "2024-03-09"
    assert at("2024-03-11T03:30:00Z", ZoneInfo("America/New_York"))[0] == "2024-03-10"


@pytest.mark.parametrize(
    ("text", "granules", "previous"),
    [
        ("2024", [f"2024-{m:02d}" for m in range(1, 13)], "2023"),
        ("2024-H1", [f"2024-{m:02d}" for m in range(1, 7)], "2023-H1"),
        ("2024-H2", [f"2024-{m:02d}" for m in range(7, 13)], "2023-H2"),
        ("2024-Q2", ["2024-04", "2024-05", "2024-06"], "2023-Q2"),
        ("2024-Q4", ["2024-10", "2024-11", "2024-12"], "2023-Q4"),
        ("2024-06", ["2024-06"], "2023-06"),
        ("2024-06-15", ["2024-06-15"], "2023-06-15"),
        ("2024-02-29", ["2024-02-29"], "2023-02-28"),
    ],
)
def test_parse_granules_and_previous(text, granules, previous):
    period = Period.parse(text)
    assert str(period) == text
    assert period.granules() == granules
    assert str(period.previous()) == previous


@pytest.mark.parametrize(
    "text",
    [
        "24",
        "2024-H3",
        "2024-Q5",
        "2024-13",
        "2024-00",
        "2023-02-29",
        "2024-6",
        "2024-06-31",
        "2024/06",
        "",
        "0000",
        "H1-2024",
    ],
)
def test_invalid_periods(text):
    with pytest.raises(InvalidPeriod):
        Period.parse(text)


ZONES = [
    "Asia/Shanghai",
    "UTC",
    "Asia/Kathmandu",
    "America/New_York",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "America/St_Johns",
]


@settings(max_examples=400, deadline=None)
@given(
    seconds=st.integers(min_value=-2_500_000_000, max_value=4_000_000_000),
    micros=st.integers(min_value=0, max_value=999_999),
    offset_minutes=st.integers(min_value=-14 * 60, max_value=14 * 60),
    zone=st.sampled_from(ZONES),
)
def test_memoised_calendar_matches_exact_conversion(seconds, micros, offset_minutes, zone):
    """Including pre-1900 local mean times with odd-second offsets, and DST edges."""
    tz = ZoneInfo(zone)
    calendar = LocalCalendar(tz)
    ts = datetime.fromtimestamp(seconds, timezone(timedelta(minutes=offset_minutes))) + timedelta(
        microseconds=micros
    )
    for probe in (ts, ts + timedelta(seconds=1), ts - timedelta(seconds=899)):
        calendar.granules(probe)  # warm the cache with neighbours
    exact = ts.astimezone(tz).date().isoformat()
    assert calendar.granules(ts) == (exact, exact[:7])


def test_memoised_calendar_around_every_shanghai_midnight_of_a_year():
    calendar = LocalCalendar(SHANGHAI)
    start = datetime(2023, 12, 31, 15, 0, tzinfo=UTC)
    for day in range(367):
        for seconds in (3599, 3600, 3601):
            ts = start + timedelta(days=day, seconds=seconds)
            assert calendar.granules(ts)[0] == ts.astimezone(SHANGHAI).date().isoformat()


def test_span_to_date_of_a_complete_half_is_the_half():
    from datetime import date

    from portflow.domain.periods import span_to_date

    period, now, before = span_to_date("half", date(2024, 6, 30))
    assert str(period) == "2024-H1"
    assert now == Period.parse("2024-H1").granules()
    assert before == Period.parse("2023-H1").granules()


def test_span_to_date_mid_month_uses_days_and_29_february():
    from datetime import date

    from portflow.domain.periods import span_to_date

    period, now, before = span_to_date("quarter", date(2024, 2, 29))
    assert str(period) == "2024-Q1"
    assert now == ["2024-01", "2024-02"]
    assert before == ["2023-01", "2023-02"]
    period, now, before = span_to_date("ytd", date(2024, 3, 2))
    assert str(period) == "2024"
    assert now == ["2024-01", "2024-02", "2024-03-01", "2024-03-02"]
    assert before == ["2023-01", "2023-02", "2023-03-01", "2023-03-02"]
    period, now, _ = span_to_date("month", date(2024, 7, 1))
    assert str(period) == "2024-07"
    assert now == ["2024-07-01"]


def test_fractional_seconds_before_1970_at_a_local_midnight():
    utc = LocalCalendar(ZoneInfo("UTC"))
    assert utc.granules(datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=UTC))[0] == "1969-12-31"
    assert utc.granules(datetime(1970, 1, 1, 0, 0, 0, 500000, tzinfo=UTC))[0] == "1970-01-01"
