"""Drills of `portflow up --data` as a host runs it: the real processes, stopped and started
again, killed, with a torn Redis file, without Redis' data, with marks past Kafka's log, without
Kafka's log. Each ends with
every report equal to the oracle's (or with a refusal that counts nothing twice)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from entrypoints.processes import free_port
from portflow.adapters.redis import RedisStore
from portflow.config import Settings
from producers.sample import generate_sample
from tests.support.cli import portflow
from tests.support.oracle import Oracle
from tests.support.pipeline import check_reports
from tests.support.up import processes_of, start_up, wait_closed

pytestmark = pytest.mark.slow
UNIT = Path(__file__).resolve().parents[2] / "deploy" / "systemd"


@pytest.fixture
def host(tmp_path):
    """The environment of one host's stack on free ports, its data directory and a replay file."""
    env = {
        **os.environ,
        "PORTFLOW_HOME": str(tmp_path / "home"),
        "PORTFLOW_DATA_DIR": str(tmp_path / "data"),
        "PORTFLOW_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
        "PORTFLOW_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        "PORTFLOW_METRICS_ADDR": f"127.0.0.1:{free_port()}",
        "PORTFLOW_API_ADDR": f"127.0.0.1:{free_port()}",
        "PORTFLOW_PROMETHEUS_ADDR": f"127.0.0.1:{free_port()}",
        "PORTFLOW_TZ": "Asia/Shanghai",
    }
    path = tmp_path / "events.jsonl"
    generate_sample(str(path), events=6000, seed=26)
    yield env, path, Oracle(str(path))
    for pid in processes_of(env):  # a failed drill leaves nothing running
        os.kill(pid, signal.SIGKILL)


UP = [sys.executable, "-m", "entrypoints.cli", "up", "--broker", "apache-kafka"]


def store_of(env) -> RedisStore:
    settings = Settings.from_env(env)
    return RedisStore.from_url(settings.redis_url, settings.topic_prefix)


def stop(process: subprocess.Popen, how: int = signal.SIGINT) -> str:
    process.send_signal(how)
    out, _ = process.communicate(timeout=90)
    assert process.returncode == 0, out
    return out


def replay(env, path: Path) -> None:
    portflow(env, "replay", str(path), "--wait", "--timeout", "240")


def wait_for_marks(env, wanted: dict[str, int], timeout: float = 120) -> None:
    store = store_of(env)
    deadline = time.monotonic() + timeout
    while store.marks() != wanted:
        assert time.monotonic() < deadline, (store.marks(), wanted)
        time.sleep(0.2)


