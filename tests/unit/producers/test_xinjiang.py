"""The scenario generator: exact integer allocation, determinism, plausible structure."""

import hashlib
import json
import random

import pytest
from hypothesis import given, strategies as st

from producers.scenarios.xinjiang import (
    XinjiangScenario, generate_xinjiang, integer_table, split, value_cells, year_targets,
    load_data,
)


@given(rows=st.lists(st.integers(0, 10**13), min_size=1, max_size=6),
       cols_shape=st.lists(st.integers(1, 100), min_size=1, max_size=5))
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
    assert sum(shares) == total and len(shares) == parts and min(shares) >= 0


def test_cells_match_every_marginal_of_both_years():
    data = load_data()
    for year, targets in year_targets(data).items():
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
    assert not any(e["zones"] and z.startswith("ftz") for e in shipments if e["ts"] < "2023-07"
                   for z in e["zones"])
    statuses = {e["status"] for e in events if e["type"] == "customs"}
    assert statuses == {"filed", "inspected", "held", "released", "rejected"}
    assert len(times) > len({e["event_id"] for e in events})  # some producer retries


def test_scale_is_validated():
    with pytest.raises(ValueError):
        XinjiangScenario(scale=0)


@pytest.mark.parametrize("scale", [1e-6, 0.001])
def test_any_scale_above_zero_writes_a_file_with_every_published_figure(tmp_path, scale):
    from producers.scenarios.xinjiang import acceptance_checks
    from tests.oracle import Oracle

    path = tmp_path / "x.jsonl"
    generate_xinjiang(str(path), seed=4, scale=scale)
    oracle = Oracle(str(path))

    def report(period, measure, by):
        figures = oracle.report(period, period.replace("2024", "2023"), measure, by)
        return {"rows": [{"key": dict(zip(by, key)), "current": c, "previous": p, "yoy_pct": y}
                         for key, (c, p, y) in figures["rows"].items()],
                "total": dict(zip(("current", "previous", "yoy_pct"), figures["total"]))}

    assert [c.figure for c in acceptance_checks(report) if c.failed] == []
