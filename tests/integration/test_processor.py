"""The batch processor against a real redis-server: exactly-once under re-delivery, replays,
duplicates, zombie workers and Redis hiccups. No broker needed: records are built here."""

import asyncio
import dataclasses
import json
import time
from datetime import UTC, datetime

import pytest
import redis

from portflow.adapters.redis import (
    DROPPING,
    DedupeWindow,
    StateConflict,
    StateLost,
)
from portflow.services import processing
from portflow.services.processing import Handoff, SourceRecord
from portflow.services.processing import steps as steps_module
from streams.processor import BatchProcessor
from tests.support.processing import run, shipment


def test_applies_events_and_moves_the_mark(h):
    stats = run(h.processor().process(h.records([shipment(i) for i in range(10)])))
    assert stats.applied_events == 10
    assert stats.duplicate_events == 0
    assert h.total() == 10 * 1000
    assert h.total("weight") == 15000
    assert h.total("count") == 10
    assert h.total(period="2024-07-01") == 10000  # 23:30Z is the next day in Shanghai
    assert h.mark() == 9


def test_redelivered_records_are_skipped_by_a_restarted_worker(h):
    records = h.records([shipment(i) for i in range(10)])
    run(h.processor().process(records))
    stats = run(h.processor().process(records))  # a new worker reading from an old commit
    assert stats.skipped_records == 10
    assert h.total() == 10000


def test_replayed_events_at_new_offsets_count_once(h):
    run(h.processor().process(h.records([shipment(i) for i in range(10)])))
    stats = run(h.processor().process(h.records([shipment(i) for i in range(12)], first_offset=10)))
    assert stats.duplicate_events == 10
    assert stats.applied_events == 2
    assert h.total() == 12000
    assert h.mark() == 21


def test_duplicates_inside_one_batch_and_one_record_count_once(h):
    batch = json.dumps([shipment(1), shipment(1), shipment(2)]).encode()
    stats = run(h.processor().process(h.records([batch, shipment(2), shipment(3)])))
    assert stats.applied_events == 3
    assert stats.duplicate_events == 2
    assert h.total("count") == 3


def test_dedupe_is_per_event_type(h):
    proc = h.processor()
    run(proc.process(h.records([shipment(1)])))
    train = {
        "type": "train",
        "event_id": "s1",
        "ts": "2024-01-01T00:00:00Z",
        "port": "khorgos",
        "service": "china-asia",
        "direction": "inbound",
        "teu": 3,
    }
    stats = run(
        proc.process(
            [SourceRecord(h.settings.topic("train"), 0, 0, None, json.dumps(train).encode())]
        )
    )
    assert stats.applied_events == 1


def test_dedupe_buckets_expire_after_the_window(h, redis_client):
    run(h.processor().process(h.records([shipment(1)])))
    window = DedupeWindow(h.settings.dedupe_ttl_seconds)
    buckets = list(redis_client.scan_iter(match=h.store.dedupe_prefix("shipment") + "*"))
    assert len(buckets) == 1
    assert redis_client.smembers(buckets[0]) == {b"s1"}
    assert (
        window.ttl_s + window.width
        < redis_client.ttl(buckets[0])
        <= window.ttl_s + 2 * window.width
    )


def test_an_id_is_remembered_for_the_window_and_not_much_longer(h):
    settings = dataclasses.replace(h.settings, dedupe_ttl_seconds=2)  # buckets of 1 s
    processor = BatchProcessor(settings, h.store, h.processor().dead_letters)
    assert run(processor.process(h.records([shipment(1)]))).applied_events == 1
    time.sleep(1.0)
    again = run(processor.process(h.records([shipment(1)], first_offset=1)))
    assert again.applied_events == 0
    assert again.duplicate_events == 1
    time.sleep(3.2)  # the window (2 s) and one bucket (1 s) later
    later = run(processor.process(h.records([shipment(1)], first_offset=2)))
    assert later.applied_events == 1
    assert h.total("count") == 2


