"""The consumer's drain hands agents whole fetches, on Faust's real consumer, queues and flow
control (no broker: a fetch is a dict of records, as aiokafka returns it)."""

import asyncio
from collections import namedtuple
from types import SimpleNamespace

import faust
import pytest
from aiokafka.errors import KafkaError
from faust.types import TP

from streams.intake import BatchingConsumer, Fetched

Record = namedtuple("Record", "topic partition offset key value")

EVENTS, TRAINS = TP("events", 0), TP("trains", 0)


def records(tp: TP, first: int, last: int) -> list[Record]:
    return [
        Record(tp.topic, tp.partition, offset, None, b"{}") for offset in range(first, last + 1)
    ]


class Intake:
    """A Faust app with the batching consumer and one channel per topic, as an agent's stream
    reads it; made inside a running loop (Faust's queues belong to one)."""

    def __init__(self, maxsize: int = 2) -> None:
        self.app = faust.App(
            "intake-test",
            broker="kafka://127.0.0.1:1",
            web_enabled=False,
            stream_buffer_maxsize=maxsize,
        )
        self.app.transport.Consumer = BatchingConsumer
        self.consumer: BatchingConsumer = self.app.consumer
        self.channels = {}
        for tp in (EVENTS, TRAINS):
            topic = self.app.topic(tp.topic, value_type=bytes)
            channel = topic.clone(is_iterator=True)
            self.app.topics._tp_index[tp].add(channel)
            self.channels[tp] = channel
        self.consumer.resume_flow()
        self.app.flow_control.resume()

    def queued(self, tp: TP) -> list[Fetched]:
        return list(self.channels[tp].queue._queue)


def run(scenario):
    async def with_intake():
        return await asyncio.wait_for(scenario(Intake()), 5)

    return asyncio.run(with_intake())


def test_each_channel_gets_one_value_per_fetch_holding_its_partitions_in_offset_order():
    async def scenario(intake):
        await intake.consumer._deliver_fetch(
            {EVENTS: records(EVENTS, 0, 4), TRAINS: records(TRAINS, 7, 8)}, None
        )
        return intake.queued(EVENTS), intake.queued(TRAINS), dict(intake.consumer._read_offset)

    events, trains, read = run(scenario)
    assert [[r.offset for r in f.parts[EVENTS]] for f in events] == [[0, 1, 2, 3, 4]]
    assert [[r.offset for r in f.parts[TRAINS]] for f in trains] == [[7, 8]]
    assert read == {EVENTS: 4, TRAINS: 8}  # the last offset delivered, as Faust's drain keeps it


def test_records_below_the_read_offset_are_dropped_and_partitions_not_active_are_skipped():
    async def scenario(intake):
        intake.consumer._read_offset[EVENTS] = 3  # a seek moved the partition to offset 3
        await intake.consumer._deliver_fetch(
            {EVENTS: records(EVENTS, 0, 5), TRAINS: records(TRAINS, 0, 1)}, {EVENTS}
        )
        return intake.queued(EVENTS), intake.queued(TRAINS)

    events, trains = run(scenario)
    assert [r.offset for r in events[0].parts[EVENTS]] == [3, 4, 5]
    assert trains == []


def test_a_fetch_is_not_delivered_once_the_generation_changed_or_the_flow_stopped():
    async def scenario(intake):
        intake.app.consumer_generation_id = 5
        fetch = {EVENTS: records(EVENTS, 0, 1)}
        intake.consumer.stop_flow()
        await intake.consumer._deliver_fetch(fetch, None)
        stopped = intake.queued(EVENTS)
        intake.consumer.resume_flow()
        await intake.consumer._deliver_fetch(fetch, None)
        return stopped, intake.queued(EVENTS), intake.consumer._read_offset.get(EVENTS)

    stopped, delivered, read = run(scenario)
    assert stopped == []
    assert len(delivered) == 1
    assert delivered[0].generation_id == 5
    assert read == 1


def test_a_value_is_current_only_in_its_generation_while_the_flow_runs():
    async def scenario(intake):
        app = intake.app
        app.consumer_generation_id = 2
        same, older = Fetched(2, {}), Fetched(1, {})
        current = same.is_current(app), older.is_current(app)
        app.flow_control.suspend()
        return current, same.is_current(app)

    (same, older), suspended = run(scenario)
    assert same
    assert not older
    assert not suspended


def test_a_full_channel_blocks_the_drain_until_the_agent_takes_a_value():
    async def scenario(intake):
        consumer, queue = intake.consumer, intake.channels[EVENTS].queue
        for first in (0, 10):
            await consumer._deliver_fetch({EVENTS: records(EVENTS, first, first)}, None)
        third = asyncio.ensure_future(
            consumer._deliver_fetch({EVENTS: records(EVENTS, 20, 20)}, None)
        )
        await asyncio.sleep(0.05)
        blocked = not third.done()
        taken = queue.get_nowait()
        await asyncio.wait_for(third, 1)
        return blocked, taken, intake.queued(EVENTS), consumer._read_offset[EVENTS]

    blocked, taken, queued, read = run(scenario)
    assert blocked
    assert taken.parts[EVENTS][0].offset == 0
    assert [f.parts[EVENTS][0].offset for f in queued] == [10, 20]
    assert read == 20


