"""Calendar periods in the reporting time zone.

Aggregates are kept per day and per month (the *granules*); a report period is answered from
the granules that cover it: a day or a month from one, a quarter from three months, a half from
six, a year from twelve. (A year granule would save a report a few reads but cost every event
more writes.)
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from portflow.errors import UsageError

_PERIOD = re.compile(
    r"^(?P<year>\d{4})(?:-(?:H(?P<half>[12])|Q(?P<quarter>[1-4])|(?P<month>\d{2})(?:-(?P<day>\d{2}))?))?$"
)


class LocalCalendar:
    """The day and month of event times in the reporting time zone, memoised per UTC day.

    Converting every event's time through the zone database is the costliest part of placing
    it. Within a UTC day without an offset change, the local day is plain arithmetic on the
    event's POSIX seconds; the zone's offset is looked up once per UTC day, at each quarter hour
    of it (as fine as any offset change in the zone database falls). A UTC day in which the
    offset changes is converted event by event.
    """

    _QUARTER_S = 900
    _DAY_S = 86400
    _MAX_CACHED = 200_000  # UTC days (and local day names): over 500 years

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        self._offsets: dict[int, int | None] = {}  # UTC day -> its one offset (s), or None
        self._names: dict[int, str] = {}  # local day number (days since 1970-01-01) -> ISO

    def granules(self, ts: datetime) -> tuple[str, str]:
        day = self.day(ts, ts.timestamp())
        return day, day[:7]

    def day(self, ts: datetime, seconds: float) -> str:
        """The local day of ``ts``, given as well as ``seconds`` (its ``timestamp()``), which
        events carry from parsing so that it is computed once."""
        utc_day = int(seconds // self._DAY_S)  # floor, also before 1970
        offset: int | Literal[""] | None = self._offsets.get(utc_day, "")  # "": not known yet
        if offset == "":
            offset = self._constant_offset(utc_day)
            if len(self._offsets) >= self._MAX_CACHED:
                self._offsets.clear()
            self._offsets[utc_day] = offset
        if offset is None:  # the offset changes during this UTC day: convert this event exactly
            return ts.astimezone(self.tz).date().isoformat()
        local_day = int((seconds + offset) // self._DAY_S)
        name = self._names.get(local_day)
        if name is None:
            name = (_EPOCH_DAY + timedelta(days=local_day)).isoformat()
            if len(self._names) >= self._MAX_CACHED:
                self._names.clear()
            self._names[local_day] = name
        return name

    def _constant_offset(self, utc_day: int) -> int | None:
        """The zone's UTC offset in seconds throughout ``utc_day``, or None if it changes."""
        start = utc_day * self._DAY_S
        instants = [*range(start, start + self._DAY_S, self._QUARTER_S), start + self._DAY_S - 1]
        offsets = {datetime.fromtimestamp(t, self.tz).utcoffset() for t in instants}
        if len(offsets) != 1:
            return None
        offset = offsets.pop()
        return None if offset is None else int(offset.total_seconds())  # (never None: a ZoneInfo)


_EPOCH_DAY = date(1970, 1, 1)


class InvalidPeriod(UsageError, ValueError):
    """A period string that is not one of the contract's forms."""


