"""Report and series requests: which days against which, filters, currency, and errors that
name the parameter."""

from datetime import date
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from portflow.domain.queries import InvalidParameter, MissingRates, ReportRequest, SeriesRequest

SHANGHAI = ZoneInfo("Asia/Shanghai")


def spans(request):
    return [tuple(map(str, request.span())), tuple(map(str, request.previous_span()))]


@pytest.mark.parametrize(
    ("period", "compare", "expected"),
    [
        ("2024-03", "previous", "2024-02"),
        ("2024-01", "previous", "2023-12"),
        ("2024-Q1", "previous", "2023-Q4"),
        ("2024-H2", "previous", "2024-H1"),
        ("2024", "previous", "2023"),
        ("2024-03-01", "previous", "2024-02-29"),
        ("2024-02-29", "yoy", "2023-02-28"),
        ("2024-Q2", "yoy", "2023-Q2"),
    ],
)
def test_the_compared_period(period, compare, expected):
    assert str(ReportRequest.parse(period, compare=compare).compared) == expected


def test_year_to_date_runs_from_the_first_of_january_in_both_years():
    request = ReportRequest.parse("2024-06-15", ytd=True)
    assert spans(request) == [("2024-01-01", "2024-06-15"), ("2023-01-01", "2023-06-15")]
    current, previous = request.granules()
    assert current[:5] == ["2024-01", "2024-02", "2024-03", "2024-04", "2024-05"]
    assert current[5:] == [f"2024-06-{d:02d}" for d in range(1, 16)]
    assert previous[0] == "2023-01"
    assert previous[-1] == "2023-06-15"


def test_year_to_date_of_a_leap_day_ends_on_the_28th_a_year_earlier():
    assert spans(ReportRequest.parse("2024-02-29", ytd=True))[1] == ("2023-01-01", "2023-02-28")


def test_year_to_date_of_a_half_is_the_half_when_it_is_the_first():
    assert spans(ReportRequest.parse("2024-H2", ytd=True))[0] == ("2024-01-01", "2024-12-31")
    assert (
        ReportRequest.parse("2024-H1", ytd=True).granules()[0]
        == ReportRequest.parse("2024-H1").granules()[0]
    )


def test_filters_are_canonical_and_one_dimensions_values_are_alternatives():
    a = ReportRequest.parse("2024", filters=["port:khorgos", "mode:rail", "port:alashankou"])
    b = ReportRequest.parse("2024", filters=["mode:rail", "port:alashankou", "port:khorgos"])
    assert a.filters == b.filters == (("mode", ("rail",)), ("port", ("alashankou", "khorgos")))


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"period": "2024-13"}, "period"),
        ({"period": "0001"}, "period"),
        ({"period": "2024", "measure": "value"}, "measure"),
        ({"period": "2024", "by": ["port", "mode", "partner"]}, "by"),
        ({"period": "2024", "by": ["service"]}, "by"),
        ({"period": "2024", "compare": "mom"}, "compare"),
        ({"period": "2024-06", "compare": "previous", "ytd": True}, "ytd"),
        ({"period": "2024", "filters": ["port"]}, "filter"),
        ({"period": "2024", "filters": ["service:x"]}, "filter"),
        ({"period": "2024", "filters": ["port:a b"]}, "filter"),
        ({"period": "2024", "filters": ["port:a|b"]}, "filter"),
        ({"period": "2024", "currency": "EUR"}, "currency"),
        ({"period": "2024", "measure": "trains", "currency": "USD"}, "currency"),
        ({"period": "2024", "currency": "CNY", "usd_rate": "7.1"}, "usd_rate"),
        ({"period": "2024", "usd_rate": "abc"}, "usd_rate"),
        ({"period": "2024", "usd_rate": "0"}, "usd_rate"),
        ({"period": "2024", "usd_rate": "NaN"}, "usd_rate"),
        ({"period": "2024", "usd_rate": "1e400"}, "usd_rate"),
        ({"period": "2024", "top": 0}, "top"),
    ],
)
def test_a_bad_report_parameter_is_named(kwargs, parameter):
    with pytest.raises(InvalidParameter) as caught:
        ReportRequest.parse(**kwargs)
    assert caught.value.parameter == parameter
    assert str(caught.value)


def test_a_fixed_rate_implies_dollars_and_dollars_need_every_months_rate():
    request = ReportRequest.parse("2024-H1", usd_rate="7.2570")
    assert request.money.in_dollars
    assert request.money.unit == "usd"
    months = ReportRequest.parse("2024-H1", currency="usd").money
    with pytest.raises(MissingRates) as caught:
        months.divisors(["2024-01", "2024-02-03", "2024-03"], {"2024-01": Decimal("7.1")})
    assert caught.value.months == ["2024-02", "2024-03"]
    assert "2024-02, 2024-03" in str(caught.value)


def test_series_days_compare_with_the_same_weekday_52_weeks_earlier():
    request = SeriesRequest.parse(start="2024-06-14", end="2024-06-16")
    pairs = request.times(SHANGHAI, date(2024, 7, 1))
    assert pairs == [
        ("2024-06-14", "2023-06-16"),
        ("2024-06-15", "2023-06-17"),
        ("2024-06-16", "2023-06-18"),
    ]
    assert all(date.fromisoformat(a).weekday() == date.fromisoformat(b).weekday() for a, b in pairs)


def test_series_months_compare_with_the_same_month_a_year_earlier():
    request = SeriesRequest.parse(granularity="month", start="2023-11", end="2024-02-10")
    assert request.times(SHANGHAI, date(2024, 7, 1)) == [
        ("2023-11", "2022-11"),
        ("2023-12", "2022-12"),
        ("2024-01", "2023-01"),
        ("2024-02", "2023-02"),
    ]


def test_series_take_grafanas_epoch_milliseconds_in_the_reporting_time_zone():
    # 2024-06-14T16:00:00Z is 2024-06-15 00:00 in Shanghai
    request = SeriesRequest.parse(start="1718380800000", end="2024-06-15T23:59:59+08:00")
    assert request.times(SHANGHAI, date(2024, 7, 1))[0][0] == "2024-06-15"
    assert len(request.times(SHANGHAI, date(2024, 7, 1))) == 1


def test_series_default_to_the_last_year_up_to_the_newest_day():
    pairs = SeriesRequest.parse().times(SHANGHAI, date(2024, 6, 30))
    assert len(pairs) == 365
    assert pairs[-1][0] == "2024-06-30"
    months = SeriesRequest.parse(granularity="month").times(SHANGHAI, date(2024, 6, 30))
    assert months[0][0] == "2022-07"
    assert months[-1][0] == "2024-06"


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"granularity": "week"}, "granularity"),
        ({"start": "yesterday"}, "from"),
        ({"end": "2024-02-30"}, "to"),
        ({"start": "2024-06-02", "end": "2024-06-01"}, "from"),
        ({"start": "2000-01-01", "end": "2024-01-01"}, "to"),
        ({"granularity": "month", "start": "1900-01", "end": "2024-01"}, "to"),
        ({"start": "2024-06-01T00:00:00"}, "from"),  # no UTC offset
    ],
)
def test_a_bad_series_parameter_is_named(kwargs, parameter):
    with pytest.raises(InvalidParameter) as caught:
        SeriesRequest.parse(**kwargs).times(SHANGHAI, date(2024, 6, 30))
    assert caught.value.parameter == parameter