@pytest.mark.parametrize("how", ["flow stopped", "queues cleared", "consumer stopped"])
def test_a_drain_waiting_for_room_gives_up_quietly_when_a_rebalance_or_stop_comes(how):
    async def scenario(intake):
        consumer, queue = intake.consumer, intake.channels[EVENTS].queue
        for first in (0, 10):
            await consumer._deliver_fetch({EVENTS: records(EVENTS, first, first)}, None)
        waiting = asyncio.ensure_future(consumer._put(queue, Fetched(0, {})))
        await asyncio.sleep(0.01)
        if how == "flow stopped":
            consumer.stop_flow()
        elif how == "queues cleared":  # a rebalance: Faust cancels the blocked putters
            queue.clear()
        else:
            consumer._stopped.set()
        return await asyncio.wait_for(waiting, 1), consumer._read_offset[EVENTS]

    put, read = run(scenario)
    assert put is False  # nothing raised (a raise would stop Faust's fetcher)
    assert read == 10


def committed(consumer: BatchingConsumer, tp: TP):
    """What Faust's commit would commit for ``tp`` now (and then takes as committed)."""
    offset = consumer._new_offset(tp)
    if offset is not None:
        consumer._committed_offset[tp] = offset
    return offset


def test_acknowledged_ranges_commit_up_to_the_last_applied_offset_and_never_past_a_hole():
    async def scenario(intake):
        consumer = intake.consumer
        consumer.assignment = lambda: {EVENTS}
        consumer._committed_offset[EVENTS] = 3  # the next offset to read, after the seek
        consumer.ack_applied(EVENTS, 0, 6)  # offsets below the committed one are left out
        contiguous = committed(consumer, EVENTS)
        consumer.ack_applied(EVENTS, 9, 12)  # 7 and 8 not applied yet
        with_hole = committed(consumer, EVENTS)
        consumer.ack_applied(EVENTS, 7, 8)
        consumer.ack_applied(EVENTS, 7, 8)  # twice: counted once
        return contiguous, with_hole, committed(consumer, EVENTS), consumer._n_acked

    contiguous, with_hole, closed, acked = run(scenario)
    assert contiguous == 7  # offsets 3..6 applied: commit 7, the next to read
    assert with_hole is None  # 9..12 wait for 7 and 8
    assert closed == 13
    assert acked == 4 + 4 + 2


def test_ranges_of_a_partition_no_longer_assigned_are_not_acknowledged():
    async def scenario(intake):
        consumer = intake.consumer
        consumer.assignment = lambda: {TRAINS}
        consumer.ack_applied(EVENTS, 0, 5)
        return consumer._n_acked, committed(consumer, EVENTS)

    assert run(scenario) == (0, None)


def test_the_faust_internals_the_intake_relies_on_are_still_there():
    """faust-streaming is pinned; this fails first when an upgrade moves what the drain uses."""

    async def scenario(intake):
        consumer, app = intake.consumer, intake.app
        for name in (
            "_wait_next_records",
            "perform_seek",
            "commit",
            "_new_offset",
            "diag",
            "_read_offset",
            "_acked",
            "_acked_index",
            "_n_acked",
            "_commit_every",
            "_committed_offset",
            "suspend_flow",
            "flow_active",
            "_stopped",
            "consumer_stopped_errors",
            "should_stop",
        ):
            assert hasattr(consumer, name), name
        assert hasattr(app.topics, "_tp_index")
        assert isinstance(app.monitor.stream_inbound_time, dict)
        queue = intake.channels[EVENTS].queue
        assert hasattr(queue, "_queue")
        assert hasattr(queue, "_putters")
        return True

    assert run(scenario)


def test_a_failed_fetch_is_tried_again_instead_of_stopping_the_fetcher(monkeypatch):
    monkeypatch.setattr("streams.intake.FETCH_RETRY_S", 0.01)

    async def scenario(intake):
        consumer = intake.consumer
        answers = [KafkaError(AssertionError()), ({EVENTS: records(EVENTS, 0, 1)}, None)]

        async def wait_next_records(_wait_s):  # as the consumer calls it: (1.0)
            if not answers:  # both answered: the test is over
                consumer._stopped.set()
                return None, None
            answer = answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer

        consumer._wait_next_records = wait_next_records
        await consumer._drain_messages(SimpleNamespace(_stopped=asyncio.Event()))
        return intake.queued(EVENTS)

    assert [[r.offset for r in f.parts[EVENTS]] for f in run(scenario)] == [[0, 1]]
