"""Rollups with filters, reports with top N, ranks and dollars, and series rows."""

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from portflow.domain.coverage import Coverage
from portflow.domain.queries import ReportRequest, SeriesRequest
from portflow.domain.report import build_report, to_json
from portflow.domain.rollup import Summer
from portflow.domain.series import build_series

SHANGHAI = ZoneInfo("Asia/Shanghai")
CELLS = {
    "khorgos|rail|export|KZ|general|cbz-khorgos,ftz-khorgos": 150_00,
    "khorgos|road|import|KG|general|": 50_00,
    "urumqi|air|import|DE|bonded_logistics|ftz-urumqi": 200_00,
    "kashgar|road|import|KG|general|": 1_00,
}


def test_filters_keep_matching_cells_and_the_total_is_theirs():
    rollup = Summer("shipment", ("port",), (("mode", ("road",)),)).rollup(CELLS)
    assert rollup.rows == {("khorgos",): 50_00, ("kashgar",): 1_00}
    assert rollup.total == 51_00


def test_rows_by_plain_dimensions_sum_the_cells_with_those_values():
    assert Summer("shipment", ()).rollup(CELLS).rows == {(): 401_00}
    assert Summer("shipment", ("port",)).rollup(CELLS).rows == {
        ("khorgos",): 200_00,
        ("urumqi",): 200_00,
        ("kashgar",): 1_00,
    }
    assert Summer("shipment", ("partner", "mode")).rollup(CELLS).rows == {
        ("KZ", "rail"): 150_00,
        ("KG", "road"): 51_00,
        ("DE", "air"): 200_00,
    }
    assert Summer("train", ("service", "port")).rollup(
        {"khorgos|china-europe|outbound": 3, "khorgos|china-europe|inbound": 2}
    ).rows == {("china-europe", "khorgos"): 5}


def test_zone_filters_match_any_of_a_shipments_zones():
    rollup = Summer("shipment", (), (("zone_group", ("ftz",)),)).rollup(CELLS)
    assert rollup.total == 350_00
    none = Summer("shipment", ("port",), (("zone", ("cbz-urumqi",)),)).rollup(CELLS)
    assert none.rows == {}
    assert none.total == 0


def report(request, now, before):
    summer = Summer(request.spec.event_type, request.by, request.filters)
    current, previous = request.granules()
    return build_report(
        request,
        {current[0]: summer.rollup(now)},
        {previous[0]: summer.rollup(before)},
        Coverage.of(request.period, None, SHANGHAI),
        {"2024-01": Decimal("8"), "2023-01": Decimal("5")},
    )


def test_top_n_folds_the_rest_into_one_row_and_ranks_both_years():
    before = {"khorgos|rail|export|KZ|general|": 10_00, "kashgar|road|import|KG|general|": 90_00}
    result = report(ReportRequest.parse("2024-01", by=["port"], top=1), CELLS, before)
    first, rest = result["rows"]
    assert first["key"] == {"port": "khorgos"}
    assert first["rank"] == 1
    assert first["previous_rank"] == 2
    assert rest["key"] == {"port": "(other)"}
    assert rest["others"] == 2
    assert rest["current"] == Decimal("201.00")
    assert rest["previous"] == Decimal("90.00")
    assert rest["rank"] is None
    full = report(ReportRequest.parse("2024-01", by=["port"]), CELLS, before)["rows"]
    assert [(r["key"]["port"], r["rank"], r["previous_rank"]) for r in full] == [
        ("khorgos", 1, 2),
        ("urumqi", 2, None),
        ("kashgar", 3, 1),
    ]


def test_dollars_convert_each_month_at_its_rate_and_round_once():
    cells = {"khorgos|rail|export|KZ|general|": 1_00}  # one yuan each year
    result = report(ReportRequest.parse("2024-01", currency="USD"), cells, cells)
    assert result["total"]["current"] == Decimal("0.13")  # 1 / 8 = 0.125 -> 0.13
    assert result["total"]["previous"] == Decimal("0.20")  # 1 / 5
    assert result["total"]["growth_pct"] == Decimal("-37.50")  # from the exact 0.125 and 0.2
    assert result["usd_rates"] == {"2023-01": "5", "2024-01": "8"}
    assert result["unit"] == "usd"
    assert result["currency"] == "USD"


