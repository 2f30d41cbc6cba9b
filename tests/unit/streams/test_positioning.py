"""Where a partition is read from, given its mark in Redis and the earliest offset Kafka holds."""

import asyncio
import signal
from types import SimpleNamespace

import pytest
from faust.types import TP

from streams import positioning
from streams.positioning import Positioner, StartPoint, start_point


def test_reads_on_after_the_mark():
    assert start_point(mark=41, earliest=0) == StartPoint(42)
    assert start_point(mark=41, earliest=42) == StartPoint(42)


def test_reads_from_the_start_when_nothing_was_applied():
    assert start_point(mark=-1, earliest=0) == StartPoint(0)


def test_offsets_deleted_before_being_applied_are_reported_lost():
    assert start_point(mark=41, earliest=50) == StartPoint(50, (42, 49))
    assert start_point(mark=-1, earliest=7) == StartPoint(7, (0, 6))


def test_a_failed_positioning_restarts_the_worker(monkeypatch):
    """Faust only logs a failed seek and reads nothing from those partitions: restart instead."""
    killed = []
    monkeypatch.setattr(positioning.os, "kill", lambda pid, sig: killed.append(sig))

    class Consumer:
        async def seek_to_committed(self):
            return {}

        def assignment(self):
            return {TP("t.shipments", 0)}

        async def earliest_offsets(self, *tps):
            raise TimeoutError("Failed to get offsets by times in 90000 ms")

    class Processor:
        async def run_with_retries(self, fn, *args):
            return fn(*args)

    class Store:
        def marks_of(self, names):
            return dict.fromkeys(names, -1)

    app = SimpleNamespace(consumer=Consumer())
    settings = SimpleNamespace(event_topics={"t.shipments": "shipment"})
    positioner = Positioner(app, settings, Store(), Processor(), topic_ids=dict)
    positioner.install()
    with pytest.raises(TimeoutError):
        asyncio.run(app.consumer.seek_to_committed())
    assert killed == [signal.SIGTERM]
    assert "could not position the partitions" in positioner.restart_reason
