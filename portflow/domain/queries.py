"""The questions a report or a series answers, checked: which days against which, by what,
filtered how, in which currency (``portflow report``, ``GET /v1/reports``, ``GET /v1/series``).

Every check names the parameter it is about, so the CLI and the API can say which one is wrong.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo

from portflow.domain.measures import DIMENSIONS, MEASURES, Measure
from portflow.domain.periods import InvalidPeriod, Period, granules_between, same_day_a_year_earlier
from portflow.domain.rates import parse_rate
from portflow.domain.rollup import Filters
from portflow.errors import PortflowError, UsageError

COMPARES: Final = ("yoy", "previous")
CURRENCIES: Final = ("CNY", "USD")
GRANULARITIES: Final = ("day", "month")
MAX_FILTERS: Final = 20
MAX_TOP: Final = 10_000
# The most days (or months) one series covers: ten years.
MAX_SERIES_DAYS: Final = 3660
MAX_SERIES_MONTHS: Final = 120
DEFAULT_SERIES_DAYS: Final = 365
DEFAULT_SERIES_MONTHS: Final = 24
_VALUE = re.compile(r"^[^\s|,:]{1,64}$")


class InvalidParameter(UsageError, ValueError):
    """A request parameter that is not allowed; ``parameter`` names it."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


class MissingRates(PortflowError):
    """A dollar figure needs a month's CNY per USD rate that the rates table does not hold."""

    def __init__(self, months: Iterable[str]) -> None:
        self.months = sorted(set(months))
        shown = ", ".join(self.months[:12]) + (
            f" and {len(self.months) - 12} more" if len(self.months) > 12 else ""
        )
        super().__init__(
            f"no CNY per USD rate for {shown}: load them with `portflow rates "
            "load FILE.csv`, or give one fixed rate (usd_rate / --usd-rate)"
        )


def _measure(measure: str, by: Sequence[str]) -> tuple[Measure, tuple[str, ...]]:
    if measure not in MEASURES:
        raise InvalidParameter(
            "measure", f"unknown measure {measure!r}; choose from {', '.join(MEASURES)}"
        )
    spec = MEASURES[measure]
    allowed = DIMENSIONS[spec.event_type]
    dims = tuple(d.strip() for d in by if d.strip())
    if len(dims) > 2:
        raise InvalidParameter("by", "by takes at most two dimensions")
    if len(set(dims)) != len(dims):
        raise InvalidParameter("by", "by names the same dimension twice")
    for dim in dims:
        if dim not in allowed:
            raise InvalidParameter(
                "by",
                f"dimension {dim!r} does not apply to {measure}; choose from {', '.join(allowed)}",
            )
    return spec, dims


def parse_filters(spec: Measure, filters: Sequence[str]) -> Filters:
    """``dim:value`` strings as ``Filters``: one dimension's values are alternatives."""
    if len(filters) > MAX_FILTERS:
        raise InvalidParameter("filter", f"at most {MAX_FILTERS} filters")
    allowed = DIMENSIONS[spec.event_type]
    values: dict[str, set[str]] = {}
    for text in filters:
        dim, sep, value = text.strip().partition(":")
        if not sep or dim not in allowed or not _VALUE.match(value):
            raise InvalidParameter(
                "filter",
                f"filter {text!r} is not dimension:value with a dimension of "
                f"{spec.name} ({', '.join(allowed)}) and a value of at most 64 "
                "characters without spaces, '|', ',' or ':'",
            )
        values.setdefault(dim, set()).add(value)
    return tuple((dim, tuple(sorted(vals))) for dim, vals in sorted(values.items()))


def _currency(
    spec: Measure, currency: str | None, usd_rate: str | None
) -> tuple[str, Decimal | None]:
    name = (currency or ("USD" if usd_rate is not None else "CNY")).strip().upper()
    if name not in CURRENCIES:
        raise InvalidParameter("currency", f"currency {currency!r}: choose CNY or USD")
    if name == "USD" and spec.name != "value_cny":
        raise InvalidParameter("currency", f"currency USD applies to value_cny, not {spec.name}")
    if usd_rate is None:
        return name, None
    if name != "USD":
        raise InvalidParameter("usd_rate", "usd_rate applies to currency USD")
    rate = parse_rate(str(usd_rate).strip())
    if isinstance(rate, str):
        raise InvalidParameter("usd_rate", f"usd_rate: {rate}")
    return name, rate


