"""A three-master Redis Cluster of Debian's redis-server on loopback ports: the worker, replay,
report and rebuild work against it, and totals are exact. Every key of a topic prefix carries the
hash tag ``{<prefix>}``, so each atomic step runs on one node."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time

import pytest
import redis

from entrypoints.embedded import start_redis
from entrypoints.processes import free_port
from portflow.adapters.redis import DedupeWindow, RedisStore
from portflow.config import Settings
from tests.support.cli import invoke, portflow
from tests.support.events import shipment
from tests.support.pipeline import check_reports, write_replay_file
from tests.support.processing import apply

pytestmark = pytest.mark.slow


@pytest.fixture
def redis_cluster(tmp_path):
    """Three masters, no replicas; yields the URL of the first node."""
    ports = [free_port() for _ in range(3)]
    # (the cluster bus gets a free port of its own: the default, port + 10000, may be taken or
    # beyond 65535)
    nodes = [
        start_redis(
            port,
            tmp_path / f"node-{port}",
            tmp_path / "logs",
            name=f"node-{port}",
            extra_args=(
                "--cluster-enabled",
                "yes",
                "--cluster-port",
                str(free_port()),
                "--cluster-config-file",
                str(tmp_path / f"node-{port}" / "nodes.conf"),
            ),
        )
        for port in ports
    ]
    try:
        subprocess.run(
            [
                shutil.which("redis-cli"),
                "--cluster",
                "create",
                *[f"127.0.0.1:{p}" for p in ports],
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        deadline = time.monotonic() + 30
        while any(redis.Redis(port=p).cluster("info")["cluster_state"] != "ok" for p in ports):
            assert time.monotonic() < deadline, "the cluster did not become ready"
            time.sleep(0.2)
        yield f"redis://127.0.0.1:{ports[0]}/0"
    finally:
        for node in nodes:
            node.stop()


def test_worker_report_and_rebuild_on_a_three_master_cluster(
    stack_env, tmp_path, worker_factory, redis_cluster
):
    stack_env["PORTFLOW_REDIS_URL"] = redis_cluster
    settings = Settings.from_env(stack_env)
    store = RedisStore.from_url(settings.redis_url, settings.topic_prefix)
    assert isinstance(store.client, redis.RedisCluster)
    path = tmp_path / "events.jsonl"
    oracle = write_replay_file(path, events=5_000, seed=67)

    worker_factory()
    portflow(stack_env, "replay", str(path), "--wait", "--timeout", "120")
    check_reports(stack_env, oracle)
    slots = {store.client.keyslot(key) for key in store.client.scan_iter(match=f"{store.root}:*")}
    assert len(slots) == 1, "the keys of one prefix must share a slot"

    portflow(stack_env, "rebuild", "--yes", "--wait", "--timeout", "120")
    check_reports(stack_env, oracle)


def test_a_step_on_a_slot_being_migrated_writes_nothing_until_the_move_ends(redis_cluster):
    """The apply script names the aggregate and dedupe keys itself: if the prefix's slot is being
    migrated, a key that already left fails the script where it is used. It must fail before the
    first write (the caller retries), not after the dedupe ids went in (they would then count as
    seen, and their increments would be lost)."""
    store = RedisStore.from_url(redis_cluster, "migrating.")
    epoch = store.open_epoch("Asia/Shanghai")

    def step(offset: int, event_id: str, day: str):
        return asyncio.run(
            store.apply(
                {"t:0": (offset - 1, offset)},
                [("shipment", event_id)],
                [("shipment", day, "khorgos|rail|export|KZ|general|\t100\t5\t1")],
                3600,
                1_700_000_000,
                epoch,
            )
        )

    assert step(0, "e0", "2024-01-01").applied  # makes the marks, the dedupe bucket, a hash
    owner = store.client.get_node_from_key(store.marks_key)
    source = redis.Redis(host=owner.host, port=owner.port)
    target = next(
        redis.Redis(host=node.host, port=node.port)
        for node in store.client.get_nodes()
        if node.port != owner.port
    )
    slot = store.client.keyslot(store.marks_key)
    # every dedupe bucket the step reads or frees is there, so only its new day's hash is not
    window = DedupeWindow(3600)
    bucket = source.time()[0] // window.width
    for b in range(bucket - window.older - 1, bucket + 1):
        source.sadd(f"{store.dedupe_prefix('shipment')}{b}", "-")

    def snapshot() -> dict:
        return {key: source.dump(key) for key in source.scan_iter(match=f"{store.root}:*")}

    before = snapshot()
    source.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target.cluster("myid"))
    try:
        with pytest.raises(redis.ResponseError, match="non local key"):
            step(1, "e1", "2024-02-02")  # its day's hash does not exist: as if already moved
        assert snapshot() == before
    finally:
        source.execute_command("CLUSTER", "SETSLOT", slot, "STABLE")
    assert step(1, "e1", "2024-02-02").applied
    assert store.marks_of(["t:0"]) == {"t:0": 1}
    assert store.cells("shipment", "value", ["2024-02-02"]) == {
        "khorgos|rail|export|KZ|general|": 100
    }


def test_a_prefix_without_state_and_status_on_a_cluster(redis_cluster):
    settings = Settings(redis_url=redis_cluster, topic_prefix="portflow.")
    apply(settings, [shipment("a", "2024-05-01T10:00:00+08:00")])
    typo = invoke(
        Settings(redis_url=redis_cluster, topic_prefix="portflow_"), "report", "--period", "2024"
    )
    assert typo.exit_code == 1
    assert "no state for topic prefix 'portflow_' in Redis database 0" in typo.output
    assert "topic prefixes with a state there: 'portflow.'" in typo.output
    status = invoke(settings, "status")
    assert status.exit_code == 0, status.output
    assert "portflow.shipments: 0: 0" in status.output


def test_rates_load_replace_and_survive_a_rebuild_on_a_cluster(redis_cluster, tmp_path):
    settings = Settings(redis_url=redis_cluster, topic_prefix="portflow.")
    store = RedisStore.from_url(redis_cluster, "portflow.")
    store.open_epoch("Asia/Shanghai")
    store.put_rates({"2023-12": {"rate": "7.1", "source": "a"}})
    path = tmp_path / "rates.csv"
    path.write_text("month,rate,source\n2024-01,7.2570,b\n")
    loaded = invoke(settings, "rates", "load", "--replace", str(path))
    assert loaded.exit_code == 0, loaded.output
    assert "dropped 1 month (2023-12)" in loaded.output
    store.drop_state()
    assert store.rate_entries() == {"2024-01": {"rate": "7.2570", "source": "b"}}
