"""No record can stop a live worker: a corpus of malformed records published as raw Kafka records
(each bad record or batch element lands on the DLQ once with its reason, and the valid events
around them count), records that make portflow's own code raise (dead letters with code
``internal_error``; everything else exact), and a Redis outage (waited out, blamed on no
record)."""

from __future__ import annotations

import json
import os
import signal
import sys
import time

import pytest
from kafka import KafkaProducer

from entrypoints.embedded import start_redis, wait_for_assignment
from entrypoints.processes import free_port, spawn
from portflow.config import Settings
from tests.support import events
from tests.support.cli import portflow
from tests.support.oracle import Oracle
from tests.support.pipeline import (
    check_reports,
    dead_letters,
    finish,
    scrape,
    start_replay,
    write_replay_file,
)

pytestmark = pytest.mark.slow


def train(n: int, **fields) -> dict:
    return events.train(**{"event_id": f"t-{n}", "teu": 10, **fields})


def raw(event: dict) -> bytes:
    return json.dumps(event).encode()


CORPUS: list[tuple[str, bytes]] = [
    ("broken UTF-8", raw(train(101)).replace(b"khorgos", b"kh\xff\xfergos")),
    ("deep nesting", b'{"type":"train","x":' + b"[" * 50_000 + b"]" * 50_000 + b"}"),
    ("huge number", raw(train(102, teu=10**400))),
    ("tiny number", raw(train(103, teu=1e-300))),
    ("negative number", raw(train(104, teu=-1))),
    ("over 64 KiB", raw(train(105, train_id="x" * 70_000))),
    ("control character", raw(train(106, port="khor\u0000gos"))),
    (
        "duplicated key",
        b'{"type":"train","event_id":"t-107","ts":"2024-03-14T00:15:00Z",'
        b'"port":"khorgos","service":"china-europe","direction":"outbound",'
        b'"teu":10,"teu":99999}',
    ),
    ("deep nesting in a batch", b"[" * 50_000 + b"]" * 50_000),
    (
        "deep nesting in a batch element",
        b'[{"type":"train","x":' + b"[" * 50_000 + b"]" * 50_000 + b"}]",
    ),
    ("UTF-16", json.dumps(train(120)).encode("utf-16")),
    ("UTF-32 in a batch", json.dumps([train(121)]).encode("utf-32")),
    ("invalid UTF-8 in an unknown key", raw(train(122)).replace(b'"teu"', b'"t\x8deu": 1, "teu"')),
    ("invalid UTF-8 in an amount", raw(train(123, teu="1\u00e9")).replace(b"\\u00e9", b"\xd2")),
    ("900 KB of one event", raw(train(124, train_id="x" * 900_000))),
    ("just under Kafka's 1 MiB", b"[" + b" " * 1_048_380 + b"]"),  # its letter must be cut
    ("a huge exponent", raw(train(125)).replace(b'"teu": 10', b'"teu": 7E777777777777777')),
    ("not JSON", b"\x00\x01\x02 garbage"),
    ("empty", b""),
    ("a string", b'"train"'),
    ("empty batch", b"[]"),
    ("wrong topic", raw({**train(108), "type": "shipment"})),
    ("time without offset", raw(train(109, ts="2024-03-14T00:15:00"))),
] + [
    (f"wrong type in {field}", raw(train(110 + i, **{field: value})))
    for i, (field, value) in enumerate(
        [
            ("event_id", 7),
            ("ts", 1710375300),
            ("port", ["khorgos"]),
            ("service", None),
            ("direction", True),
            ("teu", "10"),
            ("train_id", {"id": 1}),
        ]
    )
]


def test_a_corpus_of_hostile_records_goes_to_the_dlq_and_spares_its_neighbours(
    stack_env, worker_factory
):
    settings = Settings.from_env(stack_env)
    worker = worker_factory()
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, max_request_size=2**20)
    topic = settings.topic("train")
    good = 0
    for n, (_, value) in enumerate(CORPUS):
        producer.send(topic, raw(train(n)))  # a valid record before each bad one
        good += 1
        producer.send(topic, value)
    # a batch: valid elements around bad ones, each judged on its own
    batch = [train(500), {"type": "train"}, train(501), 42, train(502, teu="many"), train(503)]
    producer.send(topic, json.dumps(batch).encode())
    good += 4 - 1  # t-502 is bad
    producer.flush()
    producer.close()

    expected_letters = len(CORPUS) + 3
    deadline = time.monotonic() + 120
    while len(letters := dead_letters(stack_env)) < expected_letters:
        assert worker.alive(), worker.tail()
        assert time.monotonic() < deadline, f"{len(letters)} of {expected_letters} dead letters"
        time.sleep(1)
    assert len(letters) == expected_letters
    assert all(dict(letter.headers)["portflow-reason"] for letter in letters)
    [cut] = [letter for letter in letters if "portflow-truncated-from" in dict(letter.headers)]
    assert dict(cut.headers)["portflow-truncated-from"] == b"1048382"
    assert worker.alive()

    deadline = time.monotonic() + 60
    while True:
        report = json.loads(
            portflow(stack_env, "report", "--period", "2024", "--measure", "trains", "--json")
        )
        if report["total"]["current"] == good or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert report["total"]["current"] == good


