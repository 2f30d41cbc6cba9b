"""Event-time throughput-drop gauges, for the ``PortflowThroughputDropEventTime`` alert.

Each day is judged once it is complete in event time (the reference time is past it: the
newest event applied, at most the worker's clock plus ``PORTFLOW_MAX_EVENT_AHEAD``, see
``domain.live_time``), so a replay reaches every day and raises its alert at the moment the
replayed history does, as live traffic would. What is judged comes from Redis, which every
worker shares: one worker exports these, the one that exports the YoY gauges (``streams.yoy``).

A drop stays exported for ``HOLD_S`` of wall time after it was found, or while its day is
among the latest two complete days (live: a day or two), whichever is longer: a replay may
pass a day in a fraction of a second, and the alert's ``for:`` must still see it.

Judging costs more the more keys and days there are: while the worker is behind (a backlog)
``refresh_if_due`` waits, for at most ``MAX_DEFER_S``: applying the records comes first. Days
are judged later then: each refresh goes on from the last day judged, at most
``MAX_DAYS_PER_REFRESH`` new days at a time, and never more than ``CATCH_UP_DAYS`` behind the
latest complete day (older ones are skipped): however far apart the oldest and the newest
events lie, a refresh reads and judges a bounded number of days, and a jump of the reference
day takes a bounded number of refreshes to catch up. A worker keeping up judges at every tick,
so that a replay's alerts come as its history passes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from datetime import time as day_start
from zoneinfo import ZoneInfo

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from portflow.adapters.redis import RedisStore
from portflow.config import Settings
from portflow.domain.detection import DEFAULT_MIN_DROP_PCT, Judgement
from portflow.domain.measures import check_request
from portflow.services.anomalies import DailyTotals, last_complete_day
from streams.pacing import MAX_DEFER_S, RefreshPacer

View = tuple[str, tuple[str, ...]]  # (measure, by)
Key = tuple[str, ...]  # a row's values of ``by``
Found = tuple[View, Key, date]  # a drop: its view, its row, its day

# What the live gauges judge.
LIVE_VIEWS: tuple[View, ...] = (
    ("value_cny", ("port",)),
    ("value_cny", ("port", "mode")),
    ("trains", ("port", "service")),
)
HOLD_S = 900.0
MAX_DAYS_PER_REFRESH = 62  # bounds a refresh's cost while a replay runs far ahead
CATCH_UP_DAYS = 366  # days further behind the latest complete day are not judged any more
REREAD_DAYS = 7  # late events land in the latest days: those are read again each refresh
RERUN_DAYS = 7  # days before the newly complete ones judged again (a run may reach into them)
LABELS = ["measure", "by", "port", "mode", "service"]


class DropCollector(Collector):
    """Serves the latest judgements; ``refresh`` judges the days completed since the last."""

    NAMES = (
        "portflow_event_time_judged_day_timestamp_seconds",
        "portflow_event_time_observed",
        "portflow_event_time_expected",
        "portflow_event_time_ratio",
        "portflow_event_time_drop_ratio",
    )

    def __init__(
        self,
        store: RedisStore,
        tz: ZoneInfo,
        clock: Callable[[], float] = time.monotonic,
        min_drop_pct: float = DEFAULT_MIN_DROP_PCT,
        max_ahead_s: int | None = Settings.max_event_ahead_s,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.tz, self.min_drop_pct = store, tz, min_drop_pct
        self.max_ahead_s, self._wall_clock = max_ahead_s, wall_clock
        self.active = False  # this process owns the export (see module docstring)
        self._clock = clock
        self._pacer = RefreshPacer(None, MAX_DEFER_S, clock, hold_first=True)  # not spaced
        self._totals = {
            view: DailyTotals(
                store, check_request(view[0], list(view[1])), list(view[1]), REREAD_DAYS
            )
            for view in LIVE_VIEWS
        }
        self._judged_through: date | None = None
        self._latest: dict[View, list[Judgement]] = {}
        self._held: dict[Found, tuple[Judgement, float]] = {}  # -> (judgement, found at)
        self._announced: set[Found] = set()  # the drops exported so far
        self._families: list[Metric] = []

    def collect(self) -> Iterable[Metric]:
        return list(self._families) if self.active else []

    def refresh_if_due(self, behind: bool = False) -> None:
        """Refresh unless the worker is ``behind`` and the last refresh (or the start) is less
        than ``MAX_DEFER_S`` old."""
        self._pacer.run(self.refresh, behind)

    def refresh(self) -> None:
        complete = last_complete_day(self.store, self.tz, self._wall_clock(), self.max_ahead_s)
        if complete is None:
            return
        if self._judged_through is None or self._judged_through > complete:
            self._judged_through = complete - timedelta(days=1)
        catch_up_from = complete - timedelta(days=CATCH_UP_DAYS - 1)
        first = min(max(self._judged_through + timedelta(days=1), catch_up_from), complete)
        last = min(complete, first + timedelta(days=MAX_DAYS_PER_REFRESH - 1))
        days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        # The days before the new ones are judged again: a run of drops (domain.detection)
        # that the new days extend makes drops of days already passed.
        days = [first - timedelta(days=n) for n in range(RERUN_DAYS, 0, -1)] + days
        now = self._clock()
        for view, totals in self._totals.items():
            judged = totals.judge(days, self.min_drop_pct, drops_only=False)
            self._latest[view] = [j for j in judged if j.day == last]
            for j in judged:
                if j.anomalous and (view, j.key, j.day) not in self._announced:
                    self._announced.add((view, j.key, j.day))
                    self._held[(view, j.key, j.day)] = (j, now)
        self._judged_through = last
        self._held = {
            k: (j, at)
            for k, (j, at) in self._held.items()
            if now - at < HOLD_S or j.day >= last - timedelta(days=1)
        }
        # A day found once is exported once: judged again later, it is not announced again.
        self._announced = {k for k in self._announced if k[2] >= days[0]}
        self._families = self._compute(last)

    def _compute(self, day: date) -> list[Metric]:
        stamp = datetime.combine(day, day_start(), self.tz).timestamp()
        judged_name, observed_name, expected_name, ratio_name, drop_name = self.NAMES
        judged = GaugeMetricFamily(
            judged_name,
            "Start of the latest complete day (event time) the drop gauges judged.",
            value=stamp,
        )
        observed = GaugeMetricFamily(
            observed_name, "The latest complete day's total (yuan; trains).", labels=LABELS
        )
        expected = GaugeMetricFamily(
            expected_name,
            "What the latest complete day was expected to bring (absent: too early to tell).",
            labels=LABELS,
        )
        ratio = GaugeMetricFamily(
            ratio_name, "Observed over expected, the latest complete day.", labels=LABELS
        )
        drop = GaugeMetricFamily(
            drop_name,
            "A day judged a throughput drop: 1 - observed/expected (present while held).",
            labels=[*LABELS, "day"],
        )
        for view, judgements in self._latest.items():
            spec = self._totals[view].spec
            for j in judgements:
                labels = _labels(view, j.key)
                observed.add_metric(labels, j.observed / 10**spec.places)
                if j.expectation is not None:
                    expected.add_metric(labels, j.expectation.expected / 10**spec.places)
                if j.ratio is not None:
                    ratio.add_metric(labels, j.ratio)
        for (view, key, day), (j, _) in sorted(self._held.items()):
            if j.ratio is not None:  # always, for a drop: it has an expectation above 0
                drop.add_metric([*_labels(view, key), day.isoformat()], 1 - j.ratio)
        return [judged, observed, expected, ratio, drop]


def _labels(view: View, key: Key) -> list[str]:
    measure, by = view
    values = dict(zip(by, key, strict=True))
    return [measure, ",".join(by), *(values.get(d, "") for d in ("port", "mode", "service"))]
