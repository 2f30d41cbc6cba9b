"""Series by event time: one row per day (or month) and key, beside the same weekday 52 weeks
earlier (or the same month a year earlier), flat, as a Grafana time-series panel draws them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from typing import Final, TypedDict
from zoneinfo import ZoneInfo

from portflow.domain.documents import JsonObject
from portflow.domain.figures import Exact
from portflow.domain.queries import InvalidParameter, SeriesRequest
from portflow.domain.report import RowKey, amount_of
from portflow.domain.rollup import EMPTY, Rollup

# The most rows one series returns (times x keys): past it, narrow the range or the keys.
MAX_ROWS: Final = 200_000


class SeriesData(TypedDict):
    """The ``data`` member of a series: how far the events go."""

    newest_event: str | None  # RFC 3339, in the reporting time zone
    time_zone: str
    last_complete_day: str | None  # the last day a later event passed (ISO)


@lru_cache(maxsize=8192)
def local_midnight(granule: str, tz: ZoneInfo) -> str:
    """RFC 3339 local midnight that starts a day or month granule."""
    day = date.fromisoformat(granule if len(granule) == 10 else f"{granule}-01")
    return datetime(day.year, day.month, day.day, tzinfo=tz).isoformat()


def build_series(
    request: SeriesRequest,
    pairs: list[tuple[str, str]],
    rollups: Mapping[str, Rollup],
    tz: ZoneInfo,
    data: SeriesData,
    rates: Mapping[str, Decimal] | None = None,
) -> JsonObject:
    """The series object: every key with any amount in the range, at every time of ``pairs``
    (granule, granule compared with), zeros included; ``rollups`` holds each granule named
    (missing ones are empty). Dollars convert each granule at its month's rate, rounded once
    per figure. Raises ``InvalidParameter`` past ``MAX_ROWS`` rows."""
    money = request.money
    granules = [g for pair in pairs for g in pair]
    divisors = money.divisors(granules, dict(rates or {})) if money.in_dollars else None
    keys = _keys(request, granules, rollups)
    if len(keys) * len(pairs) > MAX_ROWS:
        raise InvalidParameter(
            "by",
            f"{len(keys):,} keys x {len(pairs):,} times is over "
            f"{MAX_ROWS:,} rows: narrow from/to, by or the filters",
        )
    value = _value_of(request, rollups, divisors)
    result: JsonObject = {
        "measure": money.spec.name,
        "by": list(request.by),
        "granularity": request.granularity,
        "from": pairs[0][0] if pairs else None,
        "to": pairs[-1][0] if pairs else None,
        "filters": {dim: list(values) for dim, values in request.filters},
        "currency": money.currency if money.spec.name == "value_cny" else None,
        "unit": money.unit,
        "time_zone": tz.key,
        "rows": _rows(request, keys, pairs, tz, value),
    }
    if money.in_dollars:
        result["usd_rates"] = money.rates_used(granules, dict(rates or {}))
    result["data"] = data  # last: what moves with every worker step
    return result


def _keys(
    request: SeriesRequest, granules: list[str], rollups: Mapping[str, Rollup]
) -> list[RowKey]:
    """The keys with an amount in any granule, in order; the one key ``()`` by no dimension."""
    if not request.by:
        return [()]
    return sorted({k for g in granules for k, units in rollups.get(g, EMPTY).rows.items() if units})


def _value_of(
    request: SeriesRequest,
    rollups: Mapping[str, Rollup],
    divisors: Mapping[str, Fraction] | None,
) -> Callable[[str, RowKey], Exact]:
    """The exact amount of a key in a granule: stored units, or dollars at its divisor."""

    def value(granule: str, key: RowKey) -> Exact:
        units = rollups.get(granule, EMPTY)
        found = units.rows.get(key, 0) if request.by else units.total
        return Fraction(found) / divisors[granule] if divisors is not None else found

    return value


def _rows(
    request: SeriesRequest,
    keys: list[RowKey],
    pairs: list[tuple[str, str]],
    tz: ZoneInfo,
    value: Callable[[str, RowKey], Exact],
) -> list[JsonObject]:
    """One row per key and time, flat: the key's columns, its amount and the one compared."""
    amount = amount_of(request.money)
    rows = []
    for key in keys:
        named = "/".join(key) if key else "total"
        columns = dict(zip(request.by, key, strict=True))
        for granule, compared in pairs:
            rows.append(
                {
                    "time": local_midnight(granule, tz),
                    "key": named,
                    **columns,
                    "value": amount(value(granule, key)),
                    "previous": amount(value(compared, key)),
                    "previous_time": local_midnight(compared, tz),
                }
            )
    return rows
