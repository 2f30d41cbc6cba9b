"""Reports: the rollups of two spans of days summed by one or two dimensions, compared.

Pure: each granule's rollup comes in (see ``rollup``); the report comes out as the contract's
JSON object and the figures beside it (``figures``), with money and weight as exact decimals
(dollars rounded once, to the cent, from exact sums of each month's yuan at its rate).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from fractions import Fraction

import msgspec

from portflow.domain.coverage import IN_PROGRESS, NO_DATA_YET, Coverage, sentence
from portflow.domain.documents import JsonObject
from portflow.domain.figures import Exact, growth_pct, rounded, row_figures
from portflow.domain.queries import Money, ReportRequest
from portflow.domain.rollup import Rollup

RowKey = tuple[str, ...]  # a row's values of the dimensions reported by, in order
# An exact amount as reported: ``Decimal`` in yuan, tonnes or dollars, ``int`` for counts.
Amount = Callable[[Exact], Decimal | int]


def _summed(
    rollups: Mapping[str, Rollup], divisors: Mapping[str, Fraction] | None
) -> tuple[Mapping[RowKey, Exact], Exact]:
    """Granules' rollups summed: integers of stored units, or (with a divisor per granule, its
    stored units per dollar) exact dollars: the granules of one divisor (a month's rate, or the
    one fixed rate) summed as integers first, then divided once per row."""
    if divisors is None:
        return _integer_sums(rollups.values())
    by_divisor: dict[Fraction, list[Rollup]] = {}
    for granule, rollup in rollups.items():
        by_divisor.setdefault(divisors[granule], []).append(rollup)
    rows: dict[RowKey, Exact] = {}
    total: Exact = 0
    for divisor, group in by_divisor.items():
        units_rows, units_total = _integer_sums(group)
        for key, units in units_rows.items():
            rows[key] = rows.get(key, 0) + Fraction(units) / divisor
        total += Fraction(units_total) / divisor
    return rows, total


def _integer_sums(rollups: Iterable[Rollup]) -> tuple[dict[RowKey, int], int]:
    rows: dict[RowKey, int] = {}
    total = 0
    for rollup in rollups:
        for key, units in rollup.rows.items():
            rows[key] = rows.get(key, 0) + units
        total += rollup.total
    return rows, total


def amount_of(money: Money) -> Amount:
    """A function from an exact amount to the reported one: ``Decimal`` in yuan, tonnes or
    dollars (rounded once, to the cent), ``int`` for counts. Only dollars are fractions."""
    if money.in_dollars:
        return lambda exact: rounded(exact, 2)
    places = money.spec.places
    if not places:
        return int
    return lambda units: (
        Decimal(units).scaleb(-places)
        if type(units) is int
        else rounded(Fraction(units, 10**places), places)
    )


OTHER = "(other)"


def build_report(
    request: ReportRequest,
    current: Mapping[str, Rollup],
    previous: Mapping[str, Rollup],
    coverage: Coverage,
    rates: Mapping[str, Decimal] | None = None,
) -> JsonObject:
    """The report object: the contract's members (``period``, ``previous_period``, ``measure``,
    ``by``, ``rows`` of ``key``/``current``/``previous``/``yoy_pct``, ``total``) and the
    figures beside them (see ``figures.row_figures``), ranks, what was asked, and ``data``: how
    far the events applied go and whether the period is complete.

    ``current``/``previous`` map each granule of ``request.granules()`` to its rollup; ``rates``
    (CNY per USD by month) are needed for dollars at the months' rates (``MissingRates``).
    ``yoy_pct`` stays the contract's formula (the same as ``growth_pct``): for a period with no
    data yet it reads -100, and ``data.period_status`` says why.
    """
    money = request.money
    divisors = None
    if money.in_dollars:
        divisors = money.divisors([*current, *previous], dict(rates or {}))
    now, total_now = _summed(current, divisors)
    before, total_before = _summed(previous, divisors)
    amount = amount_of(money)
    result: JsonObject = {
        **_what_was_asked(request),
        "rows": _rows(request, now, before, _RowAmounts(amount, total_now, total_before)),
        "total": _total(amount, total_now, total_before),
    }
    if money.in_dollars:
        result["usd_rates"] = money.rates_used([*current, *previous], dict(rates or {}))
    result["data"] = coverage.as_json()  # last: what moves with every worker step
    return result


def _what_was_asked(request: ReportRequest) -> JsonObject:
    """The report's members that the request alone decides: periods, measure, dimensions,
    filters, unit and the spans of days compared."""
    money = request.money
    first, last = request.span()
    previous_first, previous_last = request.previous_span()
    return {
        "period": str(request.period),
        "previous_period": str(request.compared),
        "measure": money.spec.name,
        "by": list(request.by),
        "compare": request.compare,
        "ytd": request.ytd,
        "filters": {dim: list(values) for dim, values in request.filters},
        "currency": money.currency if money.spec.name == "value_cny" else None,
        "unit": money.unit,
        "span": {"first_day": first.isoformat(), "last_day": last.isoformat()},
        "previous_span": {
            "first_day": previous_first.isoformat(),
            "last_day": previous_last.isoformat(),
        },
    }


def _ranked_keys(
    now: Mapping[RowKey, Exact], before: Mapping[RowKey, Exact]
) -> tuple[list[RowKey], dict[RowKey, int], dict[RowKey, int]]:
    """The keys with an amount in either period, largest current first (then by key), with
    their rank in each period (none where their amount is 0)."""
    keys = [key for key in set(now) | set(before) if now.get(key, 0) or before.get(key, 0)]
    keys.sort(key=lambda k: (-now.get(k, 0), k))
    ranks = {k: i for i, k in enumerate(keys, 1) if now.get(k, 0)}
    previous_ranks = {
        k: i
        for i, k in enumerate(
            sorted((k for k in keys if before.get(k, 0)), key=lambda k: (-before[k], k)), 1
        )
    }
    return keys, ranks, previous_ranks


class _RowAmounts:
    """A report's rows as the contract writes them: amounts reported, and their figures
    against the two periods' totals."""

    def __init__(self, amount: Amount, total_now: Exact, total_before: Exact) -> None:
        self.amount = amount
        self.total_now = total_now
        self.total_before = total_before

    def row(self, key: dict[str, str], cur: Exact, prev: Exact, **extra: int | None) -> JsonObject:
        amount = self.amount
        figures = row_figures(cur, prev, self.total_now, self.total_before)
        return {
            "key": key,
            "current": amount(cur),
            "previous": amount(prev),
            "yoy_pct": figures["growth_pct"],
            "change": amount(cur - prev),
            **figures,
            **extra,
        }


