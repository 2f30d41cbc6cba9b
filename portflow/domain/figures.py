"""The figures analysts publish beside a total, from exact amounts, each rounded once.

Amounts come in exact (integers of stored units, or fractions once converted to dollars);
every figure is computed from them and rounded at the end, half away from zero: shares of the
total, growth, its change in percentage points, and contributions to the total's growth.

A worked example: a part going 1.0 → 1.2 of a whole going 4.4 → 5.0 grew 20.00 %; its share went
22.73 → 24.00 % (+1.27 pp, from the exact shares, not the rounded ones); it contributed 4.55
percentage points of the whole's 13.64 % growth (0.2 of the base 4.4), which is 33.33 % of the
whole's change (0.2 of 0.6).
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

Exact = int | Fraction


def rounded(value: Exact, places: int) -> Decimal:
    """``value`` to ``places`` decimals, half away from zero (exactly: no float on the way)."""
    value = Fraction(value)
    return _quotient(value.numerator, value.denominator, places)


def _quotient(numerator: int, denominator: int, places: int) -> Decimal:
    """numerator / denominator to ``places`` decimals, half away from zero, in integers (a
    report computes thousands of these: Fraction arithmetic costs ten times more)."""
    units, rest = divmod(abs(numerator) * 10**places, abs(denominator))
    if 2 * rest >= abs(denominator):
        units += 1
    negative = (numerator < 0) != (denominator < 0)
    return Decimal(-units if negative else units).scaleb(-places)


def _parts(value: Exact) -> tuple[int, int]:
    return (value, 1) if type(value) is int else (value.numerator, value.denominator)


def pct(part: Exact, whole: Exact) -> Decimal | None:
    """part / whole x 100 to two decimals; None where the whole is 0."""
    if whole == 0:
        return None
    (pn, pd), (wn, wd) = _parts(part), _parts(whole)
    return _quotient(pn * wd * 100, pd * wn, 2)


def growth_pct(current: Exact, previous: Exact) -> Decimal | None:
    """(current / previous - 1) x 100 to two decimals; None where previous is 0."""
    return pct(current - previous, previous)


def row_figures(
    current: Exact, previous: Exact, total_current: Exact, total_previous: Exact
) -> dict[str, Decimal | None]:
    """A row's percentages against its own past and the total's: ``growth_pct``, ``share_pct``,
    ``previous_share_pct``, ``share_change_pp``, ``contribution_pp`` (its change over the
    total's base) and ``contribution_share_pct`` (its change over the total's change)."""
    change = current - previous
    share_change = None
    if total_current and total_previous:
        # c/C - p/P = (c P - p C) / (C P)
        share_change = pct(
            current * total_previous - previous * total_current, total_current * total_previous
        )
    return {
        "growth_pct": growth_pct(current, previous),
        "share_pct": pct(current, total_current),
        "previous_share_pct": pct(previous, total_previous),
        "share_change_pp": share_change,
        "contribution_pp": pct(change, total_previous),
        "contribution_share_pct": pct(change, total_current - total_previous),
    }
