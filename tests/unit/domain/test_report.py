"""Reports from cells: sums by one or two dimensions, zones, sorting, YoY and exact JSON."""

import json
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from portflow.domain.coverage import Coverage
from portflow.domain.measures import InvalidReport, check_request
from portflow.domain.queries import ReportRequest
from portflow.domain.report import build_report, to_json, to_table, yoy_pct
from portflow.domain.rollup import Summer

CELLS_2024 = {
    "khorgos|rail|export|KZ|general|cbz-khorgos,ftz-khorgos": 150_00,
    "khorgos|road|import|KG|general|": 50_00,
    "urumqi|air|import|DE|bonded_logistics|ftz-urumqi": 200_00,
}
CELLS_2023 = {
    "khorgos|rail|export|KZ|general|cbz-khorgos,ftz-khorgos": 100_00,
    "kashgar|road|import|KG|general|": 1_01,
}


SHANGHAI = ZoneInfo("Asia/Shanghai")
AFTER_H1 = int(datetime(2024, 7, 3, 10, 0, tzinfo=SHANGHAI).timestamp())


def report(by, measure="value_cny", now=CELLS_2024, before=CELLS_2023, newest=AFTER_H1):
    """A report of 2024-H1 whose cells all fall in its first month (and 2023's)."""
    request = ReportRequest.parse("2024-H1", measure, by)
    summer = Summer(request.spec.event_type, request.by)
    current, previous = request.granules()
    return build_report(
        request,
        {current[0]: summer.rollup(now)},
        {previous[0]: summer.rollup(before)},
        Coverage.of(request.period, newest, SHANGHAI),
    )


def test_by_port_sums_sorts_and_compares():
    result = report(["port"])
    assert result["period"] == "2024-H1"
    assert result["previous_period"] == "2023-H1"
    assert [(r["key"], r["current"], r["previous"], r["yoy_pct"]) for r in result["rows"]] == [
        ({"port": "khorgos"}, Decimal("200.00"), Decimal("100.00"), Decimal("100.00")),
        ({"port": "urumqi"}, Decimal("200.00"), Decimal("0.00"), None),
        ({"port": "kashgar"}, Decimal("0.00"), Decimal("1.01"), Decimal("-100.00")),
    ]
    assert result["total"] == {
        "current": Decimal("400.00"),
        "previous": Decimal("101.01"),
        "yoy_pct": Decimal("296.00"),
        "change": Decimal("298.99"),
        "growth_pct": Decimal("296.00"),
    }


def test_zone_rows_overlap_and_total_is_not_their_sum():
    result = report(["zone"])
    rows = {r["key"]["zone"]: r["current"] for r in result["rows"]}
    assert rows == {
        "cbz-khorgos": Decimal("150.00"),
        "ftz-khorgos": Decimal("150.00"),
        "ftz-urumqi": Decimal("200.00"),
    }
    assert result["total"]["current"] == Decimal("400.00")


def test_zone_group_counts_a_shipment_once_per_group():
    result = report(["zone_group"])
    assert {r["key"]["zone_group"]: r["current"] for r in result["rows"]} == {
        "ftz": Decimal("350.00"),
        "cbz": Decimal("150.00"),
    }


def test_two_dimensions():
    result = report(["port", "mode"])
    assert [r["key"] for r in result["rows"]][:2] == [
        {"port": "urumqi", "mode": "air"},
        {"port": "khorgos", "mode": "rail"},
    ]


def test_counts_are_integers_and_weights_have_three_places():
    counts = report(["port"], measure="shipments", now={"a|b|c|KZ|general|": 3}, before={})
    assert counts["rows"][0]["current"] == 3
    assert counts["total"]["yoy_pct"] is None
    weight = report([], measure="weight_tonnes", now={"x": 1}, before={"x": 1000})
    assert weight["total"]["current"] == Decimal("0.001")


@pytest.mark.parametrize(
    ("current", "previous", "expected"),
    [
        (1484, 1000, "48.40"),
        (2, 3, "-33.33"),
        (1, 3, "-66.67"),
        (100000, 1, "9999900.00"),
        (200_000_005, 100_000_000, "100.00"),
        (200_005, 100_000, "100.01"),
        (99_995, 100_000, "-0.01"),
        (99_994, 100_000, "-0.01"),
        (99_9949, 100_0000, "-0.01"),
        (5, 0, None),
        (0, 0, None),
    ],
)
def test_yoy_rounds_half_away_from_zero(current, previous, expected):
    value = yoy_pct(current, previous)
    assert (str(value) if value is not None else None) == expected


def test_json_is_exact_and_parses():
    result = report(
        ["port"], now={"khorgos|rail|export|KZ|general|": 2_000_000_000_000_01}, before={}
    )
    text = to_json(result)
    assert '"current":2000000000000.01' in text
    parsed = json.loads(text, parse_float=Decimal)
    assert parsed["rows"][0]["current"] == Decimal("2000000000000.01")


def test_table_has_rows_and_total():
    table = to_table(report(["port"]))
    assert "khorgos" in table
    assert "TOTAL" in table
    assert "+296.00" in table


def test_a_complete_period_says_how_far_the_events_go():
    result = report(["port"])
    assert result["data"] == {
        "newest_event": "2024-07-03T10:00:00+08:00",
        "time_zone": "Asia/Shanghai",
        "period_status": "complete",
    }
    assert (
        to_table(result).splitlines()[1]
        == "2024-H1 is complete: events applied through 2024-07-03 10:00:00 Asia/Shanghai"
    )


