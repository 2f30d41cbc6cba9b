"""The `portflow` command in tests: a separate process with its own environment, as a user runs
it, or in this process (click's runner)."""

import subprocess
import sys

from portflow.config import Settings


def portflow(env: dict, *args: str, timeout: float = 600) -> str:
    """Run `portflow ARGS…`, assert it succeeded, return its standard output."""
    done = subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


# Servers nothing listens on: a command reaching for one fails (Kafka only after its 30 s wait).
UNREACHABLE = {
    "PORTFLOW_KAFKA_BOOTSTRAP": "127.0.0.1:1",
    "PORTFLOW_REDIS_URL": "redis://127.0.0.1:1/0",
}


def invoke_unreachable(*args: str):
    """`portflow ARGS…` in this process (click's runner), with ``UNREACHABLE`` servers."""
    from click.testing import CliRunner

    from entrypoints.cli import cli

    return CliRunner().invoke(cli, list(args), env=UNREACHABLE)


def invoke(settings: Settings, *args: str):
    """`portflow ARGS…` in this process (click's runner) on the settings' Redis state."""
    from click.testing import CliRunner

    from entrypoints.cli import cli

    return CliRunner().invoke(
        cli,
        list(args),
        env={
            "PORTFLOW_REDIS_URL": settings.redis_url,
            "PORTFLOW_TOPIC_PREFIX": settings.topic_prefix,
            "PORTFLOW_TZ": settings.tz_name,
        },
    )