def _rows(
    request: ReportRequest,
    now: Mapping[RowKey, Exact],
    before: Mapping[RowKey, Exact],
    amounts: _RowAmounts,
) -> list[JsonObject]:
    """The rows shown (``top`` of them, if asked), then one ``(other)`` row summing the rest."""
    keys, ranks, previous_ranks = _ranked_keys(now, before)
    shown = keys if request.top is None else keys[: request.top]
    rows = [
        amounts.row(
            dict(zip(request.by, k, strict=True)),
            now.get(k, 0),
            before.get(k, 0),
            rank=ranks.get(k),
            previous_rank=previous_ranks.get(k),
        )
        for k in shown
    ]
    rest = keys[len(shown) :]
    if rest:
        rows.append(
            amounts.row(
                dict.fromkeys(request.by, OTHER),
                sum(now.get(k, 0) for k in rest),
                sum(before.get(k, 0) for k in rest),
                rank=None,
                previous_rank=None,
                others=len(rest),
            )
        )
    return rows


def _total(amount: Amount, total_now: Exact, total_before: Exact) -> JsonObject:
    return {
        "current": amount(total_now),
        "previous": amount(total_before),
        "yoy_pct": growth_pct(total_now, total_before),
        "change": amount(total_now - total_before),
        "growth_pct": growth_pct(total_now, total_before),
    }


def yoy_pct(current: int, previous: int) -> Decimal | None:
    """(current / previous - 1) x 100 to 2 decimals, half away from zero; None if previous is 0."""
    return growth_pct(current, previous)


_ENCODER = msgspec.json.Encoder(decimal_format="number")


def to_json_bytes(value: object) -> bytes:
    """Compact JSON with ``Decimal`` written as exact numbers (never through a float; amounts
    and percentages are never written with an exponent: they are scaled integers)."""
    return _ENCODER.encode(value)


def to_json(value: object) -> str:
    """``to_json_bytes`` as text."""
    return to_json_bytes(value).decode()


def to_table(report: JsonObject) -> str:
    """A readable, aligned text table of a report."""
    by = report["by"] or ["total"]
    header = [
        *by,
        _label(report["span"], report["period"], report["ytd"]),
        _label(report["previous_span"], report["previous_period"], report["ytd"]),
        "YoY %" if report["compare"] == "yoy" else "Change %",
        "Share %",
    ]
    no_data_yet = report["data"]["period_status"] == NO_DATA_YET
    # A report by no dimension has one row, the total: the footer says it.
    rows = report["rows"] if report["by"] else []
    body = [_table_row(report["by"], row, no_data_yet) for row in rows]
    total = report["total"]
    footer = [
        "TOTAL",
        *([""] * (len(by) - 1)),
        _amount_text(total["current"]),
        _amount_text(total["previous"]),
        _pct_text(total["yoy_pct"], no_data_yet),
        "100.00" if total["current"] else "—",
    ]
    line, rule = _aligned([header, *body, footer], n_keys=len(by))
    table = [line(header), rule, *map(line, body), rule, line(footer)]
    return "\n".join([_title(report), coverage_line(report), *table])


def _table_row(by: list[str], row: JsonObject, no_data_yet: bool) -> list[str]:
    return [
        *(row["key"][d] for d in by),
        _amount_text(row["current"]),
        _amount_text(row["previous"]),
        _pct_text(row["yoy_pct"], no_data_yet),
        "—" if row["share_pct"] is None else f"{row['share_pct']:.2f}",
    ]


def _amount_text(amount: Decimal | int) -> str:
    return f"{amount:,f}" if isinstance(amount, Decimal) else f"{amount:,}"


def _pct_text(value: Decimal | None, no_data_yet: bool) -> str:
    return "—" if value is None or no_data_yet else f"{value:+.2f}"


def _aligned(table: list[list[str]], n_keys: int) -> tuple[Callable[[list[str]], str], str]:
    """How to write a line of ``table`` (keys to the left, figures to the right, each column
    as wide as its widest cell), and the rule under its header."""
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < n_keys else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return line, "  ".join("-" * w for w in widths)


def _title(report: JsonObject) -> str:
    filters = "; ".join(f"{dim} {' or '.join(values)}" for dim, values in report["filters"].items())
    title = f"{report['measure']} ({report['unit']}) by {', '.join(report['by']) or 'total'}"
    return title + (f", where {filters}" if filters else "")


def _label(span: Mapping[str, str], period: str, ytd: bool) -> str:
    return f"{span['first_day']}..{span['last_day']}" if ytd else period


def coverage_line(report: JsonObject) -> str:
    """How far the events go, and what that means for the comparison."""
    data = report["data"]
    consequence = {
        IN_PROGRESS: f"; compared with the whole of {report['previous_period']}",
        NO_DATA_YET: "; no year-on-year",
    }.get(data["period_status"], "")
    return sentence(report["period"], data) + consequence
