"""Throughput drops in event time: what a day brought against what the calendar led us to expect.

Pure: each key (a port, a port and mode, a port and train service) comes in as its daily totals;
out come the days whose total fell at least ``min_drop_pct`` below the expectation, and only
where the drop stands out of the key's day-to-day noise. Days before the history starts are
unknown, never zero, so a young history says "too early to tell" rather than "a drop".

The expectation is the lower of two robust baselines (taking the lower trades a little
sensitivity for few false alarms):

- **trailing weeks**: the median of the same weekday in the last ``WEEKS`` weeks outside the
  festival (weekday-aligned, so a quiet Sunday is compared with Sundays);
- **a year earlier**: the median of the weekday-aligned days 52 weeks earlier (±1 week) outside
  that year's festival, times the key's growth since (the median ratio of recent days to the
  same weekdays a year before them).

Within the Spring Festival's window (``domain.festivals``) neither holds: the day is compared
with the day as far from the previous year's festival, times the growth, corrected for the
weekday only downwards. Without that year (the first festival of a history) a festival day is
not judged.

A drop counts when, besides ``min_drop_pct``, it is at least ``NOISE_Z`` times the key's noise:
the spread of recent days around their weekday's neighbours (``_noise``), widened for days
expected to be quieter than usual (relative noise grows as volume shrinks) and for festival
days. Consecutive days too noisy to stand out alone count together (``_mark_runs``): a run of
days each at least ``min_drop_pct`` and ``RUN_DAY_Z`` times its noise below expectation, whose
summed drop is ``RUN_Z`` times the noise of the sum, is a drop on every one of its days (a
port closed for four days stands out where one quiet day would not). Days expected to carry
less than ``MIN_SHARE_OF_LEVEL`` of the key's usual volume are not judged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, timedelta
from statistics import median, quantiles
from typing import Final

from portflow.domain.festivals import in_festival_window, same_festival_day_a_year_earlier

DEFAULT_MIN_DROP_PCT: Final = 50.0
WEEKS: Final = 8  # same-weekday samples in the trailing baseline
LOOKBACK_WEEKS: Final = (
    16  # how far back those samples are looked for (the festival takes six weeks)
)
MIN_WEEK_SAMPLES: Final = 3
PROFILE_DAYS: Final = (
    56  # recent ordinary days that give the weekday profile, the growth and the noise
)
PROFILE_LOOKBACK_DAYS: Final = 160
MIN_GROWTH_PAIRS: Final = 14
MIN_PROFILE_DAYS: Final = 21  # fewer, and the noise is not known
YEAR: Final = timedelta(weeks=52)  # weekday-aligned
NOISE_Z: Final = 4.5
MAX_NOISE_WIDENING: Final = 3.0  # at most sqrt(9): a day expected at a ninth of the usual volume
MIN_SHARE_OF_LEVEL: Final = 0.2
RUN_Z: Final = 4.0  # consecutive days judged together: their summed drop over the noise of the sum
RUN_DAY_Z: Final = 2.0  # and each of them this far below its own expectation
RUN_CONTEXT_DAYS: Final = 14  # judge this many days before those asked about: a run may begin there
# A festival day is set against single days a year earlier (a median of three), not against
# the median of weeks: their noise adds to the day's own.
FESTIVAL_NOISE_WIDENING: Final[float] = 2**0.5

Values = Callable[[date], int | None]  # a key's total on a day; None before the history
AROUND_WEEKS: Final = (-2, -1, 1, 2)  # a day's neighbours in ``_noise``, in weeks
ONE_DAY: Final = timedelta(days=1)


class History:
    """A key's ``Values``, remembering what judging its days one after another asks again and
    again: the profile of the day before (``_profile_days``: the next day's is one step on),
    each day's ratio to its weekday's neighbours (``_noise``) and to a year earlier
    (``_growth``). Judging a key's days with one ``History`` gives exactly what judging each
    day afresh gives, at a fraction of the cost."""

    def __init__(self, values: Values) -> None:
        self.values = values
        self._profiled: tuple[date, list[tuple[date, int]]] | None = None
        self._neighbour_ratios: dict[tuple[date, int], float | None] = {}
        self._growth_ratios: dict[date, float | None] = {}

    def __call__(self, day: date) -> int | None:
        return self.values(day)

    def profile(self, day: date) -> list[tuple[date, int]]:
        """``_profile_days(self, day)``, from the day before's where that was the last asked."""
        if self._profiled is not None and self._profiled[0] == day - ONE_DAY:
            found = self._next_profile(day, self._profiled[1])
        else:
            found = _profile_days(self.values, day)
        self._profiled = (day, found)
        return found

    def _next_profile(self, day: date, before: list[tuple[date, int]]) -> list[tuple[date, int]]:
        """The walk back from ``day`` is the walk back from the day before (``before``'s) with
        one more day in front and one less at the end of the lookback."""
        latest = day - ONE_DAY
        value = self.values(latest)
        if value is None:
            return []
        oldest = day - timedelta(days=PROFILE_LOOKBACK_DAYS)
        found = [] if in_festival_window(latest) else [(latest, value)]
        found += [(d, v) for d, v in before if d >= oldest]
        return found[:PROFILE_DAYS]

    def neighbour_ratios(self, profile: list[tuple[date, int]], day: date) -> list[float]:
        """Each profile day's value over the median of its weekday's days up to two weeks
        either side, those before ``day`` only; none where fewer than two are known or it is
        0 (``_noise``)."""
        ratios, remembered = [], self._neighbour_ratios
        for d, value in profile:
            gap = (day - d).days  # at least 1: the weeks before ``d`` always count
            key = (d, 2 + (gap > 7) + (gap > 14))  # how many of AROUND_WEEKS count, in order
            ratio = remembered.get(key, ...)
            if ratio is ...:
                around = [self.values(d + timedelta(weeks=w)) for w in AROUND_WEEKS[: key[1]]]
                known = [v for v in around if v is not None]
                centre = median(known) if len(known) >= 2 else 0
                ratio = remembered[key] = value / centre if centre > 0 else None
            if ratio is not None:
                ratios.append(ratio)
        return ratios

    def growth_ratios(self, profile: list[tuple[date, int]]) -> list[float]:
        """Each profile day's value over the day 52 weeks earlier; none where that is
        unknown, 0 or a festival day (``_growth``)."""
        ratios, remembered = [], self._growth_ratios
        for d, value in profile:
            ratio = remembered.get(d, ...)
            if ratio is ...:
                earlier = d - YEAR
                before = self.values(earlier)
                ratio = remembered[d] = (
                    value / before if before and not in_festival_window(earlier) else None
                )
            if ratio is not None:
                ratios.append(ratio)
        return ratios


def history(values: Values) -> History:
    return values if isinstance(values, History) else History(values)


@dataclass(frozen=True)
class Expectation:
    expected: float
    baseline: (
        str  # which baseline set it: "trailing-weeks", "year-earlier", "festival-year-earlier"
    )
    level: float  # the key's usual daily volume (mean of its weekday medians)
    noise: float  # robust relative spread of recent days around their weekday's neighbours


@dataclass(frozen=True)
class Judgement:
    """One day of one key: what it brought, what was expected, and whether it is a drop."""

    day: date
    key: tuple[str, ...]
    observed: int
    expectation: Expectation | None
    anomalous: bool

    @property
    def ratio(self) -> float | None:
        if self.expectation is None or self.expectation.expected <= 0:
            return None
        return self.observed / self.expectation.expected

    @property
    def drop_pct(self) -> float | None:
        ratio = self.ratio
        return None if ratio is None else (1 - ratio) * 100


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


def _weekday_medians(profile: list[tuple[date, int]]) -> dict[int, float]:
    by_weekday: dict[int, list[int]] = {}
    for d, value in profile:
        by_weekday.setdefault(d.weekday(), []).append(value)
    return {weekday: float(median(vs)) for weekday, vs in by_weekday.items()}


def _noise(values: History, profile: list[tuple[date, int]], day: date) -> float:
    """The spread of recent days below their expectation, as a fraction of it.

    Each day is set against the median of its weekday's ordinary days up to two weeks either
    side (before ``day``): near neighbours, so that a trend or the season does not pass for
    noise. The spread is the interquartile range over 1.349 (sigma for normal noise): the
    quartiles stay put while up to a quarter of the days were disrupted, and both halves of the
    days count (the lower half alone, of some 28 days, varies too much from week to week).
    """
    ratios = values.neighbour_ratios(profile, day)
    if len(ratios) < MIN_PROFILE_DAYS:
        return float("inf")
    lower, _, upper = quantiles(ratios, n=4)
    return (upper - lower) / 1.349


def _growth(values: History, profile: list[tuple[date, int]]) -> float | None:
    ratios = values.growth_ratios(profile)
    return median(ratios) if len(ratios) >= MIN_GROWTH_PAIRS else None


def _year_earlier(values: Values, day: date, growth: float | None) -> float | None:
    if growth is None:
        return None
    refs: list[int] = []
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
    values = history(values)
    profile = values.profile(day)
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


def day_noise(exp: Expectation) -> float | None:
    """The relative noise of one day with this expectation (widened for a day expected quieter
    than usual, and for a festival day), or None where the day is not judged at all."""
    if exp.expected <= 0 or exp.level <= 0 or exp.expected < MIN_SHARE_OF_LEVEL * exp.level:
        return None
    widening: float = min(MAX_NOISE_WIDENING, max(1.0, (exp.level / exp.expected) ** 0.5))
    if exp.baseline == "festival-year-earlier":
        widening *= FESTIVAL_NOISE_WIDENING
    return exp.noise * widening


def is_drop(observed: int, exp: Expectation, min_drop_pct: float) -> bool:
    """Whether ``observed`` fell far enough below ``exp`` to report: by ``min_drop_pct`` and
    out of the key's noise."""
    noise = day_noise(exp)
    if noise is None:
        return False
    drop = 1 - observed / exp.expected
    return drop * 100 >= min_drop_pct and drop >= NOISE_Z * noise


def _mark_runs(judged: list[Judgement], min_drop_pct: float) -> list[Judgement]:
    """Days too noisy to stand out alone that do together: consecutive days each at least
    ``min_drop_pct`` and ``RUN_DAY_Z`` times its noise below expectation, whose summed drop is
    ``RUN_Z`` times the noise of the sum (a run of k equal days: the noise over sqrt(k)) are
    drops, every one of them. ``judged``: one key's days, consecutive, in order."""
    out = list(judged)

    def candidate(j: Judgement) -> tuple[float, float] | None:
        """(its noise, its expected total) for a day that may belong to a run, else None."""
        exp = j.expectation
        noise = None if exp is None else day_noise(exp)
        if exp is None or noise is None:
            return None
        drop = 1 - j.observed / exp.expected
        if drop * 100 >= min_drop_pct and drop >= RUN_DAY_Z * noise:
            return noise, exp.expected
        return None

    run: list[tuple[int, float, float]] = []  # (index, noise, expected total)
    for i, j in enumerate([*judged, None]):
        found = None if j is None else candidate(j)
        if found is not None:
            run.append((i, *found))
            continue
        if len(run) >= 2 and not all(out[k].anomalous for k, _, _ in run):
            expected = sum(e for _, _, e in run)
            observed = sum(out[k].observed for k, _, _ in run)
            spread = sum((n * e) ** 2 for _, n, e in run) ** 0.5
            if 1 - observed / expected >= RUN_Z * spread / expected:
                for k, _, _ in run:
                    out[k] = replace(out[k], anomalous=True)
        run = []
    return out


def judge(
    values: Values, key: tuple[str, ...], day: date, min_drop_pct: float = DEFAULT_MIN_DROP_PCT
) -> Judgement:
    observed = values(day) or 0
    exp = expectation(values, day)
    return Judgement(
        day, key, observed, exp, exp is not None and is_drop(observed, exp, min_drop_pct)
    )


def series_values(totals: Mapping[date, int], first_day: date | None) -> Values:
    """``Values`` over daily totals: 0 on a day without events, None before ``first_day``."""

    def values(day: date) -> int | None:
        if first_day is None or day < first_day:
            return None
        return totals.get(day, 0)

    return values


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
        values = History(series_values(totals, first_day))
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
