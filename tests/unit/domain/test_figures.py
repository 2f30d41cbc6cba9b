"""The figures beside a total: worked examples, and rounding once from exact amounts."""

from decimal import Decimal
from fractions import Fraction

import pytest

from portflow.domain.figures import growth_pct, pct, rounded, row_figures


def test_the_worked_example_of_a_part_of_a_growing_whole():
    # a part going 1.0 -> 1.2 bn of a whole going 4.4 -> 5.0 bn
    figures = row_figures(12, 10, 50, 44)
    assert figures == {
        "growth_pct": Decimal("20.00"),
        "share_pct": Decimal("24.00"),
        "previous_share_pct": Decimal("22.73"),
        "share_change_pp": Decimal("1.27"),
        "contribution_pp": Decimal("4.55"),
        "contribution_share_pct": Decimal("33.33"),
    }


def test_the_share_change_comes_from_the_exact_shares_not_the_rounded_ones():
    # here 0.125 of 1 vs 0.12345: exact change 0.155 pp -> 0.16; rounded shares 12.50 - 12.35 = 0.15
    figures = row_figures(125, 12345, 1000, 100000)
    assert figures["share_pct"] == Decimal("12.50")
    assert figures["previous_share_pct"] == Decimal("12.35")
    assert figures["share_change_pp"] == Decimal("0.16")


def test_figures_over_a_zero_base_are_null():
    figures = row_figures(5, 0, 5, 0)
    assert figures["growth_pct"] is None
    assert figures["previous_share_pct"] is None
    assert figures["share_change_pp"] is None
    assert figures["contribution_pp"] is None
    assert figures["contribution_share_pct"] == Decimal("100.00")
    assert row_figures(1, 1, 2, 2)["contribution_share_pct"] is None  # the whole did not change


def test_a_shrinking_part_contributes_negatively():
    figures = row_figures(8, 10, 50, 44)  # the part fell by 2 while the whole grew by 6
    assert figures["contribution_pp"] == Decimal("-4.55")
    assert figures["contribution_share_pct"] == Decimal("-33.33")


@pytest.mark.parametrize(
    ("value", "places", "expected"),
    [
        (Fraction(5, 1000), 2, "0.01"),
        (Fraction(-5, 1000), 2, "-0.01"),
        (Fraction(4999, 1000000), 2, "0.00"),
        (Fraction(1, 3), 3, "0.333"),
        (7, 0, "7"),
        (Fraction(200_000_000_000) / Fraction(Decimal("7.2570")), 2, "27559597629.87"),
    ],
)
def test_rounding_is_half_away_from_zero_and_exact(value, places, expected):
    assert str(rounded(value, places)) == expected


def test_pct_and_growth():
    assert pct(1, 3) == Decimal("33.33")
    assert pct(1, 0) is None
    assert growth_pct(1484, 1000) == Decimal("48.40")
    assert growth_pct(0, 5) == Decimal("-100.00")


def _oracle_rounded(value: Fraction, places: int) -> Decimal:
    """Rounding half away from zero the slow, obvious way: through Fraction."""
    scaled = Fraction(value) * 10**places
    magnitude = (abs(scaled) * 2 + 1) // 2
    return Decimal(int(magnitude) * (1 if scaled >= 0 else -1)).scaleb(-places)


def test_the_integer_arithmetic_gives_what_fractions_give():
    import random

    rng = random.Random(24)

    def amount():
        units = rng.choice([0, rng.randint(-(10**6), 10**6), rng.randint(-(10**15), 10**15)])
        return units if rng.random() < 0.5 else Fraction(units, rng.randint(1, 10**6))

    for _ in range(20_000):
        cur, prev, tot_cur, tot_prev = amount(), amount(), amount(), amount()
        figures = row_figures(cur, prev, tot_cur, tot_prev)
        share = (
            None
            if not (tot_cur and tot_prev)
            else _oracle_rounded(
                (Fraction(cur) / Fraction(tot_cur) - Fraction(prev) / Fraction(tot_prev)) * 100, 2
            )
        )
        assert figures["share_change_pp"] == share
        assert figures["share_pct"] == (
            None if tot_cur == 0 else _oracle_rounded(Fraction(cur) / Fraction(tot_cur) * 100, 2)
        )
        assert figures["contribution_pp"] == (
            None
            if tot_prev == 0
            else _oracle_rounded(Fraction(cur - prev) / Fraction(tot_prev) * 100, 2)
        )
        assert rounded(cur, 2) == _oracle_rounded(cur, 2)
