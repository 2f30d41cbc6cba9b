"""Every `portflow` command, run as a user runs it, with hostile arguments: each must end with a
message and exit 0, 1 or 2, never a traceback.

The commands are enumerated from the click group, so a new command is covered as soon as it
exists: each option and argument is given, one at a time, the hostile values of its type
(negative, zero, huge, not a number, NaN and infinity, missing, a directory, an unwritable path,
an unknown choice, an empty string), on top of the smallest arguments the command runs with.
Named cases add what a type cannot say (bad periods, files with bad lines, the issue's reports).

Nothing real is touched: Kafka and Redis point at free ports on 127.0.0.2, where nothing listens
(a refused connection; `up` and `demo` refuse to start an embedded stack off 127.0.0.1), the
API at a network address without a token (`serve` refuses to start), and PORTFLOW_HOME is a
temporary directory. The commands run in parallel, once, for the whole module:
those that reach for Kafka wait out its connection timeout.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click
import pytest

from entrypoints.cli import cli
from entrypoints.processes import free_port

pytestmark = pytest.mark.slow

# The smallest arguments each command runs with, by parameter name ("{tmp}": a scratch
# directory). A command not listed runs with no arguments but the one under test.
VALID = {
    "scenario": {"name": "sample", "out": "{tmp}/out.jsonl", "events": "10"},
    "report": {"period": "2024"},
    "anomalies": {"period": "2024"},
    "verify": {"name": "xinjiang-2024h1"},
    "backfill": {"tsdb_dir": "{tmp}/tsdb"},
    "replay": {"files": "{tmp}/events.jsonl"},
    "rebuild": {"yes": True},
    "dlq replay": {"yes": True},
    "simulate": {"max_events": "1"},
    "demo": {"once": True, "scale": "0.001"},
    "rates load": {"file": "{tmp}/rates.csv"},
}

NUMBERS = ["-1", "0", "99999999999999999999", "x"]
HOSTILE = {
    click.types.IntParamType: NUMBERS,
    click.types.FloatParamType: [*NUMBERS, "nan", "inf"],
    click.Path: ["{tmp}/missing/dir/file.jsonl", "{tmp}", "/proc/portflow-unwritable", ""],
    click.Choice: ["nope"],
    click.types.StringParamType: [""],
}

# Values no type can know of, by (command, parameter name).
EXTRA = {
    ("report", "period"): ["2024-13", "2024-H3", "2024-Q5", "2024-02-30", "1899", "10000", "24"],
    ("anomalies", "period"): ["2024-13", "2024-Q0", "99999-01"],
    ("report", "measure"): ["value"],
    ("report", "by"): ["port,mode,partner", "status", ",", "service"],
    ("anomalies", "by"): ["zone,zone", "port,mode,partner"],
    ("dlq list", "code"): ["no_such_code", "bad_number"],
    ("backfill", "first"): ["2024-02-30", "2024-06-15T00:00"],
    ("backfill", "last"): ["yesterday"],
    ("backfill", "promtool"): ["/no/such/promtool"],
}


def command_paths(group: click.Group = cli, prefix: tuple[str, ...] = ()):
    """(command path, command) of every command and subcommand of the group."""
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from command_paths(command, (*prefix, name))
        else:
            yield " ".join((*prefix, name)), command


def _hostile_values(command_name: str, param: click.Parameter) -> list[str]:
    values = [
        v for kind, hostile in HOSTILE.items() if isinstance(param.type, kind) for v in hostile
    ]
    return values + EXTRA.get((command_name, param.name), [])


def _argv(command: click.Command, values: dict) -> list[str]:
    """The command line that gives each parameter its value (a flag: True)."""
    argv: list[str] = []
    for param in command.params:
        if param.name not in values:
            continue
        value = values[param.name]
        if isinstance(param, click.Argument):
            argv.append(value)
        elif value is True:
            argv.append(param.opts[0])
        else:
            argv.append(f"{param.opts[0]}={value}")  # "=": values starting with "-" stay values
    return argv


def _command_cases():
    """(command, case, arguments after the command, the exit code it must have or None for
    any of 0, 1 and 2) of every command."""
    for name, command in command_paths():
        base = VALID.get(name, {})
        yield name, "no arguments", [], None
        yield name, "an unknown option", ["--no-such-option"], 2
        yield name, "the smallest arguments", _argv(command, base), None
        for param in command.params:
            if getattr(param, "is_flag", False) or param.name == "help":
                continue
            for value in _hostile_values(name, param):
                yield (
                    name,
                    f"{param.name}={value!r}",
                    _argv(command, {**base, param.name: value}),
                    None,
                )
    # The (23) reports, with the exit codes they must now have.
    yield "dlq list", "issue: a negative limit", ["--limit=-1"], 2
    yield "scenario", "issue: into a missing directory", ["sample", "--out=/no/such/dir/x.jsonl"], 1
    yield (
        "scenario",
        "issue: xinjiang at a tiny scale",
        ["xinjiang-2024h1", "--out={tmp}/xj.jsonl", "--scale=0.001"],
        0,
    )
    yield "scenario", "issue: negative events", ["sample", "--out={tmp}/x.jsonl", "--events=-5"], 2
    yield "replay", "issue: a negative timeout", ["{tmp}/events.jsonl", "--timeout=-1"], 2
    yield "replay", "issue: a 2 MB line", ["{tmp}/huge-line.jsonl"], None
    yield "replay", "a file of bad lines", ["{tmp}/bad-lines.jsonl"], None
    yield "replay", "gzip that is not", ["{tmp}/not-gzip.jsonl.gz"], None
    yield "rates load", "a rates file with bad lines", ["{tmp}/bad-lines.jsonl"], 2
    yield "rates load", "a rates file of bad rates", ["{tmp}/bad-rates.csv"], 2


def _cases():
    yield "", "no command", [], None
    yield "", "an unknown command", ["nope"], 2
    yield "dlq", "no subcommand", [], None
    yield "rates", "no subcommand", [], None
    for name, label, args, exit_code in _command_cases():
        yield name, label, name.split() + args, exit_code


CASES = [
    pytest.param(argv, exit_code, id=f"{name}: {label}")
    for name, label, argv, exit_code in _cases()
]


def _scratch(tmp: Path) -> None:
    """The files the cases name."""
    (tmp / "events.jsonl").write_text(
        '{"type":"train","event_id":"t1","ts":"2024-03-01T08:00:00+08:00","port":"khorgos",'
        '"service":"china-europe","direction":"outbound","teu":50}\n'
    )
    (tmp / "huge-line.jsonl").write_text(
        '{"type":"shipment","event_id":"' + "x" * 2_000_000 + '"}\n'
    )
    (tmp / "bad-lines.jsonl").write_bytes(b"\xff\xfe\n[]\n{}\nnull\n" + b"{" * 100_000 + b"\n")
    (tmp / "not-gzip.jsonl.gz").write_text("plain text\n")
    (tmp / "rates.csv").write_text("month,rate,source\n2024-01,7.2570,a\n")
    (tmp / "bad-rates.csv").write_text(
        "month,rate,source\n2024-13,nan,\n2024-01,1e3,a\n" + "2024-02,7,a\n" * 20
    )


@pytest.fixture(scope="module")
def runs(request, tmp_path_factory) -> dict[tuple[str, ...], subprocess.CompletedProcess]:
    """Every selected case's run, all at once in parallel."""
    tmp = tmp_path_factory.mktemp("hostile")
    _scratch(tmp)
    env = {
        **os.environ,
        "PORTFLOW_KAFKA_BOOTSTRAP": f"127.0.0.2:{free_port()}",
        "PORTFLOW_REDIS_URL": f"redis://127.0.0.2:{free_port()}/0",
        "PORTFLOW_METRICS_ADDR": f"127.0.0.1:{free_port()}",
        "PORTFLOW_PROMETHEUS_ADDR": f"127.0.0.1:{free_port()}",
        # beyond loopback without a token: `serve` refuses at once instead of serving
        "PORTFLOW_API_ADDR": f"192.0.2.1:{free_port()}",
        "PORTFLOW_HOME": str(tmp / "home"),
    }
    selected = list(
        {
            tuple(item.callspec.params["argv"])
            for item in request.session.items
            if item.module is request.module
        }
    )

    def run(argv: tuple[str, ...]) -> subprocess.CompletedProcess:
        args = [a.replace("{tmp}", str(tmp)) for a in argv]
        return subprocess.run(
            [sys.executable, "-m", "entrypoints.cli", *args],
            env=env,
            cwd=tmp,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )

    with ThreadPoolExecutor(max_workers=48) as pool:  # most of them wait for Kafka
        return dict(zip(selected, pool.map(run, selected), strict=True))


@pytest.mark.parametrize(("argv", "exit_code"), CASES)
def test_a_hostile_command_line_gets_a_message_and_an_exit_code_never_a_traceback(
    runs, argv, exit_code
):
    done = runs[tuple(argv)]
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output[-3000:]
    assert done.returncode in (0, 1, 2), output[-3000:]
    if exit_code is not None:
        assert done.returncode == exit_code, output[-3000:]
    if done.returncode:  # one line says why: no usage block, no "Aborted!"
        said = done.stderr.splitlines()
        assert (
            sum(
                line.startswith("portflow: ") and not line.startswith("portflow: warning")
                for line in said
            )
            == 1
        ), output[-3000:]
        assert not any(line.startswith(("Usage: ", "Error: ", "Aborted")) for line in said), output[
            -3000:
        ]
