"""`portflow up` started as a user starts it, and awaited until everything it started is gone."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from entrypoints.processes import port_in_use


def start_up(command, env, preexec_fn=None) -> subprocess.Popen:
    """Start `portflow up`; return once it says it runs (with the HTTP API)."""
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
    """Wait until up's ports are free and none of its processes runs."""
    deadline = time.monotonic() + timeout
    while any(port_in_use(p) for p in ports(env)) or processes_of(env):
        assert time.monotonic() < deadline, (
            f"after up stopped: ports {[p for p in ports(env) if port_in_use(p)]} still "
            f"listening, processes {processes_of(env)} still running"
        )
        time.sleep(0.1)
