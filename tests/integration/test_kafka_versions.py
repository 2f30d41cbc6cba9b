"""What changed for clients in Apache Kafka 4.x, on the release the suite runs (4.x, or 3.9 in its
lane): the workers' consumer group stays a classic one (Faust and aiokafka do not speak KIP-848's
protocol) and rebalances on joins, a clean leave and a SIGKILL as the broker sees it; and a
request for an API version 4.x removed (KIP-896) is refused and logged in the form the session's
check (tests/conftest.py) looks for."""

from __future__ import annotations

import socket
import struct
import time

import pytest
from kafka import KafkaAdminClient

from entrypoints.embedded import wait_for_assignment
from entrypoints.kafka_cluster import KafkaCluster, refused_requests
from portflow.config import Settings

pytestmark = [pytest.mark.slow, pytest.mark.brokers("apache-kafka", only=True)]


def group_as_the_broker_sees_it(settings: Settings) -> tuple[dict, str | None]:
    """The group's DescribeGroups answer and its type from ListGroups."""
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap.split(","))
    try:
        described = admin.describe_groups([settings.group_id])[settings.group_id]
        types = {g["group_id"]: g.get("group_type") for g in admin.list_groups()}
        return described, types.get(settings.group_id)
    finally:
        admin.close()


def wait_for_members(settings: Settings, count: int, timeout_s: float) -> None:
    """Until the broker has the group Stable with ``count`` members."""
    deadline = time.monotonic() + timeout_s
    while True:
        group, _ = group_as_the_broker_sees_it(settings)
        if group["group_state"] == "Stable" and len(group["members"]) == count:
            return
        assert time.monotonic() < deadline, (
            f"the group did not settle with {count}: {group['group_state']}, "
            f"{len(group['members'])} members"
        )
        time.sleep(0.2)


def test_a_classic_group_of_workers_rebalances_on_joins_a_clean_leave_and_a_sigkill(
    stack_env, worker_factory
):
    settings = Settings.from_env(stack_env)
    first = worker_factory()
    group, group_type = group_as_the_broker_sees_it(settings)
    assert group["protocol_type"] == "consumer"
    assert group_type == "classic"  # not a group of KIP-848's protocol

    second = worker_factory()  # joins: each of the two owns some partitions once it returns
    wait_for_members(settings, 2, timeout_s=30)

    second.stop()  # SIGTERM: the worker leaves the group before it exits
    left_at = time.monotonic()
    wait_for_members(settings, 1, timeout_s=30)
    session_timeout_s = 6  # PORTFLOW_SESSION_TIMEOUT of stack_env
    assert time.monotonic() - left_at < session_timeout_s, "the leave was not sent: it timed out"
    wait_for_assignment(settings, first, timeout_s=30)

    third = worker_factory()
    wait_for_members(settings, 2, timeout_s=30)
    third.kill()  # SIGKILL: no leave; the broker drops it when its session times out
    wait_for_members(settings, 1, timeout_s=60)
    wait_for_assignment(settings, first, timeout_s=30)
    assert first.alive(), first.tail()


def produce_request_v0_header() -> bytes:
    """A Produce v0 request (what clients from before 0.10 sent; 4.0 removed v0-v2): the broker
    refuses it from its header, so no body is needed."""
    client_id = b"portflow-probe"
    body = struct.pack(">hhih", 0, 0, 1, len(client_id)) + client_id
    return struct.pack(">i", len(body)) + body


def test_a_request_for_a_version_4x_removed_is_refused_and_logged_as_the_session_check_expects(
    tmp_path,
):
    cluster = KafkaCluster(tmp_path / "kafka")
    if cluster.release.startswith("3."):
        pytest.skip(f"Apache Kafka {cluster.release} still accepts Produce v0")
    cluster.start()
    log = cluster.logs / "kafka-1.log"
    try:
        with socket.create_connection(("127.0.0.1", cluster.members[0].port), timeout=10) as sock:
            sock.sendall(produce_request_v0_header())
            assert sock.recv(64) == b"", "the broker answered a removed version"
        deadline = time.monotonic() + 10
        while not refused_requests(log.read_text()):
            assert time.monotonic() < deadline, "the broker logged no refusal"
            time.sleep(0.1)
        assert any(
            "(Produce) and unsupported version 0" in line
            for line in refused_requests(log.read_text())
        )
    finally:
        cluster.stop()
        log.unlink()  # this refusal was asked for: the session's check is about portflow's clients
