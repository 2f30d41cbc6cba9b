"""Reports: per-cell totals of two periods summed by one or two dimensions, with year-on-year.

Pure: the cells come in as ``{cell: integer}`` for the current and the previous period; the
report comes out as the contract's JSON object, with money and weight kept as exact decimals.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from typing import Callable, Iterable, Mapping, Optional

from portflow.domain.aggregates import CELL_LAYOUT
from portflow.domain.coverage import IN_PROGRESS, NO_DATA_YET, Coverage, sentence
from portflow.domain.periods import Period
from portflow.errors import UsageError


@dataclass(frozen=True)
class Measure:
    name: str
    event_type: str
    stored: str  # the stored measure it reads (see aggregates.STORED_MEASURES)
    places: int  # decimal places of the reported unit: 2 for yuan from fen, 3 for t from kg


MEASURES: dict[str, Measure] = {
    m.name: m
    for m in (
        Measure("value_cny", "shipment", "value", 2),
        Measure("weight_tonnes", "shipment", "weight", 3),
        Measure("shipments", "shipment", "count", 0),
        Measure("trains", "train", "count", 0),
        Measure("teu", "train", "teu", 0),
        Measure("declarations", "customs", "count", 0),
    )
}



def unit_scale(event_type: str, stored: str) -> int:
    """Stored units in one reported unit: 100 fen a yuan, 1,000 kg a tonne, 1 for counts."""
    return next(10 ** m.places for m in MEASURES.values()
                if (m.event_type, m.stored) == (event_type, stored))


DIMENSIONS: dict[str, tuple[str, ...]] = {
    "shipment": ("port", "mode", "direction", "partner", "trade_mode", "zone", "zone_group"),
    "train": ("port", "service", "direction"),
    "customs": ("port", "status"),
}


class InvalidReport(UsageError, ValueError):
    """A report request that the contract does not allow (unknown measure or dimension)."""


def check_request(measure: str, by: list[str]) -> Measure:
    """Validate a measure and its dimensions, with a message that lists what is allowed."""
    if measure not in MEASURES:
        raise InvalidReport(f"unknown measure {measure!r}; choose from {', '.join(MEASURES)}")
    spec = MEASURES[measure]
    allowed = DIMENSIONS[spec.event_type]
    if len(by) > 2:
        raise InvalidReport("--by takes at most two dimensions")
    if len(set(by)) != len(by):
        raise InvalidReport("--by names the same dimension twice")
    for dim in by:
        if dim not in allowed:
            raise InvalidReport(
                f"dimension {dim!r} does not apply to {measure}; choose from {', '.join(allowed)}"
            )
    return spec


REMEMBERED_CELLS = 65536


def _row_keys(event_type: str, by: list[str]) -> Callable[[str], Iterable[tuple[str, ...]]]:
    """A function from a cell key to the row keys the cell counts in (several for zones)."""
    layout = CELL_LAYOUT[event_type]
    getters = []
    for dim in by:
        if dim == "zone":
            i = layout.index("zones")
            getters.append(lambda values, i=i: values[i].split(",") if values[i] else [])
        elif dim == "zone_group":
            i = layout.index("zones")
            getters.append(
                lambda values, i=i: sorted({z.split("-", 1)[0] for z in values[i].split(",")})
                if values[i] else []
            )
        else:
            i = layout.index(dim)
            getters.append(lambda values, i=i: (values[i],))

    def keys(cell: str) -> Iterable[tuple[str, ...]]:
        values = cell.split("|")
        return itertools.product(*(get(values) for get in getters))

    return keys


def sum_by(event_type: str, by: list[str], cells: Mapping[str, int]) -> dict[tuple[str, ...], int]:
    """Per-cell totals summed into rows keyed by the values of ``by`` (zones may repeat a cell)."""
    return _sum_rows(cells, _row_keys(event_type, by))


def granule_summer(event_type: str, by: list[str]) -> Callable[[Mapping[str, int]], dict]:
    """``sum_by`` for granule after granule: the same cells come again in each, so each cell's
    row keys are found once (up to ``REMEMBERED_CELLS`` of them)."""
    keys_of = _row_keys(event_type, by)
    remembered = lru_cache(maxsize=REMEMBERED_CELLS)(lambda cell: tuple(keys_of(cell)))
    return lambda cells: _sum_rows(cells, remembered)


def _sum_rows(cells: Mapping[str, int],
              keys_of: Callable[[str], Iterable[tuple[str, ...]]]) -> dict[tuple[str, ...], int]:
    sums: dict[tuple[str, ...], int] = {}
    for cell, amount in cells.items():
        for key in keys_of(cell):
            sums[key] = sums.get(key, 0) + amount
    return sums


def yoy_pct(current: int, previous: int) -> Optional[Decimal]:
    """(current / previous - 1) x 100 to 2 decimals, half away from zero; None if previous is 0."""
    if previous == 0:
        return None
    ratio = (Fraction(current, previous) - 1) * 10000
    magnitude = (abs(ratio) * 2 + 1) // 2  # round half up on the magnitude
    return Decimal(int(magnitude) * (1 if ratio >= 0 else -1)).scaleb(-2)


def build_report(
    period: Period,
    measure: str,
    by: list[str],
    current: Mapping[str, int],
    previous: Mapping[str, int],
    coverage: Coverage,
) -> dict:
    """The contract's report object; amounts are ``Decimal`` (money, weight) or ``int``.

    ``data`` (beyond the contract's members) says how far the events applied go and whether the
    period is complete. ``yoy_pct`` stays the contract's formula: for a period with no data yet
    it reads −100, and ``data.period_status`` says why (the text table shows no YoY then).
    """
    spec = check_request(measure, by)

    now = sum_by(spec.event_type, by, current)
    before = sum_by(spec.event_type, by, previous)

    def amount(units: int):
        return Decimal(units).scaleb(-spec.places) if spec.places else units

    rows = [
        (now.get(key, 0), key, before.get(key, 0))
        for key in set(now) | set(before)
        if now.get(key, 0) or before.get(key, 0)
    ]
    rows.sort(key=lambda row: (-row[0], row[1]))
    total_now, total_before = sum(current.values()), sum(previous.values())
    return {
        "period": str(period),
        "previous_period": str(period.previous()),
        "measure": measure,
        "by": list(by),
        "rows": [
            {
                "key": dict(zip(by, key)),
                "current": amount(cur),
                "previous": amount(prev),
                "yoy_pct": yoy_pct(cur, prev),
            }
            for cur, key, prev in rows
        ],
        "total": {
            "current": amount(total_now),
            "previous": amount(total_before),
            "yoy_pct": yoy_pct(total_now, total_before),
        },
        "data": coverage.as_json(),
    }


def to_json(value) -> str:
    """JSON text with ``Decimal`` written as exact numbers (never through a float)."""
    if isinstance(value, Decimal):
        return f"{value:f}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {to_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(to_json(v) for v in value) + "]"
    return json.dumps(value)


def to_table(report: dict) -> str:
    """A readable, aligned text table of a report."""
    by = report["by"] or ["total"]
    header = [*by, report["period"], report["previous_period"], "YoY %"]

    def fmt(amount) -> str:
        return f"{amount:,f}" if isinstance(amount, Decimal) else f"{amount:,}"

    no_data_yet = report["data"]["period_status"] == NO_DATA_YET

    def pct(value) -> str:
        return "—" if value is None or no_data_yet else f"{value:+.2f}"

    body = [
        [*(row["key"][d] for d in report["by"]), fmt(row["current"]), fmt(row["previous"]),
         pct(row["yoy_pct"])]
        for row in report["rows"]
    ] if report["by"] else []
    total = report["total"]
    footer = ["TOTAL", *([""] * (len(by) - 1)), fmt(total["current"]), fmt(total["previous"]),
              pct(total["yoy_pct"])]
    widths = [max(len(r[i]) for r in [header, *body, footer]) for i in range(len(header))]
    n_keys = len(by)

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < n_keys else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    title = f"{report['measure']} by {', '.join(report['by']) or 'total'}"
    return "\n".join([title, coverage_line(report), line(header), rule, *map(line, body), rule,
                      line(footer)])


def coverage_line(report: dict) -> str:
    """How far the events go, and what that means for the comparison."""
    data = report["data"]
    consequence = {IN_PROGRESS: f"; compared with the whole of {report['previous_period']}",
                   NO_DATA_YET: "; no year-on-year"}.get(data["period_status"], "")
    return sentence(report["period"], data) + consequence
