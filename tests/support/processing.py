"""The worker's batch processor on a real Redis, without Kafka or Faust: records built here,
events applied as the worker applies them."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from portflow.adapters.redis import RedisStore
from portflow.config import Settings
from portflow.domain.periods import Period
from streams.processor import BatchProcessor, SourceRecord
from tests.support import events
from tests.support.events import encoded


def shipment(n: int, value: str = "10.00", ts: str = "2024-06-30T23:30:00Z", **fields) -> dict:
    """Shipment ``s<n>`` of ``value`` yuan and 1.5 t (at 23:30Z, the next day in Shanghai)."""
    return events.shipment(f"s{n}", ts, value_cny=value, weight_tonnes="1.5", **fields)


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


def apply(settings: Settings, events_of_one_type: list[dict], first_offset: int = 0) -> RedisStore:
    """Apply events of one type through the worker's processor, one record each on partition 0
    of their topic from ``first_offset`` (after those applied before); every one must count."""
    store = RedisStore.from_url(settings.redis_url, settings.topic_prefix)

    async def no_letters(letters):
        raise AssertionError(letters)

    topic = settings.topic(events_of_one_type[0]["type"])
    records = [
        SourceRecord(topic, 0, first_offset + i, None, encoded(event))
        for i, event in enumerate(events_of_one_type)
    ]
    stats = run(BatchProcessor(settings, store, no_letters).process(records))
    assert stats.applied_events == len(events_of_one_type)
    return store


class Harness:
    """Processors over the settings' state that keep their dead letters; records of the
    shipments topic; the totals and marks they leave."""

    def __init__(self, settings):
        self.settings = settings
        self.store = RedisStore.from_url(settings.redis_url, settings.topic_prefix)
        self.letters = []
        self.topic = settings.topic("shipment")

    def processor(self, **kwargs) -> BatchProcessor:
        async def sink(letters):
            self.letters.extend(letters)

        return BatchProcessor(self.settings, self.store, sink, **kwargs)

    def records(self, values, partition=0, first_offset=0):
        return [
            SourceRecord(
                self.topic,
                partition,
                first_offset + i,
                None,
                v if isinstance(v, bytes) else encoded(v),
            )
            for i, v in enumerate(values)
        ]

    def total(self, measure="value", period="2024"):
        granules = Period.parse(period).granules()
        return sum(self.store.cells("shipment", measure, granules).values())

    def mark(self, partition=0):
        return self.store.marks_of([f"{self.topic}:{partition}"])[f"{self.topic}:{partition}"]
