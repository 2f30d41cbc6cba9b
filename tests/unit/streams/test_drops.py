"""The live drop gauges: each day judged once complete, a drop held long enough for `for:`."""

from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from streams.drops import (
    CATCH_UP_DAYS,
    HOLD_S,
    MAX_DAYS_PER_REFRESH,
    DropCollector,
)
from streams.pacing import MAX_DEFER_S
from tests.support.drops import MAX_GRANULES_PER_REFRESH, START, traffic

TZ = ZoneInfo("Asia/Shanghai")


class DaysStore:
    """The three reads the collector makes, over one port's road shipments and its trains;
    counts the day granules read."""

    def __init__(
        self, totals: dict[date, int], trains: dict[date, int] | None = None, first: date = START
    ) -> None:
        self.totals, self.trains, self.first = totals, trains or totals, first
        self.latest: date | None = None
        self.granules_read = 0

    def latest_event_time(self):
        if self.latest is None:
            return None
        return int(datetime.combine(self.latest, datetime.min.time(), TZ).timestamp()) + 3600

    def first_day(self, event_type, measure):
        return self.first.isoformat()

    def cells_per_granule(self, event_type, measure, granules):
        self.granules_read += len(granules)
        out = {}
        for granule in granules:
            day = date.fromisoformat(granule)
            series = self.totals if event_type == "shipment" else self.trains
            amount = series.get(day, 0) if self.latest and day <= self.latest else 0
            cell = (
                "khorgos|road|import|KZ|general|"
                if event_type == "shipment"
                else "khorgos|china-europe|outbound"
            )
            out[granule] = {cell: amount} if amount else {}
        return out


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def samples(collector: DropCollector, name: str) -> dict[tuple, float]:
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in collector.collect()
        for s in family.samples
        if s.name == name
    }


def judged_day(collector: DropCollector) -> date | None:
    stamps = samples(collector, "portflow_event_time_judged_day_timestamp_seconds")
    return datetime.fromtimestamp(stamps[()], TZ).date() if stamps else None


def noon(day: date) -> float:
    return datetime.combine(day, time(12), TZ).timestamp()


def test_a_closed_day_is_exported_once_complete_and_held_after_later_days_pass():
    totals, trains = traffic(1), traffic(1, base=0.02)  # about 20 trains a day
    closed = date(2024, 5, 14)
    totals[closed] = 0
    store, clock = DaysStore(totals, trains), Clock()
    collector = DropCollector(store, TZ, clock=clock)
    collector.active = True
    store.latest = closed
    collector.refresh()  # the closed day is not complete yet
    assert samples(collector, "portflow_event_time_drop_ratio") == {}
    store.latest = closed + timedelta(days=1)
    collector.refresh()
    drops = samples(collector, "portflow_event_time_drop_ratio")
    assert {dict(k)["day"] for k in drops} == {"2024-05-14"}
    assert {dict(k)["by"] for k in drops} == {"port", "port,mode"}  # trains did not stop
    assert all(v == 1.0 for v in drops.values())
    ratio = samples(collector, "portflow_event_time_ratio")
    assert ratio
    assert all(v == 0 for k, v in ratio.items() if dict(k)["measure"] == "value_cny")

    store.latest = closed + timedelta(days=40)  # a replay runs on: more than one refresh's days
    clock.now = HOLD_S - 1
    collector.refresh()
    collector.refresh()
    assert {dict(k)["day"] for k in samples(collector, "portflow_event_time_drop_ratio")} == {
        "2024-05-14"
    }
    clock.now = HOLD_S + 1
    collector.refresh()
    assert samples(collector, "portflow_event_time_drop_ratio") == {}


def test_every_day_is_judged_even_when_the_history_runs_far_ahead_of_the_refreshes():
    totals = traffic(2)
    closed = date(2024, 3, 20)
    totals[closed] = 0
    store, clock = DaysStore(totals), Clock()
    collector = DropCollector(store, TZ, clock=clock)
    collector.active = True
    store.latest = date(2024, 1, 1)
    collector.refresh()
    store.latest = date(2024, 7, 1)  # six months in one step
    found = set()
    for _ in range(5):
        collector.refresh()
        found |= {dict(k)["day"] for k in samples(collector, "portflow_event_time_drop_ratio")}
    assert found == {"2024-03-20"}