@dataclass(frozen=True)
class Period:
    """A report period: a year, half, quarter, month or day."""

    kind: str  # "year" | "half" | "quarter" | "month" | "day"
    year: int
    index: int = 0  # half 1-2, quarter 1-4, month 1-12; unused for years and days
    day: date | None = None

    @classmethod
    def parse(cls, text: str) -> Period:
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

    def previous(self) -> Period:
        """The same period one year earlier (29 February falls back to 28 February)."""
        if self.year <= 1:
            raise InvalidPeriod("there is no period before year 0001")
        if self.day is not None:
            day = self.day
            if day.month == 2 and day.day == 29:
                day -= timedelta(days=1)
            return Period("day", self.year - 1, day=day.replace(year=self.year - 1))
        return Period(self.kind, self.year - 1, self.index)

    def preceding(self) -> Period:
        """The period just before: the previous day, month, quarter, half or year."""
        if self.day is not None:
            if self.day == date(1, 1, 1):
                raise InvalidPeriod("there is no day before 0001-01-01")
            before = self.day - timedelta(days=1)
            return Period("day", before.year, day=before)
        per_year = {"year": 1, "half": 2, "quarter": 4, "month": 12}[self.kind]
        if self.kind == "year" or self.index == 1:
            if self.year <= 1:
                raise InvalidPeriod(f"there is no period before {self}")
            return Period(self.kind, self.year - 1, 0 if self.kind == "year" else per_year)
        return Period(self.kind, self.year, self.index - 1)

    def granules(self) -> list[str]:
        """The stored day or month keys whose sum is this period."""
        if self.day is not None:
            return [self.day.isoformat()]
        months: Iterable[int]
        if self.kind == "year":
            months = range(1, 13)
        elif self.kind == "month":
            months = [self.index]
        elif self.kind == "quarter":
            months = [3 * (self.index - 1) + i for i in (1, 2, 3)]
        else:
            months = [6 * (self.index - 1) + i for i in range(1, 7)]
        return [f"{self.year:04d}-{m:02d}" for m in months]

    def first_day(self) -> date:
        if self.day is not None:
            return self.day
        return date(self.year, int(self.granules()[0][5:]), 1)

    def last_day(self) -> date:
        if self.day is not None:
            return self.day
        month = int(self.granules()[-1][5:])
        return date(self.year, month, calendar.monthrange(self.year, month)[1])

    def days(self) -> list[date]:
        """Every day of the period, in order."""
        first = self.first_day()
        return [first + timedelta(days=i) for i in range((self.last_day() - first).days + 1)]

    def __str__(self) -> str:
        if self.day is not None:
            return self.day.isoformat()
        suffix = {"year": "", "half": f"-H{self.index}", "quarter": f"-Q{self.index}"}.get(
            self.kind, f"-{self.index:02d}"
        )
        return f"{self.year:04d}{suffix}"


def same_day_a_year_earlier(day: date) -> date:
    """The same day a year earlier; 29 February falls back to 28 February."""
    if (day.month, day.day) == (2, 29):
        day -= timedelta(days=1)
    return day.replace(year=day.year - 1)


def granules_between(first: date, last: date) -> list[str]:
    """The stored keys whose sum is the days ``first`` to ``last``: whole months as month
    granules, the days of partly covered months as day granules."""
    granules: list[str] = []
    day = first
    while day <= last:
        month_end = date(day.year, day.month, calendar.monthrange(day.year, day.month)[1])
        if day.day == 1 and month_end <= last:
            granules.append(f"{day.year:04d}-{day.month:02d}")
            day = month_end + timedelta(days=1)
        else:
            stop = min(month_end, last)
            granules += [
                (day + timedelta(days=i)).isoformat() for i in range((stop - day).days + 1)
            ]
            day = stop + timedelta(days=1)
    return granules


SPANS = ("month", "quarter", "half", "ytd")
_SPAN_MONTHS = {"month": 1, "quarter": 3, "half": 6, "ytd": 12}


def span_to_date(span: str, latest: date) -> tuple[Period, list[str], list[str]]:
    """The month, quarter, half or year containing ``latest``, from its first day through
    ``latest``, as (period, its granules, the granules of the same days a year earlier).

    Once a period is complete this is the whole period, so the figures equal ``report``'s.
    """
    length = _SPAN_MONTHS[span]
    first_month = (latest.month - 1) // length * length + 1
    index = {
        "month": latest.month,
        "quarter": (latest.month - 1) // 3 + 1,
        "half": (latest.month - 1) // 6 + 1,
        "ytd": 0,
    }[span]
    period = Period("year" if span == "ytd" else span, latest.year, index)
    before = (
        latest.replace(year=latest.year - 1, day=min(latest.day, 28))
        if (latest.month, latest.day) == (2, 29)
        else latest.replace(year=latest.year - 1)
    )
    return period, _granules_to(first_month, latest), _granules_to(first_month, before)


def _granules_to(first_month: int, last_day: date) -> list[str]:
    months = [f"{last_day.year:04d}-{m:02d}" for m in range(first_month, last_day.month)]
    if (last_day + timedelta(days=1)).month != last_day.month:  # the whole last month
        return [*months, f"{last_day.year:04d}-{last_day.month:02d}"]
    return months + [f"{last_day.replace(day=d).isoformat()}" for d in range(1, last_day.day + 1)]
