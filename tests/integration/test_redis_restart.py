"""Redis with AOF persistence restarted in the middle of a stream: nothing lost, nothing doubled.

The worker keeps retrying while Redis is away (acknowledging nothing), and a step whose reply was
lost is recognised by its moved mark when retried.
"""

import subprocess
import sys
import time

import pytest

from entrypoints.embedded import start_redis
from entrypoints.processes import free_port
from portflow.adapters.redis import RedisStore
from portflow.config import Settings
from producers.sample import generate_sample
from tests.support.oracle import Oracle
from tests.support.pipeline import check_reports

pytestmark = pytest.mark.slow
AOF = ("--appendonly", "yes", "--appendfsync", "always")


def test_aof_redis_restarted_mid_stream_loses_nothing(stack_env, tmp_path, worker_factory):
    port = free_port()
    data, logs = tmp_path / "redis-data", tmp_path / "logs"
    redis_server = start_redis(port, data, logs, name="redis-aof", extra_args=AOF)
    env = {**stack_env, "PORTFLOW_REDIS_URL": f"redis://127.0.0.1:{port}/0"}
    stack_env.update(env)  # the worker factory starts workers with these settings
    path = tmp_path / "events.jsonl"
    generate_sample(str(path), events=15000, seed=31)
    oracle = Oracle(str(path))
    settings = Settings.from_env(env)
    store = RedisStore.from_url(settings.redis_url, settings.topic_prefix)
    try:
        worker_factory()
        replay = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "entrypoints.cli",
                "replay",
                str(path),
                "--batch",
                "20",
                "--rate",
                "3000",
                "--wait",
                "--timeout",
                "240",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while sum(store.marks().values()) < 100:
            assert time.monotonic() < deadline, "the worker made no progress"
            time.sleep(0.05)
        redis_server.kill()  # SIGKILL: only what the AOF fsynced survives
        time.sleep(2)  # the worker meets a missing Redis for a while
        redis_server = start_redis(port, data, logs, name="redis-aof", extra_args=AOF)
        _out, err = replay.communicate(timeout=300)
        assert replay.returncode == 0, err
        check_reports(env, oracle)
    finally:
        redis_server.stop()
