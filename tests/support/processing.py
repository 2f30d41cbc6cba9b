"""The worker's batch processor on a real Redis, without Kafka or Faust: records built here,
events applied as the worker applies them."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from portflow.adapters.redis import RedisStore
from portflow.adapters.redis.store import AsyncRedisStore
from portflow.config import Settings
from portflow.domain.periods import Period
from portflow.services import processing
from portflow.services.processing import SourceRecord
from streams.processor import BatchProcessor, is_transient
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

    def processor(self, store_hook=None, **kwargs) -> processing.BatchProcessor:
        """The worker's processor; with a ``store_hook``, one whose store calls go through it
        (``HookedStore``)."""

        async def sink(letters):
            self.letters.extend(letters)

        if store_hook is None:
            return BatchProcessor(self.settings, self.store, sink, **kwargs)
        return processing.BatchProcessor(
            self.settings,
            HookedStore(self.store, store_hook),
            sink,
            is_transient=is_transient,
            **kwargs,
        )

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


class HookedStore:
    """The harness' Redis store as the processor calls it, each call going through
    ``hook(call, *args)`` (``call``: the real store's coroutine function, which the hook awaits
    or not): faults and pauses where a test wants them."""

    def __init__(self, store: RedisStore, hook) -> None:
        self.store, self.hook = AsyncRedisStore(store), hook

    async def open_epoch(self, tz_name):
        return await self.hook(self.store.open_epoch, tz_name)

    async def marks_of(self, names):
        return await self.hook(self.store.marks_of, names)

    async def apply(self, *args):
        return await self.hook(self.store.apply, *args)
