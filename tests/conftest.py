"""Shared fixtures: a real redis-server and a real Kafka broker on free 127.0.0.1 ports.

Servers start once per test session and are stopped by PID. Tests isolate themselves with a
unique topic prefix (which also namespaces every Redis key) and consumer group, so they can
share the servers.

Which broker: every test that needs one runs on Apache Kafka (a one-node KRaft cluster);
those marked ``brokers("apache-kafka", "tansu")`` run on tansu too, the embedded default.
``PORTFLOW_TEST_BROKER=tansu`` (or ``apache-kafka``) runs every broker test on that one broker
instead, skipping those marked ``brokers(..., only=True)`` for another (e.g. retention, which
tansu lacks).

Which Apache Kafka: the pom's release (4.x), or the older one PORTFLOW_KAFKA_VERSION names (the
3.9 lane, ``make test-kafka-3.9``). Every broker any test starts logs under the session's
temporary directory; the session fails if one of them refused a request for its API version.

Where things live: fixtures every test may use are here (the servers, ``settings``,
``stack_env``, ``worker_factory``), those of integration tests only in
``tests/integration/conftest.py``; helpers, the event factory among them, in ``tests/support/``
(its docstring lists them). Test modules import from ``tests.support``, never from one another.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import redis

from entrypoints.embedded import (
    BROKERS,
    start_redis,
    start_tansu,
    start_worker,
    wait_for_assignment,
    wait_until_owning,
)
from entrypoints.kafka_cluster import KafkaCluster, kafka_release, refused_requests
from entrypoints.processes import free_port
from portflow.config import Settings
from tests.support.prefixes import unique_prefix


def pytest_generate_tests(metafunc):
    """Parametrize every test that uses a broker by the brokers it runs on (see the module)."""
    if "broker" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("brokers")
    names = marker.args if marker else ("apache-kafka",)
    only = bool(marker and marker.kwargs.get("only"))
    chosen = os.environ.get("PORTFLOW_TEST_BROKER", "").strip()
    if chosen and chosen not in BROKERS:
        raise pytest.UsageError(f"PORTFLOW_TEST_BROKER={chosen!r}: expected one of {BROKERS}")
    if chosen:
        skip = only and chosen not in names
        names = [
            pytest.param(
                chosen, marks=pytest.mark.skip(reason=f"needs {' or '.join(names)}, not {chosen}")
            )
            if skip
            else chosen
        ]
    metafunc.parametrize("broker", names, indirect=True, scope="session")


def pytest_report_header(config):
    return f"Apache Kafka {kafka_release()} (PORTFLOW_KAFKA_VERSION selects another)"


@pytest.fixture(scope="session", autouse=True)
def no_request_refused_for_its_version(tmp_path_factory):
    """After the session: no broker (the shared one, each test's own cluster, each embedded
    stack's) logged a request it refused for its API version, from any client portflow runs."""
    yield
    logs = sorted(tmp_path_factory.getbasetemp().rglob("logs/kafka-*.log"))
    refused = [f"{log}: {line}" for log in logs for line in refused_requests(log.read_text())]
    assert not refused, "brokers refused requests for their API version:\n" + "\n".join(
        refused[:20]
    )


@pytest.fixture(scope="session")
def broker(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("servers")


@pytest.fixture(scope="session")
def redis_url(run_dir):
    port = free_port()
    child = start_redis(port, run_dir / f"redis-{port}", run_dir / "logs")
    yield f"redis://127.0.0.1:{port}/0"
    child.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(broker, run_dir):
    if broker == "tansu":
        port = free_port()
        child = start_tansu(port, run_dir / "logs")
        yield f"127.0.0.1:{port}"
        child.stop()
        return
    cluster = KafkaCluster(run_dir / "apache-kafka")
    cluster.start()
    yield cluster.bootstrap
    cluster.stop()


@pytest.fixture
def redis_client(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def settings(redis_url) -> Settings:
    """Settings for Redis-only tests: a fresh key namespace, no broker needed."""
    return Settings(redis_url=redis_url, topic_prefix=unique_prefix(), tz_name="Asia/Shanghai")


@pytest.fixture
def stack_env(redis_url, kafka_bootstrap) -> dict[str, str]:
    """Environment for a worker, replay and report on the shared servers, isolated by prefix."""
    prefix = unique_prefix()
    return {
        "PORTFLOW_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "PORTFLOW_REDIS_URL": redis_url,
        "PORTFLOW_TOPIC_PREFIX": prefix,
        "PORTFLOW_GROUP_ID": f"group-{prefix}",
        "PORTFLOW_SESSION_TIMEOUT": "6s",
        "PORTFLOW_TZ": "Asia/Shanghai",
        "PORTFLOW_PARTITIONS": "8",
        "PORTFLOW_METRICS_ADDR": f"127.0.0.1:{free_port()}",
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
        "PATH": os.environ["PATH"],
    }


@pytest.fixture
def worker_factory(stack_env, tmp_path):
    """Start worker processes on the stack; each call waits until the group owns every partition
    and the new worker owns some. The first serves metrics on stack_env's address, later ones
    on ports of their own."""
    started = []

    def start():
        env = dict(stack_env)
        if started:
            env["PORTFLOW_METRICS_ADDR"] = f"127.0.0.1:{free_port()}"
        child = start_worker(env, tmp_path / "logs", name=f"worker-{len(started)}")
        started.append(child)
        settings = Settings.from_env(env)
        wait_for_assignment(settings, child, timeout_s=90)
        wait_until_owning(settings, child, timeout_s=90)
        return child

    yield start
    for child in started:
        child.stop()