def faulty_worker(env: dict, log_dir, **faults: str):
    """A worker process whose code raises for chosen event ids (tests/support/faulty_worker.py)."""
    child = spawn(
        "faulty-worker",
        [sys.executable, "-m", "tests.support.faulty_worker"],
        log_dir,
        env={**os.environ, **env, **faults},
    )
    settings = Settings.from_env(env)
    wait_for_assignment(settings, child, timeout_s=90)
    return child


def test_records_that_make_the_code_raise_are_dead_letters_and_the_rest_counts_exactly(
    stack_env, tmp_path
):
    batched, single = tmp_path / "batched.jsonl", tmp_path / "single.jsonl"
    write_replay_file(batched, events=3000, seed=131)
    write_replay_file(single, events=600, seed=137)

    def ids_of(path, every):
        return [
            json.loads(line)["event_id"]
            for line in path.read_bytes().splitlines()[5::every]
            if line.startswith(b'{"type"')
        ]

    sum_faults, step_faults = ids_of(batched, 400), ids_of(single, 150)
    worker = faulty_worker(
        stack_env,
        tmp_path / "logs",
        PORTFLOW_TEST_SUM_FAULT_IDS=",".join(sum_faults),
        PORTFLOW_TEST_STEP_FAULT_IDS=",".join(step_faults),
    )
    try:
        portflow(stack_env, "replay", str(batched), "--batch", "50", "--wait", "--timeout", "120")
        portflow(stack_env, "replay", str(single), "--batch", "1", "--wait", "--timeout", "180")
        assert worker.alive(), worker.tail()
    finally:
        worker.stop()

    faulted = set(sum_faults) | set(step_faults)
    kept = tmp_path / "kept.jsonl"
    lines = batched.read_bytes().splitlines() + single.read_bytes().splitlines()
    kept.write_bytes(
        b"".join(
            line + b"\n" for line in lines if not any(f'"{i}"'.encode() in line for i in faulted)
        )
    )
    check_reports(stack_env, Oracle(str(kept)))

    # dead letters are at least once: the retries while a fault is isolated may send some twice
    letters = {tuple(sorted(dict(letter.headers).items())) for letter in dead_letters(stack_env)}
    internal = [dict(h) for h in letters if dict(h)["portflow-reason-code"] == b"internal_error"]
    copies = sum(1 for line in lines for i in faulted if f'"{i}"'.encode() in line)
    assert len(internal) == copies
    assert copies >= len(faulted) > 0
    reasons = {h["portflow-reason"].decode() for h in internal}
    assert reasons == {
        "internal error: ArithmeticError: injected fault in the sum",
        "internal error: LookupError: injected fault in the step",
    }
    assert (
        len(letters) - len(internal)
        == Oracle(str(batched)).dead_letters + Oracle(str(single)).dead_letters
    )


def test_a_redis_outage_mid_stream_is_waited_out_and_blames_no_record(
    stack_env, tmp_path, worker_factory
):
    port = free_port()
    redis_server = start_redis(port, tmp_path / "redis", tmp_path / "logs", name="redis-paused")
    stack_env["PORTFLOW_REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    path = tmp_path / "events.jsonl"
    oracle = write_replay_file(path, events=6000, seed=139)
    try:
        worker_factory()
        replay = start_replay(stack_env, path, batch=10, rate=1500)
        time.sleep(1.5)
        os.kill(redis_server.process.pid, signal.SIGSTOP)  # Redis hangs: every call times out
        time.sleep(12)
        retrying = scrape(stack_env["PORTFLOW_METRICS_ADDR"])
        os.kill(redis_server.process.pid, signal.SIGCONT)
        finish(replay)
        check_reports(stack_env, oracle)
        assert retrying["portflow_oldest_unapplied_record_age_seconds"] > 5
        letters = dead_letters(stack_env)
        assert len(letters) == oracle.dead_letters
        assert not [
            h
            for h in (dict(letter.headers) for letter in letters)
            if h["portflow-reason-code"] == b"internal_error"
        ]
    finally:
        os.kill(redis_server.process.pid, signal.SIGCONT)
        redis_server.stop()
