"""`portflow` starts fast: a command imports what it needs when it runs, so the CLI itself, its
help and the report's path load none of the worker's, the producers' or the live view's
libraries. Each check runs in a fresh interpreter (this one has imported everything)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

# The stream processor's, the Kafka clients', the HTTP API's, the progress bars' and the live
# view's libraries, and the scenario generator, which only some commands use.
HEAVY = (
    "faust",
    "aiokafka",
    "kafka",
    "fastapi",
    "uvicorn",
    "pydantic",
    "rich",
    "tqdm",
    "producers.scenarios.xinjiang",
)


def modules_loaded_by(code: str) -> set[str]:
    """The top-level names and modules in ``sys.modules`` after running ``code`` in a fresh
    interpreter."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.splitlines()[-1]))


def heavy_among(modules: set[str], also: tuple[str, ...] = ()) -> list[str]:
    return sorted(m for m in HEAVY + also if m in modules)


def test_importing_the_cli_loads_no_kafka_client_no_redis_and_no_faust():
    assert heavy_among(modules_loaded_by("import entrypoints.cli"), also=("redis",)) == []


@pytest.mark.parametrize(
    "command",
    [
        ["--help"],
        ["report", "--help"],
        ["worker", "--help"],
        ["serve", "--help"],
        ["dlq", "list", "--help"],
    ],
)
def test_a_commands_help_loads_no_heavy_library(command):
    code = (
        "from entrypoints.cli import cli\n"
        f"cli.main({command!r}, prog_name='portflow', standalone_mode=False)"
    )
    assert heavy_among(modules_loaded_by(code), also=("redis",)) == []


def test_what_a_report_imports_loads_no_kafka_client_no_faust_and_no_progress_bars():
    modules = modules_loaded_by(
        "import entrypoints.cli, portflow.domain.report, "
        "portflow.services.reports, portflow.services.state"
    )
    assert heavy_among(modules) == []


def test_a_client_libraries_error_is_told_apart_without_importing_the_library():
    from kafka.errors import KafkaError, KafkaTimeoutError

    from entrypoints.cli.base import raised_by

    assert raised_by(KafkaTimeoutError(), "kafka.errors", "KafkaError")
    assert not raised_by(ValueError(), "kafka.errors", "KafkaError")
    assert not raised_by(KafkaError(), "a.module.never.imported", "KafkaError")
