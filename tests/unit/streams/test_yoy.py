"""The YoY refresh's pacing: costly refreshes are spaced so they take at most MAX_SHARE."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from streams.yoy import MAX_DEFER_S, MAX_SHARE, YoyCollector


class SlowEmptyStore:
    """A store with no events whose read takes ``cost`` seconds of the fake clock."""

    def __init__(self, clock: list[float], cost: float) -> None:
        self.clock, self.cost, self.reads = clock, cost, 0

    def latest_event_time(self):
        self.reads += 1
        self.clock[0] += self.cost
        return


def collector(start: float, cost: float, store_type: type = SlowEmptyStore):
    """A fake clock at ``start``, a store whose reads take ``cost`` of it, and a collector."""
    now = [start]
    store = store_type(now, cost=cost)
    return now, store, YoyCollector(store, ZoneInfo("UTC"), clock=lambda: now[0])


def test_refreshes_are_spaced_by_their_cost():
    now, store, yoy = collector(100.0, cost=2.0)
    yoy.refresh_if_due()
    assert store.reads == 1
    pause = 2.0 * (1 / MAX_SHARE - 1)  # 8 s after a 2 s refresh
    now[0] += pause - 0.1
    yoy.refresh_if_due()
    assert store.reads == 1
    now[0] += 0.2
    yoy.refresh_if_due()
    assert store.reads == 2


def test_cheap_refreshes_are_not_held_back():
    _, store, yoy = collector(0.0, cost=0.0)
    for _ in range(3):
        yoy.refresh_if_due()
    assert store.reads == 3


def test_refreshes_wait_while_the_worker_is_behind_but_not_forever():
    now, store, yoy = collector(0.0, cost=0.0)
    yoy.refresh_if_due(behind=True)  # the first refresh is not held back: no figures yet
    assert store.reads == 1
    now[0] += MAX_DEFER_S - 1
    yoy.refresh_if_due(behind=True)
    assert store.reads == 1
    yoy.refresh_if_due(behind=False)
    assert store.reads == 2
    now[0] += MAX_DEFER_S + 1
    yoy.refresh_if_due(behind=True)  # too old now: refreshed although still behind
    assert store.reads == 3


def test_a_failed_refresh_does_not_count_as_a_refresh_while_behind():
    class FailingOnce(SlowEmptyStore):
        def latest_event_time(self):
            super().latest_event_time()
            if self.reads == 1:
                raise ConnectionError("redis went away")
            return

    _, store, yoy = collector(0.0, cost=0.0, store_type=FailingOnce)
    with pytest.raises(ConnectionError):
        yoy.refresh_if_due(behind=True)
    yoy.refresh_if_due(behind=True)  # no figures yet: tried again although behind
    assert store.reads == 2


class EmptyStoreWithOneEvent:
    """No totals, and one event applied at ``latest``."""

    def __init__(self, latest: datetime) -> None:
        self.latest = int(latest.timestamp())

    def latest_event_time(self):
        return self.latest

    def cells_per_granule(self, event_type, measure, granules):
        return {granule: {} for granule in granules}


def gauges(yoy: YoyCollector, name: str) -> list:
    return [s for family in yoy.collect() for s in family.samples if s.name == name]


def test_an_event_far_ahead_of_the_clock_leaves_the_yoy_gauges_on_the_clocks_days():
    now = datetime(2026, 5, 28, 12, tzinfo=UTC)
    store = EmptyStoreWithOneEvent(datetime(2999, 6, 1, tzinfo=UTC))  # guard off
    for max_ahead_s, reference in (
        (None, now + timedelta(days=1)),
        (86400, now + timedelta(days=1)),
        (3600, now + timedelta(hours=1)),
    ):
        yoy = YoyCollector(
            store, ZoneInfo("UTC"), max_ahead_s=max_ahead_s, wall_clock=now.timestamp
        )
        yoy.active = True
        yoy.refresh()
        [latest] = gauges(yoy, "portflow_latest_event_timestamp_seconds")
        assert latest.value == reference.timestamp()
        periods = {
            s.labels["span"]: (s.labels["current"], s.labels["previous"])
            for s in gauges(yoy, "portflow_yoy_period_info")
        }
        assert periods["month"] == ("2026-05", "2025-05")
        assert periods["ytd"] == ("2026", "2025")
