"""Events at either end of the times the contract allows (1900 and 1971, and 2999 with the
event-time guard off), applied by the worker's processor to a real redis-server beside a year of
history:
the YoY and drop gauges stay on the clock's days, each refresh of the drop judge reads a bounded
number of days, the lag is never negative, and `anomalies` judges no day past the clock's."""

from __future__ import annotations

import asyncio
import math
import time
from datetime import UTC, date, datetime, timedelta

import pytest

from portflow.adapters.redis import RedisStore
from portflow.config import Settings
from portflow.services.anomalies import AnomaliesRequest, anomalies_table, read_anomalies
from portflow.services.processing import SourceRecord
from streams.drops import CATCH_UP_DAYS, MAX_DAYS_PER_REFRESH, DropCollector
from streams.metrics import WorkerMetrics
from streams.processor import BatchProcessor
from streams.yoy import YoyCollector
from tests.support import events
from tests.support.drops import MAX_GRANULES_PER_REFRESH
from tests.support.events import encoded
from tests.support.prefixes import unique_prefix

HISTORY_DAYS = 400


class CountingStore(RedisStore):
    """Counts the granules read for the judge."""

    granules_read = 0

    def cells_per_granule(self, event_type, measure, granules):
        self.granules_read += len(granules)
        return super().cells_per_granule(event_type, measure, granules)


def shipment(n: int, ts: datetime) -> bytes:
    return encoded(
        events.shipment(
            f"s{n}", ts.strftime("%Y-%m-%dT%H:%M:%SZ"), value_cny="1000.00", weight_tonnes="1.5"
        )
    )


@pytest.fixture
def guard_off(redis_url):
    settings = Settings(
        redis_url=redis_url,
        topic_prefix=unique_prefix(),
        max_event_ahead_s=None,
        max_event_age_s=None,
    )
    store = CountingStore.from_url(redis_url, settings.topic_prefix)
    topic = settings.topic("shipment")
    offsets = iter(range(10**6))

    def apply(lines: list[bytes]):
        """Apply events (one record), return the batch's stats."""

        async def letters(dead) -> None:
            raise AssertionError(dead[0].reason)

        record = SourceRecord(topic, 0, next(offsets), None, b"[" + b",".join(lines) + b"]")
        return asyncio.run(BatchProcessor(settings, store, letters).process([record]))

    return settings, store, apply


def test_a_far_past_and_a_far_future_event_leave_the_live_view_on_the_clocks_days(guard_off):
    settings, store, apply = guard_off
    now = time.time()
    reference = datetime.fromtimestamp(now + 86400, settings.tz)  # the clock + a day (guard off)
    today = reference.date() - timedelta(days=1)  # the last complete day then
    far_past = apply(
        [
            shipment(0, datetime(1900, 1, 1, tzinfo=UTC)),
            shipment(1, datetime(1971, 1, 1, tzinfo=UTC)),
        ]
    )
    drops = DropCollector(store, settings.tz, max_ahead_s=None, wall_clock=lambda: now)
    drops.active = True
    drops.refresh()  # a fresh state whose first events are from 1900 and 1971
    assert _judged_day(drops, settings) == date(1970, 12, 31)

    noon = datetime.combine(today, datetime.min.time(), settings.tz) + timedelta(hours=12)
    history = [shipment(2 + n, noon - timedelta(days=n)) for n in range(HISTORY_DAYS)]
    for i in range(0, len(history), 500):
        apply(history[i : i + 500])
    far_future = apply([shipment(10**5, datetime(2999, 6, 1, tzinfo=UTC))])
    assert far_future.applied_events == 1

    refreshes = 0
    while _judged_day(drops, settings) != today and refreshes < 50:
        store.granules_read = 0
        drops.refresh()
        refreshes += 1
        assert store.granules_read <= MAX_GRANULES_PER_REFRESH
    assert refreshes == math.ceil(CATCH_UP_DAYS / MAX_DAYS_PER_REFRESH)
    drops.refresh()
    assert _judged_day(drops, settings) == today  # and no further, however often it runs

    yoy = YoyCollector(store, settings.tz, max_ahead_s=None, wall_clock=lambda: now)
    yoy.active = True
    yoy.refresh()
    samples = [s for family in yoy.collect() for s in family.samples]
    periods = {
        s.labels["span"]: s.labels["current"]
        for s in samples
        if s.name == "portflow_yoy_period_info"
    }
    assert periods["month"] == reference.strftime("%Y-%m")
    assert [s.value for s in samples if s.name == "portflow_latest_event_timestamp_seconds"] == [
        int(now) + 86400
    ]

    metrics = WorkerMetrics()
    for stats in (far_past, far_future):
        metrics.observe("shipment", stats, 0.01)
        assert (
            metrics.registry.get_sample_value(
                "portflow_event_time_lag_seconds", {"type": "shipment"}
            )
            >= 0
        )

    result = read_anomalies(
        store,
        settings.tz,
        AnomaliesRequest.parse(str(today.year), "value_cny", ["port"]),
        max_ahead_s=None,
    )
    assert result["anomalies"] == []  # the same every day: no drop, and no day past the clock's
    assert result["data"]["judged_through"] == today.isoformat()
    assert result["data"]["newest_event"].startswith("2999-06-01")  # what was applied, though
    said = anomalies_table(result).splitlines()[1]
    assert (f"days through {today} judged" in said) == (today != date(today.year, 12, 31)), said


def _judged_day(drops: DropCollector, settings: Settings) -> date | None:
    stamps = [
        s.value
        for family in drops.collect()
        for s in family.samples
        if s.name == "portflow_event_time_judged_day_timestamp_seconds"
    ]
    return datetime.fromtimestamp(stamps[0], settings.tz).date() if stamps else None
