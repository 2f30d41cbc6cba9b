"""`portflow up` as a user runs it, on either embedded broker: starts (the HTTP API with it),
refuses a second copy, stops on Ctrl-C, starts again after a clean stop and after being killed
(stale state, busy ports)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import redis

from entrypoints.processes import free_port, port_in_use

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


def start_up(command, env, preexec_fn=None) -> subprocess.Popen:
    process = subprocess.Popen(
        command,
        env=env,
        preexec_fn=preexec_fn,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    deadline = time.monotonic() + 90
    for line in process.stdout:
        lines.append(line)
        if "Ctrl-C stops everything" in line:
            assert f"HTTP API     http://{env['PORTFLOW_API_ADDR']}" in "".join(lines)
            return process
        assert time.monotonic() < deadline, "".join(lines)
    raise AssertionError("up exited:\n" + "".join(lines))


def ports(env):
    return [
        int(env["PORTFLOW_KAFKA_BOOTSTRAP"].rsplit(":", 1)[1]),
        int(env["PORTFLOW_REDIS_URL"].rsplit(":", 1)[1].split("/")[0]),
        int(env["PORTFLOW_API_ADDR"].rsplit(":", 1)[1]),
    ]


def processes_of(env) -> list[int]:
    """PIDs of processes started with this test's PORTFLOW_HOME (up's children inherit it)."""
    marker = f"PORTFLOW_HOME={env['PORTFLOW_HOME']}".encode() + b"\0"
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            pass  # gone meanwhile, or not ours to read
    return found


def wait_closed(env, timeout=30):
    deadline = time.monotonic() + timeout
    while any(port_in_use(p) for p in ports(env)) or processes_of(env):
        assert time.monotonic() < deadline, (
            f"after up stopped: ports {[p for p in ports(env) if port_in_use(p)]} still "
            f"listening, processes {processes_of(env)} still running"
        )
        time.sleep(0.1)


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