def test_a_worker_that_does_not_own_the_export_serves_nothing():
    store = DaysStore(traffic(3))
    store.latest = date(2024, 5, 1)
    collector = DropCollector(store, TZ)
    collector.refresh()
    assert list(collector.collect()) == []


def test_a_run_found_when_its_later_days_complete_exports_its_first_days_once():
    totals = traffic(4, noise=0.2)  # noisy: one closed day alone does not stand out
    closed = [date(2024, 6, 10) + timedelta(days=i) for i in range(4)]
    for day in closed:
        totals[day] = 0
    store, clock = DaysStore(totals), Clock()
    collector = DropCollector(store, TZ, clock=clock)
    collector.active = True
    store.latest = closed[0]
    collector.refresh()
    exported = []
    later = [closed[-1] + timedelta(days=n) for n in range(1, 5)]
    for i, day in enumerate(closed[1:] + later):
        store.latest = day + timedelta(days=1)
        clock.now = i * HOLD_S  # each refresh after the last one's hold ran out
        collector.refresh()
        exported.append(
            {
                dict(k)["day"]
                for k in samples(collector, "portflow_event_time_drop_ratio")
                if dict(k)["by"] == "port"
            }
        )
    found = set().union(*exported)
    assert found == {d.isoformat() for d in closed}
    first_seen = [next(i for i, days in enumerate(exported) if d in days) for d in sorted(found)]
    # exported when found, gone for good
    for day, seen_at in zip(sorted(found), first_seen, strict=True):
        assert not any(day in exported[i] for i in range(seen_at + 3, len(exported))), day


def test_judging_waits_while_the_worker_is_behind_but_not_forever():
    clock = Clock()
    store = DaysStore(traffic(1))
    store.latest = date(2024, 5, 14)
    collector = DropCollector(store, TZ, clock=clock)
    collector.active = True
    collector.refresh_if_due(behind=True)  # a backlog from the start: applying comes first
    assert samples(collector, "portflow_event_time_judged_day_timestamp_seconds") == {}
    clock.now += MAX_DEFER_S + 1
    collector.refresh_if_due(behind=True)  # never later than this, though
    assert samples(collector, "portflow_event_time_judged_day_timestamp_seconds") != {}


def test_a_worker_keeping_up_judges_at_once():
    store = DaysStore(traffic(1))
    store.latest = date(2024, 5, 14)
    collector = DropCollector(store, TZ, clock=Clock())
    collector.active = True
    collector.refresh_if_due(behind=False)
    assert samples(collector, "portflow_event_time_judged_day_timestamp_seconds") != {}


def test_an_event_far_ahead_of_the_clock_never_carries_the_judge_past_the_clocks_day():
    today = date(2024, 6, 1)
    for max_ahead_s, last_judged in (
        (None, today),
        (86400, today),
        (3600, today - timedelta(days=1)),
    ):
        store = DaysStore(traffic(1))
        store.latest = date(2999, 6, 1)  # applied while the guard was off
        collector = DropCollector(
            store, TZ, clock=Clock(), max_ahead_s=max_ahead_s, wall_clock=lambda: noon(today)
        )
        collector.active = True
        for _ in range(5):
            store.granules_read = 0
            collector.refresh()
            assert judged_day(collector) == last_judged, max_ahead_s
            assert store.granules_read <= MAX_GRANULES_PER_REFRESH


def test_a_far_past_event_applied_first_does_not_make_the_judge_walk_on_from_it():
    totals = traffic(2)
    totals[date(2024, 3, 20)] = 0
    store = DaysStore(totals, first=date(1900, 1, 1))
    collector = DropCollector(store, TZ, clock=Clock())
    collector.active = True
    store.latest = date(1900, 1, 1)  # the first event a fresh state applies
    collector.refresh()
    assert judged_day(collector) == date(1899, 12, 31)  # before any history: nothing found
    store.latest = date(2024, 7, 1)
    refreshes, found = 0, set()
    while judged_day(collector) != date(2024, 6, 30) and refreshes < 100:
        store.granules_read = 0
        collector.refresh()
        refreshes += 1
        assert store.granules_read <= MAX_GRANULES_PER_REFRESH
        found |= {dict(k)["day"] for k in samples(collector, "portflow_event_time_drop_ratio")}
    assert refreshes == math.ceil(CATCH_UP_DAYS / MAX_DAYS_PER_REFRESH)
    assert found == {"2024-03-20"}  # the days of the last year are all judged
