"""`portflow up` as a user runs it, on either embedded broker: starts (the HTTP API with it),
refuses a second copy, stops on Ctrl-C, starts again after a clean stop and after being killed
(stale state, busy ports)."""

import os
import signal
import subprocess
import sys

import httpx
import pytest
import redis

from entrypoints.processes import free_port
from tests.support.up import ports, start_up, wait_closed

pytestmark = [pytest.mark.slow, pytest.mark.brokers("apache-kafka", "tansu")]


@pytest.fixture
def up_env(tmp_path):
    return {
        **os.environ,
        "PORTFLOW_HOME": str(tmp_path / "home"),
        "PORTFLOW_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
        "PORTFLOW_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        "PORTFLOW_METRICS_ADDR": f"127.0.0.1:{free_port()}",
        "PORTFLOW_API_ADDR": f"127.0.0.1:{free_port()}",
    }


@pytest.fixture
def up_command(broker) -> list[str]:
    return [sys.executable, "-m", "entrypoints.cli", "up", "--broker", broker]


def test_up_runs_once_stops_cleanly_and_restarts(up_command, up_env):
    first = start_up(up_command, up_env)
    try:
        assert redis.Redis.from_url(up_env["PORTFLOW_REDIS_URL"]).ping()
        api = f"http://{up_env['PORTFLOW_API_ADDR']}"
        assert httpx.get(f"{api}/readyz").json()["status"] == "ready"
        second = subprocess.run(up_command, env=up_env, capture_output=True, text=True, timeout=60)
        assert second.returncode == 1
        assert "already running" in second.stderr
    finally:
        first.send_signal(signal.SIGINT)
        first.wait(60)
    wait_closed(up_env)

    again = start_up(up_command, up_env)  # a second run right after the first
    again.kill()  # SIGKILL: its servers die with it, its state file stays behind
    again.wait()
    wait_closed(up_env)
    third = start_up(up_command, up_env)
    third.send_signal(signal.SIGTERM)
    assert third.wait(60) == 0
    wait_closed(up_env)


def _as_a_background_job() -> None:
    """What a shell does to `portflow up &` (no job control): SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.brokers("tansu", only=True)
def test_up_started_in_the_background_still_stops_on_sigint(up_command, up_env):
    background = start_up(up_command, up_env, preexec_fn=_as_a_background_job)
    try:
        background.send_signal(signal.SIGINT)
        assert background.wait(60) == 0
    finally:
        background.kill()
    wait_closed(up_env)


def test_a_foreign_program_on_the_port_gets_a_clear_message(up_command, up_env):
    import socket

    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", ports(up_env)[0]))
        squatter.listen()
        done = subprocess.run(up_command, env=up_env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "already in use" in done.stderr
    assert "PORTFLOW_KAFKA_BOOTSTRAP" in done.stderr