def test_rejections_go_to_the_dead_letter_sink_and_change_nothing(h):
    batch = json.dumps([shipment(1), shipment(2, value="-5")]).encode()
    stats = run(h.processor().process(h.records([b"garbage", batch, shipment(3, value="1.234")])))
    assert stats.applied_events == 1
    assert len(stats.rejections) == 3
    assert h.total() == 1000
    assert h.mark() == 2
    headers = [dict(letter.headers()) for letter in h.letters]
    assert next(letter.rejection.raw for letter in h.letters) == b"garbage"
    assert headers[1]["portflow-batch-index"] == b"1"
    assert headers[1]["portflow-source-offset"] == b"1"
    assert headers[1]["portflow-source-topic"] == h.topic.encode()
    assert b"negative" in headers[1]["portflow-reason"]
    assert b"fraction digits" in headers[2]["portflow-reason"]


def test_a_zombie_worker_cannot_apply_twice(h):
    records = h.records([shipment(i) for i in range(15)])
    zombie = h.processor()
    run(zombie.process(records[:1]))  # caches the mark at 0
    run(h.processor().process(records[:10]))  # the partition's new owner applies 1..9
    stats = run(zombie.process(records[1:15]))  # stale cache: conflict, re-read, apply 10..14
    assert stats.applied_events == 5
    assert h.total("count") == 15
    assert h.mark() == 14


def test_large_takes_are_split_into_atomic_chunks(h, monkeypatch):
    monkeypatch.setattr(steps_module, "MAX_EVENTS_PER_APPLY", 7)
    batches = [json.dumps([shipment(10 * r + i) for i in range(5)]).encode() for r in range(6)]
    stats = run(h.processor().process(h.records(batches, partition=3)))
    assert stats.applied_events == 30
    assert h.total("count") == 30
    assert h.mark(3) == 5


def test_many_partitions_in_one_take(h):
    records = [
        r
        for p in range(4)
        for r in h.records([shipment(100 * p + i) for i in range(3)], partition=p)
    ]
    run(h.processor().process(records))
    assert [h.mark(p) for p in range(4)] == [2, 2, 2, 2]
    assert h.total("count") == 12


def test_redis_outages_are_retried(h):
    failures = iter([True, True])

    async def flaky(fn, *args):
        if next(failures, False):
            raise redis.ConnectionError("connection refused")
        return await fn(*args)

    stats = run(h.processor(store_hook=flaky, retry_delay_s=0.01).process(h.records([shipment(1)])))
    assert stats.applied_events == 1
    assert h.total("count") == 1


def test_time_zone_is_claimed_once(h):
    h.store.claim_time_zone("Asia/Shanghai")
    h.store.claim_time_zone("Asia/Shanghai")
    with pytest.raises(ValueError, match="Asia/Shanghai"):
        h.store.claim_time_zone("UTC")


def test_a_record_beyond_the_next_offset_is_held_back_as_a_gap(h):
    processor = h.processor()
    run(processor.process(h.records([shipment(i) for i in range(3)])))
    stats = run(processor.process(h.records([shipment(i) for i in range(10, 13)], first_offset=5)))
    assert stats.gaps == {f"{h.topic}:0"}
    assert stats.applied_events == 0
    assert h.mark() == 2
    assert h.total("count") == 3


def test_after_a_move_records_in_flight_from_before_it_are_dropped(h):
    processor = h.processor()
    run(processor.process(h.records([shipment(i) for i in range(3)])))
    processor.position(f"{h.topic}:0", mark=2, resume_at=3)
    stale = run(processor.process(h.records([shipment(i) for i in range(20, 22)], first_offset=8)))
    assert stale.applied_events == 0
    assert not stale.gaps
    fresh = run(processor.process(h.records([shipment(i) for i in range(3, 10)], first_offset=3)))
    assert fresh.applied_events == 7
    assert h.mark() == 9


