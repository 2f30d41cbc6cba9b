"""Throughput drops read from the Redis store: the daily totals ``domain.detection`` judges.

The same judgement serves ``portflow anomalies`` (any period, read afresh) and the worker's
live gauges (``streams.drops``: each day as it completes, from a cache of recent days). Both
take the days before the live view's reference day (``domain.live_time``) as complete.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final, TypedDict
from zoneinfo import ZoneInfo

from portflow.adapters.redis import RedisStore
from portflow.config import Settings
from portflow.domain.coverage import COMPLETE, Coverage, CoverageData, sentence
from portflow.domain.detection import (
    DEFAULT_MIN_DROP_PCT,
    LOOKBACK_WEEKS,
    PROFILE_LOOKBACK_DAYS,
    RUN_CONTEXT_DAYS,
    YEAR,
    Judgement,
    find_drops,
    judge_all,
)
from portflow.domain.documents import JsonObject
from portflow.domain.live_time import reference_time
from portflow.domain.measures import Measure, check_request
from portflow.domain.periods import Period
from portflow.domain.report import RowKey
from portflow.domain.rollup import granule_summer
from portflow.errors import UsageError

# How far back a judgement reads: a year and its baselines, around the festival too.
HISTORY: Final = YEAR + timedelta(weeks=LOOKBACK_WEEKS + 1, days=PROFILE_LOOKBACK_DAYS)
READ_DAYS: Final = 31  # day granules read from Redis in one round trip


class AnomaliesData(CoverageData):
    """The ``data`` member of an anomalies object: coverage, and the last day judged."""

    judged_through: str | None  # ISO day; None before any complete day


class AnomalyJson(TypedDict):
    """One drop of an anomalies object (``anomalies``)."""

    day: str  # ISO
    key: dict[str, str]  # dimension -> value
    observed: float  # in the measure's unit
    expected: float
    drop_pct: float
    baseline: str  # which baseline set the expectation (``detection.Expectation``)


class InvalidMinDrop(UsageError, ValueError):
    """A ``--min-drop`` outside (0, 100]."""


def check_min_drop(pct: float) -> float:
    if not 0 < pct <= 100:
        raise InvalidMinDrop(f"--min-drop must be above 0 and at most 100, not {pct:g}")
    return pct


def last_complete_day(
    store: RedisStore, tz: ZoneInfo, now_s: float, max_ahead_s: int | None
) -> date | None:
    """The day before the reference day (event time: a day is complete once a later one
    began; the reference time is the newest event's, at most ``max_ahead_s`` past the clock
    ``now_s``, see ``domain.live_time``), or None before any event."""
    latest = reference_time(store.latest_event_time(), now_s, max_ahead_s)
    if latest is None:
        return None
    return datetime.fromtimestamp(latest, tz).date() - timedelta(days=1)


@dataclass
class DailyTotals:
    """A measure's daily totals by the ``by`` dimensions, read from the day granules.

    ``reread_days``: the latest days read again on every later ``load`` (late events land
    there); older days are kept from earlier reads.
    """

    store: RedisStore
    spec: Measure
    by: list[str]
    reread_days: int = 0

    def __post_init__(self) -> None:
        self._days: dict[date, dict[RowKey, int]] = {}
        self._summed = granule_summer(self.spec.event_type, self.by)
        self.first_day: date | None = None

    def load(self, first: date, last: date) -> dict[RowKey, dict[date, int]]:
        """{key: {day: total}} for the days ``first``..``last`` (within the history)."""
        found = self.store.first_day(self.spec.event_type, self.spec.stored)
        self.first_day = None if found is None else date.fromisoformat(found)
        if self.first_day is None:
            return {}
        first = max(first, self.first_day)
        fresh_from = last - timedelta(days=self.reread_days)
        self._days = {d: t for d, t in self._days.items() if first <= d < fresh_from}
        wanted = [
            first + timedelta(days=i)
            for i in range((last - first).days + 1)
            if first + timedelta(days=i) not in self._days
        ]
        for i in range(0, len(wanted), READ_DAYS):
            chunk = wanted[i : i + READ_DAYS]
            cells = self.store.cells_per_granule(
                self.spec.event_type, self.spec.stored, [d.isoformat() for d in chunk]
            )
            for day in chunk:
                self._days[day] = self._summed(cells[day.isoformat()])
        series: dict[RowKey, dict[date, int]] = {}
        for day, totals in self._days.items():
            for key, total in totals.items():
                series.setdefault(key, {})[day] = total
        return series

    def judge(
        self, days: list[date], min_drop_pct: float, drops_only: bool = True
    ) -> list[Judgement]:
        """The drops among ``days`` (consecutive, in order), or every key's judgement; the
        ``RUN_CONTEXT_DAYS`` before them are judged too (a run of drops may begin there)."""
        if not days:
            return []
        back = days[0] - date.min  # (near year 1 the calendar ends first)
        context = [
            days[0] - timedelta(days=n)
            for n in range(RUN_CONTEXT_DAYS, 0, -1)
            if timedelta(days=n) <= back
        ]
        first = (context or days)[0]
        series = self.load(first - min(HISTORY, first - date.min), days[-1])
        wanted = set(days)
        judged = (find_drops if drops_only else judge_all)(
            series, context + days, self.first_day, min_drop_pct
        )
        return [j for j in judged if j.day in wanted]


@dataclass(frozen=True)
class AnomaliesRequest:
    period: Period
    spec: Measure
    by: list[str]
    min_drop_pct: float

    @classmethod
    def parse(
        cls, period: str, measure: str, by: list[str], min_drop_pct: float = DEFAULT_MIN_DROP_PCT
    ) -> AnomaliesRequest:
        """Raises ``InvalidPeriod``/``InvalidReport``/``InvalidMinDrop`` for bad requests."""
        return cls(
            Period.parse(period), check_request(measure, by), list(by), check_min_drop(min_drop_pct)
        )


def read_anomalies(
    store: RedisStore,
    tz: ZoneInfo,
    request: AnomaliesRequest,
    max_ahead_s: int | None = Settings.max_event_ahead_s,
) -> JsonObject:
    """The anomalies object: the complete days of the period whose throughput fell by at least
    the request's minimum drop, sorted by day, then drop. ``data`` says how far the events
    applied go; the days judged end before the live view's now (``max_ahead_s``: the
    event-time guard's, see ``domain.live_time``). Raises ``redis.RedisError`` if Redis cannot
    be read."""
    newest = store.latest_event_time()
    coverage = Coverage.of(request.period, newest, tz)
    complete = Coverage.of(
        request.period, reference_time(newest, time.time(), max_ahead_s), tz
    ).last_complete_day
    days = [d for d in request.period.days() if complete is not None and d <= complete]
    found = (
        DailyTotals(store, request.spec, request.by).judge(days, request.min_drop_pct)
        if days
        else []
    )
    return {
        "period": str(request.period),
        "measure": request.spec.name,
        "by": request.by,
        "min_drop_pct": request.min_drop_pct,
        "anomalies": [anomaly_json(j, request.spec, request.by) for j in found],
        "data": AnomaliesData(
            **coverage.as_json(), judged_through=None if complete is None else complete.isoformat()
        ),
    }


def anomaly_json(judgement: Judgement, spec: Measure, by: Iterable[str]) -> AnomalyJson:
    """A drop as the anomalies object lists it (a judged day: it has an expectation)."""
    expectation, drop_pct = judgement.expectation, judgement.drop_pct
    if expectation is None or drop_pct is None:
        raise ValueError(f"{judgement.day} of {judgement.key} was not judged: not a drop")
    scale: int = 10**spec.places
    return {
        "day": judgement.day.isoformat(),
        "key": dict(zip(by, judgement.key, strict=True)),
        "observed": round(judgement.observed / scale, spec.places),
        "expected": round(expectation.expected / scale, spec.places),
        "drop_pct": round(drop_pct, 2),
        "baseline": expectation.baseline,
    }


def anomalies_table(result: JsonObject) -> str:
    """A readable, aligned text table of an anomalies object."""
    by = result["by"]
    header = ["day", *by, "observed", "expected", "drop %", "baseline"]
    body = [
        [
            a["day"],
            *(a["key"][d] for d in by),
            f"{a['observed']:,}",
            f"{a['expected']:,}",
            f"{a['drop_pct']:.2f}",
            a["baseline"],
        ]
        for a in result["anomalies"]
    ]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    numeric = range(1 + len(by), 4 + len(by))

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in numeric else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    title = (
        f"{result['measure']} by {', '.join(by)}: days of {result['period']} at least "
        f"{result['min_drop_pct']:g}% below expectation"
    )
    if not body:
        return f"{title}\n{judged_line(result)}\n(none)"
    return "\n".join(
        [
            title,
            judged_line(result),
            line(header),
            "  ".join("-" * w for w in widths),
            *map(line, body),
        ]
    )


def judged_line(result: JsonObject) -> str:
    """How far the events go, and which days of the period could be judged."""
    data = result["data"]
    judged = (
        f"; days through {data['judged_through']} judged"
        if data["judged_through"]
        else "; no complete day to judge yet"
    )
    every_day = (
        data["period_status"] == COMPLETE
        and data["judged_through"] == Period.parse(result["period"]).last_day().isoformat()
    )  # (not past the clock's day)
    return sentence(result["period"], data) + ("" if every_day else judged)
