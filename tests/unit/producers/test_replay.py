"""Replay's routing and batching, with a recording stand-in for the Kafka producer."""

import json

import pytest

from portflow.config import Settings
from producers.replay import MAX_RECORD_BYTES, Pace, Replayer, ReplayError


class _Metadata:
    def __init__(self, topic, partition, offset):
        self.topic, self.partition, self.offset = topic, partition, offset


class _Future:
    def __init__(self, metadata=None, error=None):
        self.metadata, self.error = metadata, error

    def add_callback(self, fn):
        if self.metadata:
            fn(self.metadata)

    def add_errback(self, fn):
        if self.error:
            fn(self.error)


class RecordingProducer:
    def __init__(self, fail=False):
        self.sent, self.fail = [], fail

    def send(self, topic, key=None, value=None):
        self.sent.append((topic, key, value))
        if self.fail:
            return _Future(error=RuntimeError("broker said no"))
        return _Future(_Metadata(topic, 0, len(self.sent) - 1))

    def flush(self):
        pass


def event(kind, n, **extra):
    body = {"type": kind, "event_id": f"{kind}-{n}", "ts": "2024-01-01T00:00:00Z", **extra}
    return json.dumps(body).encode()


@pytest.fixture
def replay_file(tmp_path):
    def write(lines):
        path = tmp_path / "events.jsonl"
        path.write_bytes(b"\n".join(lines) + b"\n")
        return str(path)
    return write


def test_events_are_batched_per_topic_with_original_bytes(replay_file):
    lines = [event("shipment", 1, value_cny=1.10), event("train", 1), event("shipment", 2),
             event("customs", 1, declaration_id="D7"), event("shipment", 3)]
    producer = RecordingProducer()
    result = Replayer(Settings(), producer, batch=2, progress=False).run([replay_file(lines)])
    assert result.events == 5 and result.other_lines == 0
    sent = {(topic, value) for topic, _, value in producer.sent}
    assert ("portflow.shipments", b"[" + lines[0] + b"," + lines[2] + b"]") in sent
    assert ("portflow.shipments", b"[" + lines[4] + b"]") in sent
    assert ("portflow.trains", b"[" + lines[1] + b"]") in sent
    keys = {topic: key for topic, key, _ in producer.sent}
    assert keys["portflow.customs"] == b"D7"
    assert b"1.1" in producer.sent[0][2]  # decimals are passed through, never re-encoded


def test_batch_1_sends_single_event_records_keyed_by_event_id(replay_file):
    producer = RecordingProducer()
    Replayer(Settings(), producer, batch=1, progress=False).run(
        [replay_file([event("shipment", 1), event("shipment", 2)])])
    assert producer.sent == [("portflow.shipments", b"shipment-1", event("shipment", 1)),
                             ("portflow.shipments", b"shipment-2", event("shipment", 2))]


def test_other_lines_go_alone_and_unchanged_to_the_shipments_topic(replay_file):
    lines = [b"not json", b"[1,2]", b'{"type":"spaceship"}', b"\xff\xfe", b'{"no":"type"}']
    producer = RecordingProducer()
    result = Replayer(Settings(), producer, progress=False).run([replay_file(lines + [b"  "])])
    assert result.other_lines == 5 and result.events == 0
    assert producer.sent == [("portflow.shipments", None, line) for line in lines]


def test_records_stay_under_the_size_limit(replay_file):
    big = [event("shipment", n, pad="x" * 60_000) for n in range(40)]
    producer = RecordingProducer()
    Replayer(Settings(), producer, batch=1000, progress=False).run([replay_file(big)])
    assert len(producer.sent) > 1
    assert all(len(value) <= MAX_RECORD_BYTES for _, _, value in producer.sent)
    assert sum(value.count(b'"type"') for _, _, value in producer.sent) == 40


def test_failed_deliveries_are_an_error_not_a_silent_loss(replay_file):
    with pytest.raises(ReplayError, match="not published"):
        Replayer(Settings(), RecordingProducer(fail=True), progress=False).run(
            [replay_file([event("train", 1)])])


def test_offsets_per_partition_are_collected(replay_file):
    result = Replayer(Settings(), RecordingProducer(), batch=1, progress=False).run(
        [replay_file([event("train", n) for n in range(3)])])
    assert result.offsets == {("portflow.trains", 0): (0, 2)}


@pytest.mark.parametrize("kwargs", [{"rate": 0}, {"speed": -1}, {"rate": 5, "speed": 2}])
def test_bad_pace_is_refused(kwargs):
    with pytest.raises(ValueError):
        Pace(**kwargs)


def test_rate_paces_publishing(replay_file):
    import time
    started = time.monotonic()
    Replayer(Settings(), RecordingProducer(), pace=Pace(rate=100), progress=False).run(
        [replay_file([event("train", n) for n in range(21)])])
    assert time.monotonic() - started >= 0.19
