"""A corpus of malformed records, published as raw Kafka records to a running worker: the worker
keeps running, each bad record or batch element lands on the DLQ once with its reason, and the
valid events around them count."""

from __future__ import annotations

import json
import time

import pytest
from kafka import KafkaProducer

from portflow.config import Settings
from tests.cli import portflow
from tests.integration.test_pipeline import dead_letters

pytestmark = pytest.mark.slow


def train(n: int, **fields) -> dict:
    return {"type": "train", "event_id": f"t-{n}", "ts": "2024-03-14T00:15:00Z", "port": "khorgos",
            "service": "china-europe", "direction": "outbound", "teu": 10, **fields}


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
    ("duplicated key", b'{"type":"train","event_id":"t-107","ts":"2024-03-14T00:15:00Z",'
                       b'"port":"khorgos","service":"china-europe","direction":"outbound",'
                       b'"teu":10,"teu":99999}'),
    ("not JSON", b"\x00\x01\x02 garbage"),
    ("empty", b""),
    ("a string", b'"train"'),
    ("empty batch", b"[]"),
    ("wrong topic", raw({**train(108), "type": "shipment"})),
    ("time without offset", raw(train(109, ts="2024-03-14T00:15:00"))),
] + [(f"wrong type in {field}", raw(train(110 + i, **{field: value})))
     for i, (field, value) in enumerate([("event_id", 7), ("ts", 1710375300), ("port", ["khorgos"]),
                                         ("service", None), ("direction", True),
                                         ("teu", "10"), ("train_id", {"id": 1})])]


def test_a_corpus_of_hostile_records_goes_to_the_dlq_and_spares_its_neighbours(
        stack_env, worker_factory):
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
    assert worker.alive()

    deadline = time.monotonic() + 60
    while True:
        report = json.loads(portflow(stack_env, "report", "--period", "2024", "--measure",
                                     "trains", "--json"))
        if report["total"]["current"] == good or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert report["total"]["current"] == good
