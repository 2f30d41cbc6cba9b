"""Replay's routing and batching, with a recording stand-in for the Kafka producer."""

import gzip
import json

import pytest

from portflow.adapters import dead_letter_headers as header
from portflow.config import Settings
from portflow.domain.events import MAX_EVENT_BYTES
from portflow.errors import EXIT_INTERRUPTED
from producers.replay import MAX_RECORD_BYTES, Pace, Replayer, ReplayError, ReplayInterrupted


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
        self.sent, self.headers, self.fail = [], [], fail

    def send(self, topic, key=None, value=None, headers=None):
        self.sent.append((topic, key, value))
        self.headers.append(dict(headers or []))
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
    lines = [
        event("shipment", 1, value_cny=1.10),
        event("train", 1),
        event("shipment", 2),
        event("customs", 1, declaration_id="D7"),
        event("shipment", 3),
    ]
    producer = RecordingProducer()
    result = Replayer(Settings(), producer, batch=2, progress=False).run([replay_file(lines)])
    assert result.events == 5
    assert result.other_lines == 0
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
        [replay_file([event("shipment", 1), event("shipment", 2)])]
    )
    assert producer.sent == [
        ("portflow.shipments", b"shipment-1", event("shipment", 1)),
        ("portflow.shipments", b"shipment-2", event("shipment", 2)),
    ]


def test_other_lines_go_alone_and_unchanged_to_the_shipments_topic(replay_file):
    lines = [b"not json", b"[1,2]", b'{"type":"spaceship"}', b"\xff\xfe", b'{"no":"type"}']
    producer = RecordingProducer()
    result = Replayer(Settings(), producer, progress=False).run([replay_file([*lines, b"  "])])
    assert result.other_lines == 5
    assert result.events == 0
    assert producer.sent == [("portflow.shipments", None, line) for line in lines]


def test_a_type_that_is_no_name_goes_alone_to_the_worker_instead_of_stopping_the_replay(
    replay_file,
):
    lines = [b'{"type":["shipment"]}', b'{"type":{"a":1}}', b'{"type":7}']
    producer = RecordingProducer()
    result = Replayer(Settings(), producer, progress=False).run([replay_file(lines)])
    assert result.other_lines == 3
    assert producer.sent == [("portflow.shipments", None, line) for line in lines]


def test_records_stay_under_the_size_limit(replay_file):
    big = [event("shipment", n, pad="x" * 60_000) for n in range(40)]
    producer = RecordingProducer()
    Replayer(Settings(), producer, batch=1000, progress=False).run([replay_file(big)])
    assert len(producer.sent) > 1
    assert all(len(value) <= MAX_RECORD_BYTES for _, _, value in producer.sent)
    assert sum(value.count(b'"type"') for _, _, value in producer.sent) == 40


def test_failed_deliveries_are_an_error_saying_what_was_published(replay_file):
    path = replay_file([event("train", 1)])
    with pytest.raises(
        ReplayError,
        match=rf"1 of 1 records were not published \(first: "
        rf"{path}:1: broker said no\): every line before "
        rf"{path}:1 is published.*running it again is safe",
    ):
        Replayer(Settings(), RecordingProducer(fail=True), progress=False).run([path])


def test_every_record_carries_the_runs_id(replay_file):
    producer = RecordingProducer()
    replayer = Replayer(Settings(), producer, batch=1, progress=False)
    replayer.run([replay_file([event("train", 1), b"not json"])])
    run_id = replayer.result.run_id.encode()
    assert len(run_id) == 32
    assert run_id.isascii()
    assert producer.headers == [{header.REPLAY_RUN: run_id}] * 2
    assert Replayer(Settings(), producer).result.run_id != replayer.result.run_id


def test_a_line_too_large_for_a_record_goes_cut_and_alone_for_the_worker_to_reject(replay_file):
    huge = event("shipment", 2, pad="x" * 2_000_000)
    producer = RecordingProducer()
    result = Replayer(Settings(), producer, progress=False).run(
        [replay_file([event("shipment", 1), huge, event("shipment", 3)])]
    )
    cut = [
        (topic, value, headers)
        for (topic, _, value), headers in zip(producer.sent, producer.headers, strict=True)
        if header.TRUNCATED_FROM in headers
    ]
    assert cut == [
        (
            "portflow.shipments",
            huge[: MAX_EVENT_BYTES + 1],
            {
                header.REPLAY_RUN: result.run_id.encode(),
                header.TRUNCATED_FROM: str(len(huge)).encode(),
            },
        )
    ]
    assert (result.events, result.cut_lines, result.records) == (3, 1, 2)
    assert "1 line(s) over the 900 KiB record limit went cut" in result.summary()
    assert result.sent.rejection_at(
        {"partition": "portflow.shipments:0", "offset": 0, "batch_index": None}
    )[1].endswith(f":2 (a line of {len(huge):,} bytes, published cut)")