def test_a_series_row_per_key_and_day_with_zeros_and_the_day_52_weeks_earlier():
    request = SeriesRequest.parse(by=["port"], start="2024-06-15", end="2024-06-16")
    pairs = request.times(SHANGHAI, datetime(2024, 7, 1).date())
    summer = Summer("shipment", ("port",))
    rollups = {"2024-06-15": summer.rollup(CELLS), "2023-06-18": summer.rollup(CELLS)}
    result = build_series(request, pairs, rollups, SHANGHAI, {"newest_event": None})
    rows = [
        (r["time"], r["key"], r["value"], r["previous"], r["previous_time"])
        for r in result["rows"]
        if r["port"] == "khorgos"
    ]
    assert rows == [
        (
            "2024-06-15T00:00:00+08:00",
            "khorgos",
            Decimal("200.00"),
            Decimal("0.00"),
            "2023-06-17T00:00:00+08:00",
        ),
        (
            "2024-06-16T00:00:00+08:00",
            "khorgos",
            Decimal("0.00"),
            Decimal("200.00"),
            "2023-06-18T00:00:00+08:00",
        ),
    ]
    assert {r["key"] for r in result["rows"]} == {"khorgos", "urumqi", "kashgar"}
    assert result["from"] == "2024-06-15"
    assert result["to"] == "2024-06-16"


def test_a_series_without_dimensions_is_the_total():
    request = SeriesRequest.parse(
        granularity="month", start="2024-01", end="2024-01", measure="shipments"
    )
    pairs = request.times(SHANGHAI, datetime(2024, 7, 1).date())
    result = build_series(
        request, pairs, {"2024-01": Summer("shipment", ()).rollup({"a": 3})}, SHANGHAI, {}
    )
    assert result["rows"] == [
        {
            "time": "2024-01-01T00:00:00+08:00",
            "key": "total",
            "value": 3,
            "previous": 0,
            "previous_time": "2023-01-01T00:00:00+08:00",
        }
    ]


def test_dollars_summed_per_rate_first_equal_each_granule_divided_on_its_own():
    import random
    from fractions import Fraction

    from portflow.domain.report import _summed
    from portflow.domain.rollup import Rollup

    rng = random.Random(7)
    granules = [f"2024-{m:02d}" for m in range(1, 13)]
    rollups = {
        g: Rollup(
            {(p,): rng.randint(0, 10**12) for p in ("a", "b", "c") if rng.random() < 0.8},
            rng.randint(0, 10**13),
        )
        for g in granules
    }
    divisors = {g: Fraction(rng.choice(["7.1", "7.2570", "7.3"])) * 100 for g in granules}
    rows, total = _summed(rollups, divisors)
    assert total == sum(Fraction(r.total) / divisors[g] for g, r in rollups.items())
    assert rows == {
        key: sum(Fraction(r.rows.get(key, 0)) / divisors[g] for g, r in rollups.items())
        for key in {k for r in rollups.values() for k in r.rows}
    }


def test_a_series_in_dollars_is_written_member_by_member_as_before():
    request = SeriesRequest.parse(
        granularity="month", start="2024-01", end="2024-01", currency="USD", usd_rate="8"
    )
    pairs = request.times(SHANGHAI, datetime(2024, 7, 1).date())
    rollups = {"2024-01": Summer("shipment", ()).rollup(CELLS)}
    result = build_series(request, pairs, rollups, SHANGHAI, {"newest_event": None})
    assert to_json(result) == (
        '{"measure":"value_cny","by":[],"granularity":"month","from":"2024-01","to":"2024-01",'
        '"filters":{},"currency":"USD","unit":"usd","time_zone":"Asia/Shanghai",'
        '"rows":[{"time":"2024-01-01T00:00:00+08:00","key":"total","value":50.13,'
        '"previous":0.00,"previous_time":"2023-01-01T00:00:00+08:00"}],'
        '"usd_rates":{"*":"8"},"data":{"newest_event":null}}'
    )