def test_a_move_past_deleted_offsets_is_followed(h):
    processor = h.processor()
    processor.position(f"{h.topic}:0", mark=-1, resume_at=100)  # retention deleted 0-99
    stats = run(processor.process(h.records([shipment(i) for i in range(5)], first_offset=100)))
    assert stats.applied_events == 5
    assert h.mark() == 104


def test_nothing_is_added_to_a_redis_that_lost_its_state(h):
    processor = h.processor()
    run(processor.process(h.records([shipment(i) for i in range(3)])))
    h.store.drop_state()  # as after a restart without persistence
    with pytest.raises(StateLost):
        run(processor.process(h.records([shipment(i) for i in range(3, 6)], first_offset=3)))
    assert h.total("count") == 0
    assert h.mark() == -1


def test_no_new_state_begins_while_one_is_being_dropped(h):
    h.store.open_epoch("Asia/Shanghai")
    h.store.client.hset(h.store.meta_key, "epoch", DROPPING)
    assert h.store.open_epoch("Asia/Shanghai") is None
    h.store.client.delete(h.store.meta_key)
    assert h.store.open_epoch("Asia/Shanghai") not in (None, DROPPING)


def test_a_recreated_topic_drops_its_marks(h):
    run(h.processor().process(h.records([shipment(i) for i in range(3)])))
    assert h.store.adopt_topic_id(h.topic, "id-1", partitions=8) == "adopted"
    assert h.store.adopt_topic_id(h.topic, "id-1", partitions=8) == "same"
    assert h.mark() == 2
    assert h.store.adopt_topic_id(h.topic, "id-2", partitions=8) == "recreated"
    assert h.mark() == -1
    assert h.total("count") == 3


def test_pipelined_chunks_survive_a_rival_worker_and_ids_seen_before(h, monkeypatch):
    monkeypatch.setattr(steps_module, "MAX_EVENTS_PER_APPLY", 2)
    records = h.records([shipment(i) for i in range(6)] + [shipment(1)])  # s1 comes again
    rival = h.processor()
    steps = []

    async def hook(fn, *args):
        if fn.__name__ == "apply":
            steps.append(args)
            if len(steps) == 2:  # before our second step, a zombie applies it (and the first)
                await rival.process(records[:4])
        return await fn(*args)

    stats = run(h.processor(store_hook=hook).process(records))
    assert h.total("count") == 6
    assert h.total() == 6000
    assert h.mark() == 6
    # ours: s0 s1 (step 1), nothing (step 2 conflicts: the zombie applied s2 s3), s4 s5, and
    # the repeated s1 as a duplicate
    assert stats.applied_events == 4
    assert stats.duplicate_events == 1


def test_a_step_queued_behind_one_that_is_redone_is_prepared_again(h, monkeypatch):
    """Two steps in flight: the first finds an id seen before and writes nothing, so the second
    (which expected the first's marks) must write nothing either, then apply after the redo."""
    monkeypatch.setattr(steps_module, "MAX_EVENTS_PER_APPLY", 2)
    run(h.processor().process(h.records([shipment(1)], partition=1)))  # s1 seen before
    steps, outcomes = [], {}
    second_answered = asyncio.Event()

    async def hook(fn, *args):
        if fn.__name__ != "apply":
            return await fn(*args)
        steps.append(args)
        step = len(steps)
        if step == 3:  # the redo of the first step: only once the second was answered
            await second_answered.wait()
        try:
            outcome = await fn(*args)
            outcomes[step] = outcome.applied
            return outcome
        except StateConflict:
            outcomes[step] = "conflict"
            raise
        finally:
            if step == 2:
                second_answered.set()

    stats = run(h.processor(store_hook=hook).process(h.records([shipment(i) for i in range(4)])))
    assert outcomes == {1: False, 2: "conflict", 3: True, 4: True}
    assert h.total("count") == 4
    assert h.mark() == 3
    assert stats.applied_events == 3
    assert stats.duplicate_events == 1