def halves(path: Path) -> tuple[Path, Path]:
    """The replay file cut in two, in order: what the oracle reads at once, replayed in turns."""
    lines = path.read_bytes().splitlines(keepends=True)
    first, second = path.with_suffix(".1.jsonl"), path.with_suffix(".2.jsonl")
    first.write_bytes(b"".join(lines[: len(lines) // 2]))
    second.write_bytes(b"".join(lines[len(lines) // 2 :]))
    return first, second


def test_ctrl_c_then_sigkill_of_everything_mid_replay_keep_every_total_exact(host):
    env, path, oracle = host
    first, second = halves(path)
    stack = start_up(UP, env)
    replay(env, first)
    marks, outcomes = store_of(env).marks(), store_of(env).outcomes()
    out = stop(stack)  # Ctrl-C
    assert "the data is kept in" in out
    wait_closed(env)

    stack = start_up(UP, env)
    time.sleep(3)  # the worker has its partitions: it would re-read now if it were going to
    assert store_of(env).marks() == marks  # resumed from its marks, nothing re-read
    assert store_of(env).outcomes() == outcomes  # neither applied nor skipped again

    rest = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "entrypoints.cli",
            "replay",
            str(second),
            "--batch",
            "20",
            "--rate",
            "1000",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while store_of(env).outcomes().applied < outcomes.applied + 200:
        assert time.monotonic() < deadline, "the worker made no progress"
        time.sleep(0.05)
    for pid in processes_of(env):  # no clean shutdown of anything: up, Kafka, Redis, worker
        os.kill(pid, signal.SIGKILL)
    rest.wait(30)
    stack.wait(30)
    wait_closed(env)
    assert redis_is_down(env)

    stack = start_up(UP, env)  # takes over the dead process's lock
    assert store_of(env).outcomes().applied < len(oracle.events)  # the kill cut the replay
    replay(env, second)  # the same file again, in full
    check_reports(env, oracle)
    assert store_of(env).outcomes().applied == len(oracle.events)  # each event counted once
    stop(stack)


def redis_is_down(env) -> bool:
    """Whether Redis is gone too (the kill reached every process)."""
    import redis

    try:
        store_of(env).client.ping()
    except redis.ConnectionError:
        return True
    return False


def unit_command_line(env) -> list[str]:
    """The unit's ExecStart, its ${VARIABLES} from ``env``, run by this interpreter."""
    text = (UNIT / "portflow.service").read_text()
    exec_start = re.search(r"^ExecStart=(.+)$", text, re.M)[1]
    argv = [re.sub(r"\$\{(\w+)\}", lambda m: env[m[1]], word) for word in shlex.split(exec_start)]
    assert Path(argv[0]).name == "portflow"
    return [sys.executable, "-m", "entrypoints.cli", *argv[1:]]


def unit_environment(env) -> dict[str, str]:
    """The unit's environment file, then this test's ports and directories over it."""
    found = {}
    for line in (UNIT / "portflow.env").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            found[name] = value
    assert set(found) >= {"PORTFLOW_DATA_DIR", "PORTFLOW_KAFKA_BOOTSTRAP", "PORTFLOW_REDIS_URL"}
    return {**os.environ, **found, **env}


def data_dir_bytes(env) -> dict[str, float]:
    """The worker's portflow_data_dir_bytes by part."""
    from urllib.request import urlopen

    from prometheus_client.parser import text_string_to_metric_families

    text = urlopen(f"http://{env['PORTFLOW_METRICS_ADDR']}/metrics", timeout=5).read().decode()
    family = next(
        f for f in text_string_to_metric_families(text) if f.name == "portflow_data_dir_bytes"
    )
    return {sample.labels["part"]: sample.value for sample in family.samples}


def last_aof_file(data: Path) -> Path:
    manifest = (data / "redis" / "appendonlydir" / "appendonly.aof.manifest").read_text()
    name = re.findall(r"file (\S+) seq \d+ type i", manifest)[-1]
    return data / "redis" / "appendonlydir" / name


def test_a_torn_aof_lost_redis_and_lost_kafka_log_under_the_systemd_command_line(host):
    env, path, oracle = host
    env = unit_environment(env)
    data = Path(env["PORTFLOW_DATA_DIR"])
    command = unit_command_line(env)
    stack = start_up(command, env)
    replay(env, path)
    marks = store_of(env).marks()
    sizes = data_dir_bytes(env)
    assert sizes["kafka"] > 100_000, sizes
    assert sizes["redis"] > 10_000, sizes
    stop(stack, signal.SIGTERM)  # as systemd stops it
    wait_closed(env)

    aof = last_aof_file(data)
    assert aof.stat().st_size > 1000
    with open(aof, "r+b") as torn:  # a crash in the middle of writing the last step
        torn.truncate(aof.stat().st_size - 7)
    stack = start_up(command, env)
    assert b"aof-load-truncated" in (data / "run" / "logs" / "redis.log").read_bytes()
    wait_for_marks(env, marks)  # the lost tail read again from Kafka
    check_reports(env, oracle)
    stop(stack, signal.SIGTERM)
    wait_closed(env)

    shutil.rmtree(data / "redis")  # Redis' data lost, Kafka's log kept: rebuilt from Kafka
    stack = start_up(command, env)
    wait_for_marks(env, marks)
    check_reports(env, oracle)
    store = store_of(env)  # as if Kafka lost acknowledged records that Redis had applied
    store.client.hset(store.marks_key, f"{Settings.from_env(env).topic('shipment')}:0", 10**6)
    stop(stack, signal.SIGTERM)
    wait_closed(env)
    refused = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "past the end of Kafka's log" in refused.stderr
    wait_closed(env)

    shutil.rmtree(data / "kafka")  # Kafka's log lost, Redis kept: refused, nothing counted
    refused = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "counting on would count events twice" in refused.stderr
    assert "Traceback" not in refused.stderr
    wait_closed(env)
    assert not (data / "up.lock").exists()


def test_a_demo_on_a_kept_stack_shows_the_same_figures_again_without_replaying(host):
    env = host[0]

    def demo() -> subprocess.CompletedProcess:
        done = subprocess.run(
            [*UP[:3], "demo", "--once", "--scale", "0.01"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        return done

    def figures(out: str) -> list[str]:  # the view but for its pipeline lines (they differ)
        lines = out.splitlines()
        tables = next(i for i, line in enumerate(lines) if line.startswith("Value by port"))
        return lines[:1] + lines[tables:]

    first, second = demo(), demo()
    assert "replaying" in first.stderr
    assert "not replayed again" in second.stderr
    assert figures(second.stdout) == figures(first.stdout)
    assert first.stdout.count("✓ matches") == 21  # the dollar figures among them
