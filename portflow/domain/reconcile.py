"""Published figures against computed ones: the reconciliation analysts need.

A published figure is given to some precision (``200`` billion, ``48.4`` %); it *matches* when
the computed figure, rounded to that precision, is the same number. A published share is also
checked against the published totals it should follow from, which is how inconsistent releases
are caught (a share whose own numerator and denominator give another percentage).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import TypedDict


class CheckJson(TypedDict):
    """A ``Check`` as ``reconcile --json`` writes it."""

    figure: str
    published: Decimal
    computed: Decimal | None
    matches: bool
    note: str


@dataclass(frozen=True)
class Check:
    figure: str
    published: Decimal
    computed: Decimal | None
    matches: bool
    note: str = ""

    @property
    def flagged(self) -> bool:
        """A published share at odds with the published totals: flagged, not failed."""
        return not self.matches and self.note.startswith("published share")

    @property
    def failed(self) -> bool:
        return not self.matches and not self.flagged

    def as_json(self) -> CheckJson:
        return {
            "figure": self.figure,
            "published": self.published,
            "computed": self.computed,
            "matches": self.matches,
            "note": self.note,
        }


def checks_table(checks: list[Check]) -> str:
    """One line a figure (ok, FLAG or DIFF, published beside computed), its note below."""
    width = max((len(c.figure) for c in checks), default=0)
    lines = []
    for c in checks:
        mark = "ok" if c.matches else ("FLAG" if c.flagged else "DIFF")
        lines.append(
            f"{mark:4}  {c.figure:<{width}}  published {c.published}  "
            f"portflow {c.computed}" + (f"\n      {c.note}" if c.note else "")
        )
    return "\n".join(lines)


def _places(published: Decimal) -> Decimal:
    """The unit of the published figure's last digit (1 for one that is not a finite number)."""
    exponent = published.as_tuple().exponent
    return Decimal(1).scaleb(exponent if isinstance(exponent, int) else 0)


def check_figure(figure: str, published: str | int, computed: Decimal | int | None) -> Check:
    """Whether ``computed`` rounds (half up) to ``published`` at the published precision."""
    pub = Decimal(str(published))
    if computed is None:
        return Check(figure, pub, None, False, "nothing to compare (no previous-year data)")
    got = Decimal(computed).quantize(_places(pub), ROUND_HALF_UP)
    return Check(figure, pub, got, got == pub)


def check_unavailable(figure: str, published: str | int, why: str) -> Check:
    """A published figure that could not be computed, and why (a failure)."""
    return Check(figure, Decimal(str(published)), None, False, why)


def check_share(figure: str, published_pct: str, part: Decimal, whole: Decimal) -> Check:
    """A published share of a total against the computed one; says what total it implies."""
    pub = Decimal(published_pct)
    if not whole:
        return Check(figure, pub, None, False, "the total is zero")
    computed = (Decimal(part) / Decimal(whole) * 100).quantize(_places(pub), ROUND_HALF_UP)
    note = ""
    if computed != pub and pub:
        implied = (Decimal(part) / pub * 100).quantize(Decimal("0.01"))
        note = (
            f"published share disagrees with published figures: {part:,.2f} is "
            f"{computed}% of {whole:,.2f}; a {pub}% share implies a total of {implied:,.2f}"
        )
    return Check(figure, pub, computed, computed == pub, note)