def test_each_applied_event_is_handed_on_once_per_step(h, monkeypatch):
    monkeypatch.setattr(steps_module, "MAX_EVENTS_PER_APPLY", 2)
    run(h.processor().process(h.records([shipment(3)], partition=1)))  # s3 seen before
    handed = []
    processor = BatchProcessor(
        h.settings,
        h.store,
        h.processor().dead_letters,
        on_applied=lambda events: handed.append([e.event_id for e in events]),
    )
    stats = run(processor.process(h.records([shipment(i) for i in range(6)])))
    assert handed == [["s0", "s1"], ["s2"], ["s4", "s5"]]  # s3's step redone without it
    assert stats.applied_events == 5
    assert stats.duplicate_events == 1
    assert stats.newest_event_s == datetime(2024, 6, 30, 23, 30, tzinfo=UTC).timestamp()


def test_a_failed_step_leaves_nothing_half_done_for_the_retry(h, monkeypatch):
    """A step fails while the next is in flight: the take fails, and doing it again counts
    every event once (the step in flight applied or not, its marks decide)."""
    monkeypatch.setattr(steps_module, "MAX_EVENTS_PER_APPLY", 2)
    records = h.records([shipment(i) for i in range(6)])
    calls = []

    async def failing_once(fn, *args):
        if fn.__name__ == "apply":
            calls.append(args)
            if len(calls) == 1:
                await asyncio.sleep(0.05)  # the second step is sent meanwhile
                raise RuntimeError("script error")
        return await fn(*args)

    processor = h.processor(store_hook=failing_once)
    with pytest.raises(RuntimeError):
        run(processor.process(records))
    assert len(calls) == 2  # the second step was in flight
    stats = run(processor.process(records))
    assert h.total("count") == 6
    assert h.mark() == 5
    assert stats.duplicate_events == 0


def test_the_newest_event_time_of_a_take_also_at_the_epoch(h, monkeypatch):
    monkeypatch.setattr(steps_module, "MAX_EVENTS_PER_APPLY", 1)  # one step per event
    stats = run(
        h.processor().process(
            h.records(
                [shipment(1, ts="1970-01-01T00:00:00Z"), shipment(2, ts="1969-12-31T23:00:00Z")]
            )
        )
    )
    assert stats.applied_events == 2
    assert stats.newest_event_s == 0.0


class ApplyGate:
    """A store hook that counts the apply steps and holds the first one, before it reaches
    Redis (``before``) or after Redis applied it, until ``release``."""

    def __init__(self, h, before: bool) -> None:
        self.h, self.before = h, before
        self.steps = 0
        self.release = asyncio.Event()
        self.outcomes: list = []

    async def __call__(self, fn, *args):
        if fn.__name__ != "apply":
            return await fn(*args)
        self.steps += 1
        first = self.steps == 1
        if first and self.before:
            await self.release.wait()
        try:
            outcome = await fn(*args)
            self.outcomes.append(outcome.applied)
        except StateConflict:
            self.outcomes.append("conflict")
            raise
        if first and not self.before:
            await self.release.wait()
        return outcome


