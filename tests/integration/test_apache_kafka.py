"""What only a real broker can show, on Apache Kafka: retention deleting records before a worker
applied them, a broker SIGKILLed and restarted on its log, a three-broker cluster losing the
leader of most partitions, SASL_SSL with SCRAM-SHA-512, and kcat, a client nobody here wrote.
Every total is compared with the oracle's."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from entrypoints.kafka_cluster import BrokerSecurity, KafkaCluster
from portflow.adapters.redis import RedisStore
from portflow.config import Settings
from portflow.services.progress import wait_until_applied
from tests.support.cli import portflow
from tests.support.oracle import Oracle
from tests.support.pipeline import (
    check_reports,
    finish,
    scrape,
    start_replay,
    wait_for_progress,
    write_replay_file,
)
from tests.support.programs import program

pytestmark = [pytest.mark.slow, pytest.mark.brokers("apache-kafka", only=True)]


def read_topics(settings: Settings) -> dict[TopicPartition, dict[int, bytes]]:
    """Every record Kafka still holds in the event topics: partition → offset → value."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap.split(","), enable_auto_commit=False
    )
    try:
        partitions = [
            TopicPartition(t, p) for t in settings.event_topics for p in range(settings.partitions)
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        ends = consumer.end_offsets(partitions)
        found: dict[TopicPartition, dict[int, bytes]] = {tp: {} for tp in partitions}
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            for tp, records in consumer.poll(timeout_ms=1000).items():
                found[tp].update((r.offset, r.value) for r in records)
        return found
    finally:
        consumer.close()


def end_offsets(settings: Settings) -> dict[TopicPartition, int]:
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap.split(","))
    try:
        return consumer.end_offsets(
            [
                TopicPartition(t, p)
                for t in settings.event_topics
                for p in range(settings.partitions)
            ]
        )
    finally:
        consumer.close()


def wait_for_the_workers(settings: Settings, timeout_s: float = 120) -> None:
    """Until every record now in the event topics is handled (the barrier of replay --wait)."""
    store = RedisStore.from_url(settings.redis_url, settings.topic_prefix)
    wait_until_applied(
        store,
        {
            (tp.topic, tp.partition): (0, end - 1)
            for tp, end in end_offsets(settings).items()
            if end
        },
        timeout_s,
    )


def write_lines(path: Path, values) -> Oracle:
    path.write_bytes(b"".join(v + b"\n" for v in values))
    return Oracle(str(path))


def delete_records(settings: Settings, before: dict[TopicPartition, int]) -> None:
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap.split(","))
    try:
        admin.delete_records(before, timeout_ms=30_000)
    finally:
        admin.close()


