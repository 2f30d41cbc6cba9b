"""The drop judge as it was before issue 23 made it fast: kept for ``python -m bench.detection
--speed`` (before and after, side by side, in one run) and for the test that the fast judge
judges every day exactly as this one did. Not used by portflow.

``domain.detection`` and ``services.anomalies.DailyTotals`` (reading and judging) as of commit
6112d78, with the uncached festival calendar: the functions issue 23 changed, and those that
call them; the data classes, constants and unchanged leaf functions are today's, imported.
Typed as the live judge is (issue 27: the same narrowing of unknown days), same judgements.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from statistics import median, quantiles

from portflow.adapters.redis import RedisStore
from portflow.domain.detection import (
    DEFAULT_MIN_DROP_PCT,
    LOOKBACK_WEEKS,
    MIN_GROWTH_PAIRS,
    MIN_PROFILE_DAYS,
    MIN_WEEK_SAMPLES,
    PROFILE_DAYS,
    PROFILE_LOOKBACK_DAYS,
    RUN_CONTEXT_DAYS,
    WEEKS,
    YEAR,
    Expectation,
    Judgement,
    Values,
    _mark_runs,
    _weekday_medians,
    is_drop,
    series_values,
)
from portflow.domain.festivals import in_festival_window as _cached_in_festival_window
from portflow.domain.festivals import same_festival_day_a_year_earlier
from portflow.domain.measures import Measure
from portflow.domain.rollup import sum_by

in_festival_window = _cached_in_festival_window.__wrapped__  # as it was: not cached
HISTORY = YEAR + timedelta(weeks=LOOKBACK_WEEKS + 1, days=PROFILE_LOOKBACK_DAYS)
READ_DAYS = 31


def _profile_days(values: Values, day: date) -> list[tuple[date, int]]:
    """The latest ``PROFILE_DAYS`` known ordinary (non-festival) days before ``day``."""
    found = []
    for back in range(1, PROFILE_LOOKBACK_DAYS + 1):
        earlier = day - timedelta(days=back)
        value = values(earlier)
        if value is None:
            break
        if not in_festival_window(earlier):
            found.append((earlier, value))
            if len(found) == PROFILE_DAYS:
                break
    return found


def _week_samples(values: Values, day: date, direction: int = -1) -> list[int]:
    """Up to ``WEEKS`` known ordinary days of ``day``'s weekday, nearest first, looking back
    (``direction`` -1) or ahead (+1)."""
    samples = []
    for weeks in range(1, LOOKBACK_WEEKS + 1):
        other = day + timedelta(weeks=weeks * direction)
        value = values(other)
        if value is None:
            break
        if not in_festival_window(other):
            samples.append(value)
            if len(samples) == WEEKS:
                break
    return samples


def _noise(values: Values, profile: list[tuple[date, int]], day: date) -> float:
    """The spread of recent days below their expectation, as a fraction of it.

    Each day is set against the median of its weekday's ordinary days up to two weeks either
    side (before ``day``): near neighbours, so that a trend or the season does not pass for
    noise. The spread is the interquartile range over 1.349 (sigma for normal noise): the
    quartiles stay put while up to a quarter of the days were disrupted, and both halves of the
    days count (the lower half alone, of some 28 days, varies too much from week to week).
    """
    ratios = []
    for d, value in profile:
        around = [
            values(d + timedelta(weeks=w)) for w in (-2, -1, 1, 2) if d + timedelta(weeks=w) < day
        ]
        known = [v for v in around if v is not None]
        centre = median(known) if len(known) >= 2 else 0
        if centre > 0:
            ratios.append(value / centre)
    if len(ratios) < MIN_PROFILE_DAYS:
        return float("inf")
    lower, _, upper = quantiles(ratios, n=4)
    return (upper - lower) / 1.349


def _growth(values: Values, profile: list[tuple[date, int]]) -> float | None:
    ratios = []
    for d, value in profile:
        earlier = d - YEAR
        before = values(earlier)
        if before and not in_festival_window(earlier):
            ratios.append(value / before)
    return median(ratios) if len(ratios) >= MIN_GROWTH_PAIRS else None


def _year_earlier(values: Values, day: date, growth: float | None) -> float | None:
    if growth is None:
        return None
    refs = []
    for shift in (-1, 0, 1):
        earlier = day - YEAR + timedelta(weeks=shift)
        value = values(earlier)
        if value is not None and not in_festival_window(earlier):
            refs.append(value)
    return median(refs) * growth if len(refs) >= 2 else None


def _ordinary_level(values: Values, day: date, after: bool) -> float | None:
    """The median of the ordinary (non-festival) days of ``day``'s weekday in the weeks before
    it, and after it too where ``after`` (a day a year back may look at what followed it)."""
    samples = _week_samples(values, day, -1)
    if after:
        samples += _week_samples(values, day, +1)
    return float(median(samples)) if len(samples) >= MIN_WEEK_SAMPLES else None


def _festival_year_earlier(values: Values, day: date) -> float | None:
    """The festival's effect a year earlier, applied to this year's ordinary level.

    The effect is that year's day at the same distance from its festival over the ordinary
    days of its weekday around it; the median of that and the days either side of it (a median
    of three keeps the steps of the holiday's first and last days, and halves the noise).
    """
    reference = same_festival_day_a_year_earlier(day)
    now = _ordinary_level(values, day, after=False)
    if reference is None or now is None:
        return None
    effects = []
    for shift in (-1, 0, 1):
        then_day = reference + timedelta(days=shift)
        value = values(then_day)
        if value is None:
            continue
        then = _ordinary_level(values, then_day, after=True)
        if then:
            effects.append(value / then)
    return float(median(effects)) * now if len(effects) >= 2 else None


def expectation(values: Values, day: date) -> Expectation | None:
    """What ``day`` should have brought, or None where the history is too short to say."""
    profile = _profile_days(values, day)
    medians = _weekday_medians(profile)
    if not medians:
        return None
    level = sum(medians.values()) / len(medians)
    noise = _noise(values, profile, day)
    if in_festival_window(day):
        candidates = {"festival-year-earlier": _festival_year_earlier(values, day)}
    else:
        candidates = {
            "trailing-weeks": _ordinary_level(values, day, after=False),
            "year-earlier": _year_earlier(values, day, _growth(values, profile)),
        }
    known = {name: value for name, value in candidates.items() if value is not None}
    if not known:
        return None
    baseline = min(known, key=known.__getitem__)
    return Expectation(known[baseline], baseline, level, noise)


def judge(
    values: Values, key: tuple[str, ...], day: date, min_drop_pct: float = DEFAULT_MIN_DROP_PCT
) -> Judgement:
    observed = values(day) or 0
    exp = expectation(values, day)
    return Judgement(
        day, key, observed, exp, exp is not None and is_drop(observed, exp, min_drop_pct)
    )


def judge_all(
    daily: Mapping[tuple[str, ...], Mapping[date, int]],
    days: Iterable[date],
    first_day: date | None,
    min_drop_pct: float = DEFAULT_MIN_DROP_PCT,
) -> list[Judgement]:
    """Every key's judgement of every day (consecutive, in order), by key, then day; runs of
    days judged together (``_mark_runs``)."""
    days = list(days)
    found = []
    for key, totals in sorted(daily.items()):
        values = series_values(totals, first_day)
        found += _mark_runs([judge(values, key, day, min_drop_pct) for day in days], min_drop_pct)
    return found


def find_drops(
    daily: Mapping[tuple[str, ...], Mapping[date, int]],
    days: Iterable[date],
    first_day: date | None,
    min_drop_pct: float = DEFAULT_MIN_DROP_PCT,
) -> list[Judgement]:
    """The anomalous days of every key, sorted by day, then by the largest drop, then key."""
    found = [j for j in judge_all(daily, days, first_day, min_drop_pct) if j.anomalous]
    found.sort(key=lambda j: (j.day, -(j.drop_pct or 0.0), j.key))  # (an anomaly has one)
    return found


@dataclass
class DailyTotals:
    """``services.anomalies.DailyTotals`` as it was (reading and judging)."""

    store: RedisStore
    spec: Measure
    by: list[str]
    reread_days: int = 0

    def __post_init__(self) -> None:
        self._days: dict[date, dict[tuple[str, ...], int]] = {}
        self.first_day: date | None = None

    def load(self, first: date, last: date) -> dict[tuple[str, ...], dict[date, int]]:
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
                self._days[day] = sum_by(self.spec.event_type, self.by, cells[day.isoformat()])
        series: dict[tuple[str, ...], dict[date, int]] = {}
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
        context = [days[0] - timedelta(days=n) for n in range(RUN_CONTEXT_DAYS, 0, -1)]
        series = self.load(context[0] - HISTORY, days[-1])
        wanted = set(days)
        judged = (find_drops if drops_only else judge_all)(
            series, context + days, self.first_day, min_drop_pct
        )
        return [j for j in judged if j.day in wanted]
