"""A command whose reader stops early (`portflow rates show | head -1`) stops quietly."""

import os
import subprocess
import sys

import pytest

from portflow.adapters.redis import RedisStore


def run_with_stdout_closed(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[bytes]:
    """``portflow ARGS`` writing to a pipe whose reader has already gone."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, "-m", "entrypoints.cli", *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            env=env,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)


@pytest.fixture
def env_with_rates(redis_url, settings):
    """The environment of a state holding a year of rates (`rates show` prints them)."""
    store = RedisStore.from_url(redis_url, settings.topic_prefix)
    store.put_rates({f"2024-{m:02}": {"rate": "7.2570", "source": "test"} for m in range(1, 13)})
    env = dict(os.environ)
    env.update(PORTFLOW_REDIS_URL=redis_url, PORTFLOW_TOPIC_PREFIX=settings.topic_prefix)
    return env


def test_a_command_whose_output_reader_went_away_stops_without_a_message(env_with_rates):
    done = run_with_stdout_closed(env_with_rates, "rates", "show")

    assert done.returncode == 1  # it could not write what it had to
    assert done.stderr == b""


def test_the_same_command_read_whole_prints_its_rates(env_with_rates):
    done = subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", "rates", "show"],
        capture_output=True,
        env=env_with_rates,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert b"2024-12" in done.stdout