@dataclass(frozen=True)
class Money:
    """How amounts are said: the measure's unit, or dollars (at the months' rates, or one)."""

    spec: Measure
    currency: str = "CNY"
    usd_rate: Decimal | None = None

    @property
    def in_dollars(self) -> bool:
        return self.currency == "USD"

    @property
    def unit(self) -> str:
        return "usd" if self.in_dollars else self.spec.unit

    def divisors(self, granules: Iterable[str], rates: dict[str, Decimal]) -> dict[str, Fraction]:
        """Stored units (fen) per dollar, per granule, at its month's rate (or the fixed one);
        raises ``MissingRates`` naming every month without one."""
        months = {g: g[:7] for g in granules}
        if self.usd_rate is not None:
            return {g: Fraction(self.usd_rate) * 100 for g in months}
        missing = [m for m in months.values() if m not in rates]
        if missing:
            raise MissingRates(missing)
        return {g: Fraction(rates[m]) * 100 for g, m in months.items()}

    def rates_used(self, granules: Iterable[str], rates: dict[str, Decimal]) -> dict[str, str]:
        if self.usd_rate is not None:
            return {"*": str(self.usd_rate)}
        return {m: str(rates[m]) for m in sorted({g[:7] for g in granules})}


def _money(spec: Measure, currency: str | None, usd_rate: str | Decimal | None) -> Money:
    name, rate = _currency(spec, currency, None if usd_rate is None else str(usd_rate))
    return Money(spec, name, rate)


def _report_period(text: str) -> Period:
    """The period reported, which must have a year before it to compare with."""
    try:
        current = Period.parse(text)
        current.previous()  # there is none before year 1
    except InvalidPeriod as exc:
        raise InvalidParameter("period", str(exc)) from None
    return current


def _year_to_date(current: Period, compare: str, ytd: bool) -> bool:
    """Whether the report is year to date, once ``compare`` (and ``ytd`` with it) is checked
    against the period: a year is its own year to date."""
    if compare not in COMPARES:
        raise InvalidParameter(
            "compare",
            f"compare {compare!r}: choose yoy (the same days "
            "a year earlier) or previous (the period before)",
        )
    if ytd and compare != "yoy":
        raise InvalidParameter(
            "ytd", "ytd compares with the same days a year earlier: it takes compare=yoy"
        )
    if compare == "previous":
        try:
            current.preceding()
        except InvalidPeriod as exc:
            raise InvalidParameter("compare", str(exc)) from None
    return False if ytd and current.kind == "year" else ytd


@dataclass(frozen=True)
class ReportRequest:
    """A report: a period's days against the same days a year earlier, or the period before."""

    period: Period
    spec: Measure
    by: tuple[str, ...]
    money: Money
    compare: str = "yoy"
    ytd: bool = False
    filters: Filters = ()
    top: int | None = None

    @classmethod
    def parse(
        cls,
        period: str,
        measure: str = "value_cny",
        by: Sequence[str] = (),
        compare: str = "yoy",
        ytd: bool = False,
        filters: Sequence[str] = (),
        currency: str | None = None,
        usd_rate: str | Decimal | None = None,
        top: int | None = None,
    ) -> ReportRequest:
        """Raises ``InvalidParameter`` naming the first parameter that is not allowed."""
        current = _report_period(period)
        spec, dims = _measure(measure, by)
        ytd = _year_to_date(current, compare, ytd)
        if top is not None and not 1 <= top <= MAX_TOP:
            raise InvalidParameter("top", f"top must be 1 to {MAX_TOP:,}")
        return cls(
            current,
            spec,
            dims,
            _money(spec, currency, usd_rate),
            compare,
            ytd,
            parse_filters(spec, filters),
            top,
        )

    @property
    def compared(self) -> Period:
        return self.period.preceding() if self.compare == "previous" else self.period.previous()

    def span(self) -> tuple[date, date]:
        """The first and last day reported."""
        first = date(self.period.year, 1, 1) if self.ytd else self.period.first_day()
        return first, self.period.last_day()

    def previous_span(self) -> tuple[date, date]:
        """The first and last day compared with."""
        if not self.ytd:
            return self.compared.first_day(), self.compared.last_day()
        first, last = self.span()
        return first.replace(year=first.year - 1), same_day_a_year_earlier(last)

    def granules(self) -> tuple[list[str], list[str]]:
        """The stored granules of the days reported and of the days compared with."""
        return _granules_of(self.span(), self.previous_span())


Moment = date | datetime


