"""Calendar periods in the reporting time zone.

Aggregates are kept per day, month and year (the *granules*); a report period is answered from
the fewest granules that cover it: a day or a month from one, a quarter from three months, a
half from six, a year from one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

_PERIOD = re.compile(
    r"^(?P<year>\d{4})(?:-(?:H(?P<half>[12])|Q(?P<quarter>[1-4])|(?P<month>\d{2})(?:-(?P<day>\d{2}))?))?$"
)


def granules_of(ts: datetime, tz: ZoneInfo) -> tuple[str, str, str]:
    """The day, month and year an event time falls in, in the reporting time zone."""
    day = ts.astimezone(tz).date().isoformat()
    return day, day[:7], day[:4]


class InvalidPeriod(ValueError):
    """A period string that is not one of the contract's forms."""


@dataclass(frozen=True)
class Period:
    """A report period: a year, half, quarter, month or day."""

    kind: str  # "year" | "half" | "quarter" | "month" | "day"
    year: int
    index: int = 0  # half 1-2, quarter 1-4, month 1-12; unused for years and days
    day: date | None = None

    @classmethod
    def parse(cls, text: str) -> "Period":
        match = _PERIOD.match(text.strip())
        if not match:
            raise InvalidPeriod(
                f"period {text!r} is not one of 2024, 2024-H1, 2024-Q2, 2024-06, 2024-06-15"
            )
        year = int(match["year"])
        if year < 1:
            raise InvalidPeriod(f"period {text!r}: year must be at least 0001")
        if match["half"]:
            return cls("half", year, int(match["half"]))
        if match["quarter"]:
            return cls("quarter", year, int(match["quarter"]))
        if match["month"]:
            month = int(match["month"])
            if not 1 <= month <= 12:
                raise InvalidPeriod(f"period {text!r}: month must be 01 to 12")
            if match["day"]:
                try:
                    return cls("day", year, day=date(year, month, int(match["day"])))
                except ValueError as exc:
                    raise InvalidPeriod(f"period {text!r}: {exc}") from None
            return cls("month", year, month)
        return cls("year", year)

    def previous(self) -> "Period":
        """The same period one year earlier (29 February falls back to 28 February)."""
        if self.year <= 1:
            raise InvalidPeriod("there is no period before year 0001")
        if self.day is not None:
            day = self.day
            if day.month == 2 and day.day == 29:
                day -= timedelta(days=1)
            return Period("day", self.year - 1, day=day.replace(year=self.year - 1))
        return Period(self.kind, self.year - 1, self.index)

    def granules(self) -> list[str]:
        """The stored day, month or year keys whose sum is this period."""
        if self.kind == "day":
            return [self.day.isoformat()]
        if self.kind == "year":
            return [f"{self.year:04d}"]
        if self.kind == "month":
            months = [self.index]
        elif self.kind == "quarter":
            months = [3 * (self.index - 1) + i for i in (1, 2, 3)]
        else:
            months = [6 * (self.index - 1) + i for i in range(1, 7)]
        return [f"{self.year:04d}-{m:02d}" for m in months]

    def __str__(self) -> str:
        if self.kind == "day":
            return self.day.isoformat()
        suffix = {"year": "", "half": f"-H{self.index}", "quarter": f"-Q{self.index}"}.get(
            self.kind, f"-{self.index:02d}"
        )
        return f"{self.year:04d}{suffix}"