async def until(condition, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


async def applied_in_turn(
    processor: processing.BatchProcessor,
    first: list[SourceRecord],
    second: list[SourceRecord],
    gate: ApplyGate,
):
    """The agents' way: the second batch is started once the first one's steps are sent; the
    first one is through (``done``) once it returns. Returns the second's stats and whether
    it was sent while the first was held."""
    # A connection and the script ready on this loop first: else the first step, opening them,
    # may reach Redis after the second (a redo, correct but not what these tests look at).
    await processor.open_epoch()
    await gate.h.store.apply({}, [], [], 60, None, processor.epoch)  # (not through the gate)
    first_handoff = Handoff()
    first_task = asyncio.ensure_future(processor.process(first, first_handoff))
    first_task.add_done_callback(lambda _: first_handoff.done.set())
    await first_handoff.sent.wait()
    second_handoff = Handoff(first_handoff)
    second_task = asyncio.ensure_future(processor.process(second, second_handoff))
    await until(lambda: second_handoff.sent.is_set() or second_task.done())
    sent_while_held = gate.steps == 2 and not first_task.done()
    await asyncio.sleep(0.05)
    collected_early = second_task.done()
    gate.release.set()
    await first_task
    return await second_task, sent_while_held, collected_early, second_handoff


def test_a_batch_is_prepared_and_sent_while_the_one_before_is_in_redis(h):
    gate = ApplyGate(h, before=False)  # the first step applies, its answer is held
    processor = h.processor(store_hook=gate)
    stats, sent_while_held, collected_early, _ = run(
        applied_in_turn(
            processor,
            h.records([shipment(i) for i in range(5)]),
            h.records([shipment(i) for i in range(5, 10)], first_offset=5),
            gate,
        )
    )
    assert sent_while_held
    assert not collected_early
    assert gate.outcomes == [True, True]  # it expected the first batch's marks: right at once
    assert stats.applied_events == 5
    assert not stats.gaps
    assert h.total("count") == 10
    assert h.mark() == 9
    assert processor.mark(f"{h.topic}:0") == 9


def test_a_batch_that_reached_redis_before_the_one_before_is_applied_again_after_it(h):
    gate = ApplyGate(h, before=True)  # the first step is held before Redis sees it
    processor = h.processor(store_hook=gate)
    stats, sent_while_held, _, handoff = run(
        applied_in_turn(
            processor,
            h.records([shipment(i) for i in range(5)]),
            h.records([shipment(i) for i in range(5, 10)], first_offset=5),
            gate,
        )
    )
    assert sent_while_held
    assert gate.outcomes == ["conflict", True, True]
    assert handoff.redone  # so the batch after it will wait for it
    assert stats.applied_events == 5
    assert not stats.gaps
    assert h.total("count") == 10
    assert h.mark() == 9


def pending_batch(leaves: dict[str, int], positions: int, redone: bool = False) -> Handoff:
    """The handoff of a batch sent and not through yet."""
    handoff = Handoff()
    handoff.leaves, handoff.positions, handoff.redone = leaves, positions, redone
    handoff.sent.set()
    return handoff


async def sent_only_once_through(processor, records, previous: Handoff, gate: ApplyGate):
    """Whether ``records`` wait for ``previous`` to be through before their step is sent."""
    task = asyncio.ensure_future(processor.process(records, Handoff(previous)))
    await asyncio.sleep(0.1)
    waited = gate.steps == 0 and not task.done()
    previous.done.set()
    stats = await task
    return waited, stats


def test_after_a_batch_that_was_redone_the_next_waits_for_it(h):
    run(h.processor().process(h.records([shipment(i) for i in range(5)])))
    gate = ApplyGate(h, before=False)
    gate.release.set()
    processor = h.processor(store_hook=gate)
    previous = pending_batch({f"{h.topic}:0": 4}, positions=0, redone=True)
    waited, stats = run(
        sent_only_once_through(
            processor, h.records([shipment(i) for i in range(5, 8)], first_offset=5), previous, gate
        )
    )
    assert waited
    assert stats.applied_events == 3
    assert h.mark() == 7


def test_after_the_consumer_was_moved_the_next_batch_waits_for_the_one_before(h):
    gate = ApplyGate(h, before=False)
    gate.release.set()
    processor = h.processor(store_hook=gate)
    previous = pending_batch({f"{h.topic}:0": 50}, positions=0)  # what it expected is moot now
    processor.position(f"{h.topic}:0", mark=-1, resume_at=0)
    waited, stats = run(
        sent_only_once_through(
            processor, h.records([shipment(i) for i in range(3)]), previous, gate
        )
    )
    assert waited
    assert stats.applied_events == 3
    assert not stats.gaps
    assert h.mark() == 2