def _moment(parameter: str, text: str | None, end: bool) -> Moment | None:
    """A day (YYYY-MM-DD), a month (YYYY-MM: its first day, or its last for ``to``), an
    RFC 3339 date-time, or integer epoch milliseconds (Grafana's ``${__from}``)."""
    if text is None or not str(text).strip():
        return None
    text = str(text).strip()
    try:
        if re.fullmatch(r"-?\d{1,15}", text) and len(text) > 7:
            return datetime.fromtimestamp(int(text) / 1000, UTC)
        if re.fullmatch(r"\d{4}-\d{2}", text):
            first = date.fromisoformat(f"{text}-01")
            if not end:
                return first
            following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
            return following - timedelta(days=1)
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return date.fromisoformat(text)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            raise ValueError("no UTC offset")
        return moment
    except (ValueError, OverflowError, OSError):
        raise InvalidParameter(
            parameter,
            f"{parameter} {text!r} is not a day (2024-06-15), a "
            "month (2024-06), an RFC 3339 time or epoch "
            "milliseconds",
        ) from None


def local_day(moment: Moment, tz: ZoneInfo) -> date:
    return moment.astimezone(tz).date() if isinstance(moment, datetime) else moment


@dataclass(frozen=True)
class SeriesRequest:
    """Day or month totals by event time, each beside the same weekday 52 weeks earlier (days)
    or the same month a year earlier."""

    spec: Measure
    by: tuple[str, ...]
    money: Money
    granularity: str = "day"
    start: Moment | None = None
    end: Moment | None = None
    filters: Filters = ()

    @classmethod
    def parse(
        cls,
        measure: str = "value_cny",
        by: Sequence[str] = (),
        granularity: str = "day",
        start: str | None = None,
        end: str | None = None,
        filters: Sequence[str] = (),
        currency: str | None = None,
        usd_rate: str | Decimal | None = None,
    ) -> SeriesRequest:
        """Raises ``InvalidParameter`` naming the first parameter that is not allowed."""
        spec, dims = _measure(measure, by)
        if granularity not in GRANULARITIES:
            raise InvalidParameter(
                "granularity", f"granularity {granularity!r}: choose day or month"
            )
        first, last = _moment("from", start, False), _moment("to", end, True)
        return cls(
            spec,
            dims,
            _money(spec, currency, usd_rate),
            granularity,
            first,
            last,
            parse_filters(spec, filters),
        )

    def days(self, tz: ZoneInfo, newest_day: date | None) -> tuple[date, date]:
        """The first and last local day covered: by default the last year (days) or two years
        (months) up to the newest event's day (needed only where from or to is not given)."""
        last = local_day(self.end, tz) if self.end is not None else newest_day
        if last is None:
            raise ValueError("a series without its last day needs the newest event's day")
        if self.start is not None:
            first = local_day(self.start, tz)
        elif self.granularity == "day":
            first = last - timedelta(days=DEFAULT_SERIES_DAYS - 1)
        else:
            first = _add_months(last.replace(day=1), 1 - DEFAULT_SERIES_MONTHS)
        if first > last:
            raise InvalidParameter("from", f"from {first} is after to {last}")
        if first.year < 2:
            raise InvalidParameter("from", "from must be in year 0002 or later")
        if self.granularity == "day" and (last - first).days >= MAX_SERIES_DAYS:
            raise InvalidParameter(
                "to",
                f"a day series covers at most {MAX_SERIES_DAYS:,} days; "
                "narrow from/to or use granularity=month",
            )
        months = (last.year - first.year) * 12 + last.month - first.month + 1
        if self.granularity == "month" and months > MAX_SERIES_MONTHS:
            raise InvalidParameter(
                "to", f"a month series covers at most {MAX_SERIES_MONTHS} months; narrow from/to"
            )
        return first, last

    def times(self, tz: ZoneInfo, newest_day: date | None) -> list[tuple[str, str]]:
        """(granule, the granule it is compared with) for every day or month covered."""
        return _times(self.granularity, *self.days(tz, newest_day))


@lru_cache(maxsize=1024)  # the same questions come again and again: their granules with them
def _granules_of(
    span: tuple[date, date], previous: tuple[date, date]
) -> tuple[list[str], list[str]]:
    return granules_between(*span), granules_between(*previous)


@lru_cache(maxsize=1024)
def _times(granularity: str, first: date, last: date) -> list[tuple[str, str]]:
    if granularity == "day":
        return [
            ((d := first + timedelta(days=i)).isoformat(), (d - timedelta(weeks=52)).isoformat())
            for i in range((last - first).days + 1)
        ]
    month, end = first.replace(day=1), last.replace(day=1)
    pairs = []
    while month <= end:
        pairs.append(
            (f"{month.year:04d}-{month.month:02d}", f"{month.year - 1:04d}-{month.month:02d}")
        )
        month = _add_months(month, 1)
    return pairs


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)