def test_records_deleted_before_they_were_applied_are_lost_loudly_and_the_rest_is_exact(
    stack_env, tmp_path, worker_factory
):
    settings = Settings.from_env(stack_env)
    store = RedisStore.from_url(settings.redis_url, settings.topic_prefix)
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    write_replay_file(first, events=3000, seed=71)
    write_replay_file(second, events=1000, seed=73)
    topic = settings.topic("shipment")
    published = {}  # everything published: partition → offset → value

    # 1. Kafka deletes the start of two partitions before any worker ran.
    portflow(stack_env, "replay", str(first), "--batch", "1", "--no-progress")
    published.update(read_topics(settings))
    ends = end_offsets(settings)
    lost = {
        TopicPartition(topic, 0): (0, ends[TopicPartition(topic, 0)] // 2),
        TopicPartition(topic, 1): (0, ends[TopicPartition(topic, 1)] // 3),
    }
    delete_records(settings, {tp: end for tp, (_, end) in lost.items()})
    worker = worker_factory()
    wait_for_the_workers(settings)

    # 2. Kafka deletes records a running worker has not read yet (it is stopped meanwhile).
    os.kill(worker.process.pid, signal.SIGSTOP)
    try:
        portflow(stack_env, "replay", str(second), "--batch", "1", "--no-progress")
        later, before = TopicPartition(topic, 2), ends[TopicPartition(topic, 2)]
        for tp, records in read_topics(settings).items():
            published.setdefault(tp, {}).update(records)
        lost[later] = (before, before + (end_offsets(settings)[later] - before) // 2)
        delete_records(settings, {later: lost[later][1]})
    finally:
        os.kill(worker.process.pid, signal.SIGCONT)
    wait_for_the_workers(settings)

    expected = {f"{tp.topic}:{tp.partition}": [[low, end - 1]] for tp, (low, end) in lost.items()}
    assert store.lost_offsets() == expected
    deleted = sum(end - low for low, end in lost.values())
    # the worker restarted after finding the gap: its counter began again, the gauge (read
    # from Redis every 5 s) did not
    addr, deadline = stack_env["PORTFLOW_METRICS_ADDR"], time.monotonic() + 30
    while scrape(addr).get("portflow_offsets_lost_recorded") != deleted:
        assert time.monotonic() < deadline, scrape(addr).get("portflow_offsets_lost_recorded")
        time.sleep(0.5)

    refused = subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", "report", "--period", "2024"],
        env=stack_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 1
    for name, [[low, high]] in expected.items():
        assert f"{name} offsets {low}-{high}" in refused.stderr
    kept = [
        value
        for tp, records in sorted(published.items())
        for offset, value in sorted(records.items())
        if not lost.get(tp, (0, 0))[0] <= offset < lost.get(tp, (0, 0))[1]
    ]
    check_reports(stack_env, write_lines(tmp_path / "kept.jsonl", kept), "--allow-incomplete")


@pytest.fixture
def own_cluster(stack_env, tmp_path):
    """Start a cluster of this test's own and point ``stack_env`` at it; stopped after the
    workers (ask for it before ``worker_factory``)."""
    started = []

    def start(**options) -> KafkaCluster:
        cluster = KafkaCluster(tmp_path / f"kafka-{len(started)}", **options)
        started.append(cluster)
        cluster.start()
        stack_env["PORTFLOW_KAFKA_BOOTSTRAP"] = cluster.bootstrap
        return cluster

    yield start
    for cluster in started:
        cluster.stop()


def test_a_broker_killed_mid_replay_and_restarted_on_its_log_loses_and_doubles_nothing(
    stack_env, tmp_path, own_cluster, worker_factory
):
    cluster = own_cluster()
    path = tmp_path / "events.jsonl"
    oracle = write_replay_file(path, events=20_000, seed=79)
    store = RedisStore.from_url(stack_env["PORTFLOW_REDIS_URL"], stack_env["PORTFLOW_TOPIC_PREFIX"])
    worker = worker_factory()
    replay = start_replay(stack_env, path, batch=20, rate=2500)
    assert wait_for_progress(store, replay, 150)
    cluster.kill_node(1)
    time.sleep(3)
    cluster.restart_node(1)
    finish(replay)
    assert worker.alive(), worker.tail()
    check_reports(stack_env, oracle)
    assert store.lost_offsets() == {}


def leaders(bootstrap: str, topics) -> dict[int, int]:
    """Broker id → how many partitions of ``topics`` it leads."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","))
    try:
        counts: dict[int, int] = {}
        for topic in admin.describe_topics(list(topics)):
            for partition in topic["partitions"]:
                counts[partition["leader_id"]] = counts.get(partition["leader_id"], 0) + 1
        return counts
    finally:
        admin.close()


def test_three_brokers_survive_losing_the_leader_of_most_partitions_with_exact_totals(
    stack_env, tmp_path, own_cluster, worker_factory
):
    cluster = own_cluster(nodes=3)
    settings = Settings.from_env(stack_env)
    store = RedisStore.from_url(settings.redis_url, settings.topic_prefix)
    path = tmp_path / "events.jsonl"
    oracle = write_replay_file(path, events=30_000, seed=83)
    worker_factory()
    worker_factory()
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap.split(","))
    described = admin.describe_topics([settings.topic("shipment")])
    admin.close()
    assert {len(p["replica_nodes"]) for p in described[0]["partitions"]} == {3}
    replay = start_replay(stack_env, path, batch=20, rate=2500)
    assert wait_for_progress(store, replay, 200)
    counts = leaders(cluster.bootstrap, settings.event_topics)
    victim = max(counts, key=counts.get)
    cluster.kill_node(victim)
    assert wait_for_progress(store, replay, 300), "no progress without the killed broker"
    cluster.restart_node(victim)
    finish(replay)  # replay --wait returned: everything published is applied, now
    check_reports(stack_env, oracle)
    assert store.lost_offsets() == {}


def make_certificates(directory: Path) -> tuple[Path, Path]:
    """A private CA and a broker certificate for 127.0.0.1 signed by it: (ca.pem, keystore.pem)."""
    directory.mkdir(parents=True, exist_ok=True)

    def openssl(*args: str) -> None:
        subprocess.run([program("openssl"), *args], cwd=directory, check=True, capture_output=True)

    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=portflow test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=keyCertSign",
    )
    openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "broker.key",
        "-out",
        "broker.csr",
        "-subj",
        "/CN=127.0.0.1",
    )
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl(
        "x509",
        "-req",
        "-in",
        "broker.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "broker.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    )
    keystore = directory / "keystore.pem"
    keystore.write_bytes(
        (directory / "broker.key").read_bytes() + (directory / "broker.pem").read_bytes()
    )
    return directory / "ca.pem", keystore


@pytest.fixture
def secured_env(stack_env, tmp_path, own_cluster):
    ca, keystore = make_certificates(tmp_path / "tls")
    own_cluster(
        security=BrokerSecurity(
            users={"broker": "broker-secret", "portflow": "portflow-secret"},
            ca_file=ca,
            keystore_file=keystore,
        )
    )
    stack_env.update(
        {
            "PORTFLOW_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "PORTFLOW_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "PORTFLOW_KAFKA_SASL_USERNAME": "portflow",
            "PORTFLOW_KAFKA_SASL_PASSWORD": "portflow-secret",
            "PORTFLOW_KAFKA_SSL_CAFILE": str(ca),
        }
    )
    return stack_env


def test_every_client_works_over_sasl_ssl_with_scram_and_a_private_ca(
    secured_env, tmp_path, worker_factory
):
    path = tmp_path / "events.jsonl"
    oracle = write_replay_file(path, events=3000, seed=89)
    worker_factory()
    portflow(secured_env, "replay", str(path), "--wait", "--timeout", "120", "--no-progress")
    check_reports(secured_env, oracle)

    letters = portflow(secured_env, "dlq", "list", "--json").splitlines()
    assert len(letters) == oracle.dead_letters
    portflow(secured_env, "dlq", "replay", "--yes")
    portflow(secured_env, "rebuild", "--yes", "--wait", "--timeout", "120")
    check_reports(secured_env, oracle)  # re-driven letters were rejected again, nothing added
    # re-driven letters rejected again, and all once more after the rebuild: the same events
    assert len(portflow(secured_env, "dlq", "list", "--json").splitlines()) == len(letters)

    portflow(secured_env, "simulate", "--events", "300", "--rate", "1000")
    store = RedisStore.from_url(
        secured_env["PORTFLOW_REDIS_URL"], secured_env["PORTFLOW_TOPIC_PREFIX"]
    )
    settings = Settings.from_env(secured_env)
    deadline = time.monotonic() + 60
    while (
        json.loads(
            portflow(
                secured_env,
                "report",
                "--period",
                time.strftime("%Y"),
                "--measure",
                "shipments",
                "--json",
            )
        )["total"]["current"]
        == 0
    ):
        assert time.monotonic() < deadline, "the simulated events were not counted"
        time.sleep(0.5)
    assert store.lost_offsets() == {}
    assert settings.kafka_security.protocol == "SASL_SSL"


def test_a_wrong_kafka_password_is_a_clear_error_and_nothing_is_processed(secured_env, tmp_path):
    wrong = {**secured_env, "PORTFLOW_KAFKA_SASL_PASSWORD": "not-the-password"}
    path = tmp_path / "events.jsonl"
    write_replay_file(path, events=100, seed=97)
    for args in (["replay", str(path), "--no-progress"], ["worker"], ["dlq", "list"]):
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "entrypoints.cli", *args],
            env=wrong,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 1, (args, done.stderr)
        assert "PORTFLOW_KAFKA_SASL_PASSWORD" in done.stderr, (args, done.stderr)
        assert "not-the-password" not in done.stderr
        assert time.monotonic() - started < 60, f"{args} took too long to give up"
    store = RedisStore.from_url(
        secured_env["PORTFLOW_REDIS_URL"], secured_env["PORTFLOW_TOPIC_PREFIX"]
    )
    assert store.marks() == {}


def test_a_broker_certificate_no_configured_ca_signed_is_refused_naming_the_setting(
    secured_env, tmp_path
):
    other_ca, _ = make_certificates(tmp_path / "another-ca")
    untrusting = {**secured_env, "PORTFLOW_KAFKA_SSL_CAFILE": str(other_ca)}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", "dlq", "list"],
        env=untrusting,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert "PORTFLOW_KAFKA_SSL_CAFILE" in done.stderr, done.stderr
    assert "not trusted" in done.stderr
    assert time.monotonic() - started < 60


def topic_of(settings: Settings, line: bytes) -> str:
    """The topic `portflow replay` would send a line to: its type's, else the shipments'."""
    try:
        kind = json.loads(line).get("type")
    except (ValueError, AttributeError):
        kind = None
    return settings.topic(kind if kind in ("shipment", "train", "customs") else "shipment")


@pytest.mark.skipif(not shutil.which("kcat"), reason="kcat is not installed")
def test_kcat_publishes_single_event_records_and_reads_the_dlq_with_its_headers(
    stack_env, tmp_path, worker_factory
):
    path = tmp_path / "events.jsonl"
    write_replay_file(path, events=2000, seed=101)
    lines = path.read_bytes().splitlines()
    sent = lines + lines[::7]  # a producer that retried: some records twice
    oracle = write_lines(tmp_path / "sent.jsonl", sent)
    settings = Settings.from_env(stack_env)
    worker_factory()
    by_topic: dict[str, list[bytes]] = {}
    for line in sent:
        by_topic.setdefault(topic_of(settings, line), []).append(line)
    for topic, values in by_topic.items():
        subprocess.run(
            [program("kcat"), "-P", "-b", settings.kafka_bootstrap, "-t", topic],
            input=b"\n".join(values) + b"\n",
            check=True,
            timeout=60,
        )
    wait_for_the_workers(settings)
    check_reports(stack_env, oracle)

    dumped = subprocess.run(
        [
            program("kcat"),
            "-C",
            "-b",
            settings.kafka_bootstrap,
            "-t",
            settings.dlq_topic,
            "-e",
            "-J",
        ],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    letters = [json.loads(line) for line in dumped.splitlines()]
    assert len(letters) == oracle.dead_letters > 0
    for letter in letters:
        headers = dict(zip(letter["headers"][::2], letter["headers"][1::2], strict=True))
        assert headers["portflow-reason-code"]
        assert headers["portflow-reason"]
        assert headers["portflow-source-topic"] in by_topic
        assert int(headers["portflow-source-offset"]) >= 0