def test_a_period_in_progress_keeps_its_yoy_and_says_it_is_partial():
    newest = int(datetime(2024, 6, 15, 14, 2, 11, tzinfo=SHANGHAI).timestamp())
    result = report(["port"], newest=newest)
    assert result["data"]["period_status"] == "in_progress"
    assert result["total"]["yoy_pct"] == Decimal("296.00")
    assert to_table(result).splitlines()[1] == (
        "2024-H1 is in progress: events applied through 2024-06-15 14:02:11 Asia/Shanghai; "
        "compared with the whole of 2023-H1"
    )


def test_a_period_with_no_data_yet_is_marked_and_its_table_shows_no_fall_of_100_pct():
    newest = int(datetime(2023, 12, 31, 23, 59, 59, tzinfo=SHANGHAI).timestamp())
    result = report(["port"], now={}, newest=newest)
    assert result["data"]["period_status"] == "no_data_yet"
    assert [(r["current"], r["yoy_pct"]) for r in result["rows"]] == [
        (Decimal("0.00"), Decimal("-100.00"))
    ] * 2  # the contract's formula, marked by data
    table = to_table(result)
    assert "-100.00" not in table
    assert table.splitlines()[1] == (
        "2024-H1 has no data yet: events applied only through "
        "2023-12-31 23:59:59 Asia/Shanghai; no year-on-year"
    )


def test_a_state_without_events_says_so():
    result = report([], now={}, before={}, newest=None)
    assert result["data"] == {
        "newest_event": None,
        "time_zone": "Asia/Shanghai",
        "period_status": "no_data_yet",
    }
    assert (
        to_table(result).splitlines()[1]
        == "2024-H1 has no data yet: no event has been applied; no year-on-year"
    )
    assert json.loads(to_json(result))["data"]["newest_event"] is None


@pytest.mark.parametrize(
    ("measure", "by"),
    [
        ("value", []),
        ("value_cny", ["service"]),
        ("trains", ["mode"]),
        ("declarations", ["partner"]),
        ("value_cny", ["port", "port"]),
        ("value_cny", ["port", "mode", "partner"]),
    ],
)
def test_invalid_requests(measure, by):
    with pytest.raises(InvalidReport):
        check_request(measure, by)


def test_a_top_report_in_dollars_is_written_member_by_member_as_before():
    """The whole JSON object and table, in order: the shown rows, the ``(other)`` row summing
    the rest, the total, ``usd_rates``, then ``data``."""
    request = ReportRequest.parse("2024-H1", by=["port"], top=1, currency="USD", usd_rate="8")
    summer = Summer(request.spec.event_type, request.by)
    current, previous = request.granules()
    result = build_report(
        request,
        {current[0]: summer.rollup(CELLS_2024)},
        {previous[0]: summer.rollup(CELLS_2023)},
        Coverage.of(request.period, AFTER_H1, SHANGHAI),
    )
    assert to_json(result) == (
        '{"period":"2024-H1","previous_period":"2023-H1","measure":"value_cny","by":["port"],'
        '"compare":"yoy","ytd":false,"filters":{},"currency":"USD","unit":"usd",'
        '"span":{"first_day":"2024-01-01","last_day":"2024-06-30"},'
        '"previous_span":{"first_day":"2023-01-01","last_day":"2023-06-30"},'
        '"rows":[{"key":{"port":"khorgos"},"current":25.00,"previous":12.50,"yoy_pct":100.00,'
        '"change":12.50,"growth_pct":100.00,"share_pct":50.00,"previous_share_pct":99.00,'
        '"share_change_pp":-49.00,"contribution_pp":99.00,"contribution_share_pct":33.45,'
        '"rank":1,"previous_rank":1},{"key":{"port":"(other)"},"current":25.00,'
        '"previous":0.13,"yoy_pct":19701.98,"change":24.87,"growth_pct":19701.98,'
        '"share_pct":50.00,"previous_share_pct":1.00,"share_change_pp":49.00,'
        '"contribution_pp":197.00,"contribution_share_pct":66.55,"rank":null,'
        '"previous_rank":null,"others":2}],"total":{"current":50.00,"previous":12.63,'
        '"yoy_pct":296.00,"change":37.37,"growth_pct":296.00},"usd_rates":{"*":"8"},'
        '"data":{"newest_event":"2024-07-03T10:00:00+08:00","time_zone":"Asia/Shanghai",'
        '"period_status":"complete"}}'
    )
    assert to_table(result).splitlines() == [
        "value_cny (usd) by port",
        "2024-H1 is complete: events applied through 2024-07-03 10:00:00 Asia/Shanghai",
        "port     2024-H1  2023-H1      YoY %  Share %",
        "-------  -------  -------  ---------  -------",
        "khorgos    25.00    12.50    +100.00    50.00",
        "(other)    25.00     0.13  +19701.98    50.00",
        "-------  -------  -------  ---------  -------",
        "TOTAL      50.00    12.63    +296.00   100.00",
    ]


def test_a_table_by_no_dimension_shows_only_the_total():
    assert to_table(report([])).splitlines()[2:] == [
        "total  2024-H1  2023-H1    YoY %  Share %",
        "-----  -------  -------  -------  -------",
        "-----  -------  -------  -------  -------",
        "TOTAL   400.00   101.01  +296.00   100.00",
    ]
