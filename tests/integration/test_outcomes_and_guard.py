"""The worker's event-time guard and its counts of what it did, against a real redis-server:
events too far from the clock are dead-lettered with codes of their own, and every applied,
duplicate and rejected event is counted once, for the whole state and per replay run."""

import asyncio
import dataclasses
import json
from datetime import UTC, datetime

import pytest

from portflow.adapters import dead_letter_headers as header
from portflow.domain.periods import Period
from portflow.services.processing import SourceRecord
from streams.processor import BatchProcessor
from tests.support import processing
from tests.support.events import encoded
from tests.support.processing import Harness as ProcessorHarness

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC).timestamp()


def shipment(n: int, ts: str = "2026-12-07T08:00:00Z", **fields) -> dict:
    """Shipment ``s<n>``, by default on the fixed clock's day."""
    return processing.shipment(n, ts=ts, **fields)


class Harness(ProcessorHarness):
    """Processors on a fixed clock, with settings of their own; records of a replay run."""

    def processor(self, **settings) -> BatchProcessor:
        async def sink(letters):
            self.letters.extend(letters)

        return BatchProcessor(
            dataclasses.replace(self.settings, **settings), self.store, sink, clock=lambda: NOW
        )

    def records(self, values, first_offset=0, run=None):
        headers = ((header.REPLAY_RUN, run.encode()),) if run else ()
        return [
            SourceRecord(
                self.topic,
                0,
                first_offset + i,
                None,
                v if isinstance(v, bytes) else encoded(v),
                headers,
            )
            for i, v in enumerate(values)
        ]

    def count(self, period="2026") -> int:
        return sum(self.store.cells("shipment", "count", Period.parse(period).granules()).values())


@pytest.fixture
def h(settings):
    return Harness(settings)


def process(processor, records):
    return asyncio.run(processor.process(records))


def test_an_event_far_ahead_of_the_clock_is_dead_lettered_and_counts_nothing(h):
    stats = process(h.processor(), h.records([shipment(1, "2999-06-01T00:00:00Z"), shipment(2)]))
    assert stats.applied_events == 1
    assert h.count() == 1
    assert [(r.code, r.batch_index) for r in stats.rejections] == [("event_time_ahead", None)]
    assert "ahead of the worker's clock" in h.letters[0].rejection.reason
    assert json.loads(h.letters[0].rejection.raw)["event_id"] == "s1"
    assert int(h.store.client.hget(h.store.meta_key, "latest_event_ts")) < NOW


def test_the_guard_takes_only_the_offending_element_out_of_a_batch(h):
    batch = json.dumps(
        [
            shipment(1),
            shipment(2, "2026-12-08T13:00:00Z"),
            shipment(3),
            shipment(4, "2026-12-08T11:00:00Z"),
        ]
    ).encode()
    stats = process(h.processor(), h.records([batch]))
    assert stats.applied_events == 3
    assert h.count() == 3
    assert [(r.code, r.batch_index) for r in stats.rejections] == [("event_time_ahead", 1)]
    assert json.loads(h.letters[0].rejection.raw)["event_id"] == "s2"


def test_the_guard_can_be_turned_off(h):
    stats = process(
        h.processor(max_event_ahead_s=None), h.records([shipment(1, "2999-06-01T00:00:00Z")])
    )
    assert stats.applied_events == 1
    assert not stats.rejections


def test_events_older_than_the_age_limit_are_dead_lettered_when_one_is_set(h):
    old = [shipment(1, "1900-01-01T00:00:00Z"), shipment(2, "2016-01-01T00:00:00Z")]
    stats = process(h.processor(), h.records(old))
    assert stats.applied_events == 2  # no age limit by default
    stats = process(
        h.processor(max_event_age_s=10 * 365 * 86400),
        h.records([shipment(3, "1900-01-01T00:00:00Z"), shipment(4)], first_offset=2),
    )
    assert stats.applied_events == 1
    assert [r.code for r in stats.rejections] == ["event_time_behind"]


def test_outcomes_count_applied_duplicate_and_rejected_events_once(h):
    values = [
        shipment(1),
        shipment(1),
        b"not json",
        shipment(2, "2999-01-01T00:00:00Z"),
        shipment(3, partner="XX"),
    ]
    records = h.records(values)
    process(h.processor(), records)
    process(h.processor(), records)  # re-delivered: nothing counted again
    outcomes = h.store.outcomes()
    assert (outcomes.applied, outcomes.duplicates) == (1, 1)
    assert outcomes.rejected == {"event_time_ahead": 1, "not_json": 1, "unknown_partner": 1}


def test_a_replay_runs_outcomes_are_counted_apart_with_its_first_rejections(h):
    process(h.processor(), h.records([shipment(1)]))  # not of the run
    batch = json.dumps([shipment(1), shipment(2), shipment(3, partner="XX")]).encode()
    run_records = h.records([batch, shipment(4), b"[1,", shipment(4)], first_offset=1, run="r1")
    process(h.processor(), run_records)
    run = h.store.run_outcomes("r1")
    assert (run.applied, run.duplicates) == (2, 2)
    assert run.rejected == {"not_json": 1, "unknown_partner": 1}
    assert [(r["offset"], r["batch_index"], r["code"]) for r in run.rejections] == [
        (1, 2, "unknown_partner"),
        (3, None, "not_json"),
    ]
    whole = h.store.outcomes()
    assert (whole.applied, whole.duplicates, whole.rejected_total) == (3, 2, 2)
    assert 0 < h.store.client.ttl(h.store.run_key("r1")) <= 7 * 86400


def test_a_run_keeps_only_its_first_rejections(h):
    process(h.processor(), h.records([b"x"] * 30, run="r2"))
    run = h.store.run_outcomes("r2")
    assert run.rejected == {"not_json": 30}
    assert len(run.rejections) == 20
    assert [r["offset"] for r in run.rejections] == list(range(20))


def test_a_header_that_is_no_plausible_run_id_is_ignored(h):
    records = [
        SourceRecord(
            h.topic, 0, 0, None, json.dumps(shipment(1)).encode(), ((header.REPLAY_RUN, b"x" * 65),)
        ),
        SourceRecord(
            h.topic, 0, 1, None, json.dumps(shipment(2)).encode(), ((header.REPLAY_RUN, b"a:b"),)
        ),
    ]
    process(h.processor(), records)
    assert not list(h.store.client.scan_iter(match=f"{h.store.root}:run:*"))
    assert h.store.outcomes().applied == 2


def test_the_newest_event_time_is_kept_for_events_before_1970_and_only_for_counted_ones(h):
    def meta():
        return h.store.client.hget(h.store.meta_key, "latest_event_ts")

    process(h.processor(), h.records([b"not json", shipment(1, "2999-01-01T00:00:00Z")]))
    assert meta() is None  # nothing counted: no newest event time
    process(h.processor(), h.records([shipment(2, "1900-01-01T00:00:00Z")], first_offset=2))
    assert int(meta()) == -2208988800
