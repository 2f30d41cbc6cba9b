"""Fault injection end to end (real tansu, redis-server and worker processes): a crash loop,
scale-out with rebalances, Redis losing its data, and `portflow rebuild`. Every report is compared
with totals the oracle computes from the replay file on its own."""

from __future__ import annotations

import random
import socket
import subprocess
import sys
import time

import pytest

from entrypoints.embedded import start_redis, start_tansu
from entrypoints.processes import free_port
from portflow.adapters.redis import RedisStore
from portflow.config import Settings
from tests.support.cli import portflow
from tests.support.oracle import Oracle
from tests.support.pipeline import (
    check_reports,
    finish,
    start_replay,
    wait_for_progress,
    write_replay_file,
)

pytestmark = pytest.mark.slow


def live_assignments(store: RedisStore, workers) -> dict[int, set[str]]:
    """pid -> partitions, for the given live worker processes, from their announcements."""
    host = socket.gethostname()
    pids = {w.process.pid for w in workers if w.alive()}
    return {
        int(worker_id.rpartition("-")[2]): set(info["partitions"])
        for worker_id, info in store.workers().items()
        if worker_id.startswith(f"{host}-") and int(worker_id.rpartition("-")[2]) in pids
    }


def test_crash_loop_of_sigkills_during_100k_events(stack_env, tmp_path, worker_factory):
    path = tmp_path / "events.jsonl"
    oracle = write_replay_file(path, events=100_000, seed=41)
    settings = Settings.from_env(stack_env)
    store = RedisStore.from_url(settings.redis_url, settings.topic_prefix)
    rng = random.Random(41)
    worker = worker_factory()
    replay = start_replay(stack_env, path, batch=25, rate=2500)
    kills = 0
    while kills < 6 and wait_for_progress(store, replay, rng.randint(20, 400)):
        time.sleep(rng.uniform(0, 0.5))  # a random moment: mid-take, mid-step or idle
        worker.kill()
        kills += 1
        worker = worker_factory()
    finish(replay)
    assert kills >= 5, "the replay ended before five kills"
    check_reports(stack_env, oracle)


def test_scale_out_and_in_with_rebalances_keeps_totals_exact(stack_env, tmp_path, worker_factory):
    path = tmp_path / "events.jsonl"
    oracle = write_replay_file(path, events=40_000, seed=43)
    settings = Settings.from_env(stack_env)
    store = RedisStore.from_url(settings.redis_url, settings.topic_prefix)
    workers = [worker_factory()]
    replay = start_replay(stack_env, path, batch=20, rate=2000)
    assert wait_for_progress(store, replay, 100)
    workers.append(worker_factory())  # scale out: 2 workers
    assert wait_for_progress(store, replay, 200)
    workers.append(worker_factory())  # 3 workers
    assert wait_for_progress(store, replay, 200)
    workers[0].kill()  # one dies; the others take over its partitions
    assert wait_for_progress(store, replay, 200)
    workers[1].stop()  # one leaves cleanly (SIGTERM)
    workers.append(worker_factory())  # and another joins
    finish(replay)
    check_reports(stack_env, oracle)

    # once the group settles, every partition has exactly one live owner
    wanted = {f"{t}:{p}" for t in settings.event_topics for p in range(settings.partitions)}
    deadline = time.monotonic() + 60
    while True:
        owned = live_assignments(store, workers)
        everything = [name for names in owned.values() for name in names]
        if len(owned) == 2 and sorted(everything) == sorted(wanted):
            break
        assert time.monotonic() < deadline, f"the group did not settle: {owned}"
        time.sleep(0.5)
    assert all(owned.values()), "a live worker owns nothing"


def test_redis_restarted_empty_mid_stream_heals_to_exact_totals(
    stack_env, tmp_path, worker_factory
):
    port = free_port()
    data, logs = tmp_path / "redis-data", tmp_path / "logs"
    redis_server = start_redis(port, data, logs, name="redis-volatile")
    stack_env["PORTFLOW_REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    path = tmp_path / "events.jsonl"
    oracle = write_replay_file(path, events=20_000, seed=47)
    settings = Settings.from_env(stack_env)
    store = RedisStore.from_url(settings.redis_url, settings.topic_prefix)
    try:
        worker_factory()
        replay = start_replay(stack_env, path, batch=20, rate=2500)
        assert wait_for_progress(store, replay, 200)
        redis_server.kill()  # no persistence: everything in Redis is gone
        redis_server = start_redis(port, data, logs, name="redis-volatile")
        finish(replay)  # --wait: the marks reach what was published, after the re-read
        check_reports(stack_env, oracle)
    finally:
        redis_server.stop()


def test_rebuild_recomputes_everything_from_kafka(stack_env, tmp_path, worker_factory):
    path = tmp_path / "events.jsonl"
    oracle = write_replay_file(path, events=5_000, seed=53)
    worker_factory()
    portflow(stack_env, "replay", str(path), "--wait", "--timeout", "120")
    settings = Settings.from_env(stack_env)
    store = RedisStore.from_url(settings.redis_url, settings.topic_prefix)
    store.client.hincrby(store.aggregate_key("shipment", "value_fen", "2024-01"), "corrupt", 7)

    portflow(stack_env, "rebuild", "--yes", "--wait", "--timeout", "120")
    check_reports(stack_env, oracle)
    assert "corrupt" not in str(
        store.client.hkeys(store.aggregate_key("shipment", "value_fen", "2024-01"))
    )


@pytest.mark.brokers("tansu", only=True)
def test_broker_outage_workers_wait_producers_fail_clearly_and_counting_resumes(
    stack_env, tmp_path, worker_factory
):
    """tansu keeps nothing across a restart: this tests behaviour, not durability. Events
    applied before the outage stay counted; the recreated topics are counted from their start."""
    port = free_port()
    logs = tmp_path / "logs"
    broker = start_tansu(port, logs, name="tansu-restarted")
    stack_env["PORTFLOW_KAFKA_BOOTSTRAP"] = f"127.0.0.1:{port}"
    before, after, both = (tmp_path / f"{n}.jsonl" for n in ("before", "after", "both"))
    write_replay_file(before, events=3_000, seed=59)
    write_replay_file(after, events=3_000, seed=61)
    both.write_bytes(before.read_bytes() + after.read_bytes())
    try:
        worker = worker_factory()
        portflow(stack_env, "replay", str(before), "--wait", "--timeout", "120")

        broker.stop()
        started = time.monotonic()
        refused = subprocess.run(
            [sys.executable, "-m", "entrypoints.cli", "replay", str(after), "--no-progress"],
            env=stack_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert refused.returncode != 0
        assert "cannot reach Kafka" in refused.stderr
        assert time.monotonic() - started < 60, "the producer did not give up in bounded time"
        time.sleep(max(0.0, 15 - (time.monotonic() - started)))
        assert worker.alive(), f"the worker stopped while the broker was away:\n{worker.tail()}"

        broker = start_tansu(port, logs, name="tansu-restarted")
        portflow(stack_env, "replay", str(after), "--wait", "--timeout", "180")
        assert worker.alive()
        check_reports(stack_env, Oracle(str(both)))
    finally:
        broker.stop()
