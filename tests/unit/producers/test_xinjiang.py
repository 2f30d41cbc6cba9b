"""The scenario generator: exact integer allocation, determinism, plausible structure."""

import hashlib
import json
import random
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portflow.domain.queries import MissingRates
from portflow.domain.rates import parse_rates
from producers.scenarios.xinjiang import (
    RATES_FILE,
    XinjiangScenario,
    acceptance_checks,
    generate_xinjiang,
    integer_table,
    load_data,
    split,
    value_cells,
    write_rates,
    year_targets,
)

DOLLAR_FIGURES = [
    ("total_value_yuan", "total_value_usd"),
    ("ftz_value_yuan", "ftz_value_usd"),
    ("cbz_value_yuan", "cbz_value_usd"),
]


@given(
    rows=st.lists(st.integers(0, 10**13), min_size=1, max_size=6),
    cols_shape=st.lists(st.integers(1, 100), min_size=1, max_size=5),
)
def test_integer_table_hits_both_margins_exactly(rows, cols_shape):
    total = sum(rows)
    weights = sum(cols_shape)
    cols = [total * w // weights for w in cols_shape]
    cols[0] += total - sum(cols)
    table = integer_table(rows, cols)
    assert [sum(line) for line in table] == rows
    assert [sum(line[j] for line in table) for j in range(len(cols))] == cols
    assert all(x >= 0 for line in table for x in line)


@given(total=st.integers(0, 10**12), parts=st.integers(1, 500), seed=st.integers(0, 99))
def test_split_sums_exactly(total, parts, seed):
    shares = split(total, parts, random.Random(seed))
    assert sum(shares) == total
    assert len(shares) == parts
    assert min(shares) >= 0


def test_cells_match_every_marginal_of_both_years():
    data = load_data()
    for _year, targets in year_targets(data).items():
        cells = value_cells(targets, data["chosen"]["pipeline_kz_share"])
        assert sum(cells.values()) == targets.total_fen
        for mode, value in targets.mode_fen.items():
            assert sum(v for (m, _, _), v in cells.items() if m == mode) == value
        for zone, value in targets.zone_fen.items():
            assert sum(v for (_, z, _), v in cells.items() if z == zone) == value
        for group, value in targets.partner_fen.items():
            assert sum(v for (_, _, g), v in cells.items() if g == group) == value
        assert all(v >= 0 for v in cells.values())
        assert cells.get(("pipeline", "none", "KG"), 0) == 0


def test_same_seed_same_bytes_and_another_seed_differs(tmp_path):
    paths = [tmp_path / name for name in ("a.jsonl", "b.jsonl", "c.jsonl")]
    generate_xinjiang(str(paths[0]), seed=5, scale=0.02)
    generate_xinjiang(str(paths[1]), seed=5, scale=0.02)
    generate_xinjiang(str(paths[2]), seed=6, scale=0.02)
    digest = [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]
    assert digest[0] == digest[1] != digest[2]


def test_gzip_output_is_deterministic_too(tmp_path):
    a, b = tmp_path / "a.jsonl.gz", tmp_path / "b.jsonl.gz"
    generate_xinjiang(str(a), seed=1, scale=0.01)
    generate_xinjiang(str(b), seed=1, scale=0.01)
    assert a.read_bytes() == b.read_bytes()


def test_events_are_plausible(tmp_path):
    path = tmp_path / "x.jsonl"
    generate_xinjiang(str(path), seed=3, scale=0.02)
    events = [json.loads(line) for line in path.read_text().splitlines()]
    times = [e["ts"] for e in events]
    kinds = {e["type"] for e in events}
    assert kinds == {"shipment", "train", "customs"}
    trains = [e for e in events if e["type"] == "train"]
    assert {e["port"] for e in trains} == {"alashankou", "khorgos"}
    shipments = [e for e in events if e["type"] == "shipment"]
    zoned = [e for e in shipments if e["zones"]]
    assert all(z.split("-", 1)[1] == e["port"] for e in zoned for z in e["zones"])
    assert not any(e["zones"] and e["mode"] == "pipeline" for e in shipments)
    assert not any(
        e["zones"] and z.startswith("ftz")
        for e in shipments
        if e["ts"] < "2023-07"
        for z in e["zones"]
    )
    statuses = {e["status"] for e in events if e["type"] == "customs"}
    assert statuses == {"filed", "inspected", "held", "released", "rejected"}
    assert len(times) > len({e["event_id"] for e in events})  # some producer retries


def test_scale_is_validated():
    with pytest.raises(ValueError, match="--scale must be above 0"):
        XinjiangScenario(scale=0)


def oracle_reports(path, rate: Decimal | None):
    """``report(period, measure, by, currency)`` as ``acceptance_checks`` calls it, from the
    replay file alone; in dollars at ``rate`` (the scenario's months have one rate, so a period
    converts whole), or ``MissingRates`` without one."""
    from tests.support.oracle import Oracle

    oracle = Oracle(str(path))

    def report(period, measure, by, currency="CNY"):
        if currency == "USD" and rate is None:
            raise MissingRates(["2024-01", "2024-02"])

        def amount(yuan):
            return (
                (yuan / rate).quantize(Decimal("0.01"), ROUND_HALF_UP)
                if currency == "USD"
                else yuan
            )

        figures = oracle.report(period, period.replace("2024", "2023"), measure, by)
        current, previous, yoy = figures["total"]
        return {
            "rows": [
                {
                    "key": dict(zip(by, key, strict=True)),
                    "current": amount(c),
                    "previous": amount(p),
                    "yoy_pct": y,
                }
                for key, (c, p, y) in figures["rows"].items()
            ],
            "total": {"current": amount(current), "previous": amount(previous), "yoy_pct": yoy},
        }

    return report


@pytest.mark.parametrize("scale", [1e-6, 0.001])
def test_any_scale_above_zero_writes_a_file_with_every_published_figure(tmp_path, scale):
    path = tmp_path / "x.jsonl"
    generate_xinjiang(str(path), seed=4, scale=scale)
    (rate,) = {r.rate for r in parse_rates(RATES_FILE.read_bytes()).rates.values()}

    checks = acceptance_checks(oracle_reports(path, rate))
    assert [c.figure for c in checks if c.failed] == []
    assert [c.figure for c in checks if "USD" in c.figure] == [
        "total trade value, billion USD",
        "free trade zones, billion USD",
        "bonded zones, billion USD",
    ]
    assert (len(checks), sum(c.matches for c in checks)) == (23, 21)


def test_without_rates_the_dollar_figures_fail_saying_which_months_and_how_to_load_them(tmp_path):
    path = tmp_path / "x.jsonl"
    generate_xinjiang(str(path), seed=4, scale=1e-6)

    failed = [c for c in acceptance_checks(oracle_reports(path, None)) if c.failed]
    assert [(c.figure, c.published, c.computed) for c in failed] == [
        ("total trade value, billion USD", Decimal("27.56"), None),
        ("free trade zones, billion USD", Decimal("10.03"), None),
        ("bonded zones, billion USD", Decimal("13.14"), None),
    ]
    assert all("2024-01" in c.note and "portflow rates load" in c.note for c in failed)


def billions_at(yuan: str, rate: Decimal) -> Decimal:
    return (Decimal(yuan) / rate / 10**9).quantize(Decimal("0.01"), ROUND_HALF_UP)


def test_the_scenario_rates_cover_its_months_at_the_rate_that_gives_the_articles_dollars():
    parsed = parse_rates(RATES_FILE.read_bytes())
    assert parsed.problems == []
    assert parsed.months == [
        f"{year}-{month:02d}" for year in (2023, 2024) for month in range(1, 7)
    ]
    (rate,) = {r.rate for r in parsed.rates.values()}
    pub = load_data()["published"]
    for yuan, usd in DOLLAR_FIGURES:
        assert billions_at(pub[yuan], rate) == Decimal(pub[usd]) / 10**9


@pytest.mark.parametrize("rate", ["7.256751", "7.258211"])
def test_rates_just_outside_the_derived_interval_miss_one_of_the_dollar_figures(rate):
    pub = load_data()["published"]
    assert any(
        billions_at(pub[yuan], Decimal(rate)) != Decimal(pub[usd]) / 10**9
        for yuan, usd in DOLLAR_FIGURES
    )


@pytest.mark.parametrize(
    ("out", "written"), [("a/xj.jsonl.gz", "a/xj.usd-rates.csv"), ("xj.jsonl", "xj.usd-rates.csv")]
)
def test_the_rates_file_is_written_beside_the_scenario(tmp_path, out, written):
    (tmp_path / "a").mkdir()
    assert write_rates(str(tmp_path / out)) == str(tmp_path / written)
    assert (tmp_path / written).read_bytes() == RATES_FILE.read_bytes()