def test_records_hold_lines_of_one_file(tmp_path):
    paths = []
    for name in ("a", "b"):
        paths.append(str(tmp_path / f"{name}.jsonl"))
        (tmp_path / f"{name}.jsonl").write_bytes(event("train", name) + b"\n")
    producer = RecordingProducer()
    result = Replayer(Settings(), producer, progress=False).run(paths)
    assert len(producer.sent) == 2
    assert [result.sent.where(n) for n in range(2)] == [f"{paths[0]}:1", f"{paths[1]}:1"]


def test_a_file_unreadable_part_way_stops_the_replay_saying_up_to_which_line(tmp_path):
    lines = b"".join(event("train", n) + b"\n" for n in range(5000))
    path = tmp_path / "cut.jsonl.gz"
    whole = gzip.compress(lines)
    path.write_bytes(whole[: len(whole) // 2])  # cut after the check, say
    producer = RecordingProducer()
    with pytest.raises(
        ReplayError,
        match=r"stopped part-way, cannot read .*cut.jsonl.gz line "
        r"([\d,]+): the compressed data ends early.*every "
        r"line up to .*cut.jsonl.gz:",
    ) as stopped:
        Replayer(Settings(), producer, progress=False).run([str(path)])
    result = stopped.value.result
    assert result.events > 0
    assert result.events == sum(value.count(b'"type"') for _, _, value in producer.sent)
    assert f"cut.jsonl.gz:{result.events:,} is published" in str(stopped.value)


def test_an_interrupt_publishes_what_is_read_and_stops(replay_file):
    producer = RecordingProducer()
    replayer = Replayer(Settings(), producer, batch=100, progress=False)
    original = replayer._publish_line

    def interrupted_at_line_30(line, path, number):
        original(line, path, number)
        if number == 30:
            replayer.interrupt()

    replayer._publish_line = interrupted_at_line_30
    path = replay_file([event("train", n) for n in range(100)])
    with pytest.raises(
        ReplayInterrupted,
        match=rf"interrupted \(Ctrl-C\): every line up to "
        rf"{path}:30 is published: 30 events in 1 "
        "records; running it again is safe",
    ) as stopped:
        replayer.run([path])
    assert stopped.value.exit_code == EXIT_INTERRUPTED
    assert producer.sent[0][2].count(b'"type"') == 30


def test_an_interrupt_ends_a_paced_wait_at_once(replay_file):
    import threading
    import time

    replayer = Replayer(Settings(), RecordingProducer(), pace=Pace(rate=1), progress=False)
    threading.Timer(0.3, replayer.interrupt).start()
    started = time.monotonic()
    with pytest.raises(ReplayInterrupted):
        replayer.run([replay_file([event("train", n) for n in range(10)])])
    assert time.monotonic() - started < 1.5


def test_offsets_per_partition_are_collected_in_the_result(replay_file):
    result = Replayer(Settings(), RecordingProducer(), batch=1, progress=False).run(
        [replay_file([event("train", n) for n in range(3)])]
    )
    assert result.offsets == {("portflow.trains", 0): (0, 2)}


@pytest.mark.parametrize(
    ("kwargs", "said"),
    [
        ({"rate": 0}, "--rate must be positive"),
        ({"speed": -1}, "--speed must be positive"),
        ({"rate": 5, "speed": 2}, "choose one of --rate and --speed"),
    ],
)
def test_bad_pace_is_refused(kwargs, said):
    with pytest.raises(ValueError, match=said):
        Pace(**kwargs)


def test_rate_paces_publishing(replay_file):
    import time

    started = time.monotonic()
    Replayer(Settings(), RecordingProducer(), pace=Pace(rate=100), progress=False).run(
        [replay_file([event("train", n) for n in range(21)])]
    )
    assert time.monotonic() - started >= 0.19


def test_an_interrupt_with_records_the_broker_refused_says_both_and_stays_an_interrupt(replay_file):
    replayer = Replayer(Settings(), RecordingProducer(fail=True), batch=1, progress=False)
    original = replayer._publish_line
    path = replay_file([event("train", n) for n in range(3)])

    def refused_then_interrupted(line, path, number):
        original(line, path, number)
        replayer.interrupt()

    replayer._publish_line = refused_then_interrupted
    with pytest.raises(
        ReplayInterrupted,
        match=r"interrupted \(Ctrl-C\) and 1 of 1 records were "
        r"not published.*every line before "
        rf"{path}:1 is published",
    ) as stopped:
        replayer.run([path])
    assert stopped.value.exit_code == EXIT_INTERRUPTED
