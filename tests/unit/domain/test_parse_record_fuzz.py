"""A short coverage-guided fuzz run of ``parse_record`` (fuzz/fuzz_parse_record.py, atheris):
no input may raise out of it or reach its ``internal_error`` catch-all. The long run and its
figures are in fuzz/README.md."""

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from portflow.domain import events

REPO = Path(__file__).resolve().parents[3]
TARGET = REPO / "fuzz" / "fuzz_parse_record.py"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("atheris") is None, reason="atheris is not installed"
    ),
]


def fuzz(tmp_path: Path, *options: str) -> subprocess.CompletedProcess:
    corpus = tmp_path / "corpus"
    shutil.copytree(REPO / "fuzz" / "seeds", corpus)
    return subprocess.run(
        [sys.executable, str(TARGET), *options, f"-artifact_prefix={tmp_path}/", str(corpus)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )


def test_a_short_fuzz_run_finds_no_input_that_breaks_parse_record(tmp_path):
    done = fuzz(tmp_path, "-max_total_time=30", "-print_final_stats=1")
    assert done.returncode == 0, done.stderr[-3000:]
    runs = int(done.stderr.split("stat::number_of_executed_units:")[1].split()[0])
    assert runs > 10_000, done.stderr[-2000:]


BELL_FAULT = """
import portflow.domain.events as events
real = events.parse_event
def parse_event(raw, expected_type):
    if b"\\x07" in raw:
        raise KeyError("bell")
    return real(raw, expected_type)
events.parse_event = parse_event
"""


def test_the_fuzz_target_reports_a_fault(tmp_path, monkeypatch):
    """The target can fail: with a parser that raises for one byte, the fuzzer finds an input
    that reaches the catch-all, and writes it out."""
    (tmp_path / "sitecustomize.py").write_text(BELL_FAULT)
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}:{REPO}")
    done = fuzz(tmp_path, "-max_total_time=120")
    assert done.returncode != 0, done.stderr[-2000:]
    [crash] = tmp_path.glob("crash-*")
    real = events.parse_event

    def parse_event(raw, expected_type):  # the same fault here: the input kept reaches it
        if b"\x07" in raw:
            raise KeyError("bell")
        return real(raw, expected_type)

    monkeypatch.setattr(events, "parse_event", parse_event)
    _, rejections = events.parse_record(crash.read_bytes()[1:], "shipment")
    assert any(r.reason == "internal error: KeyError: 'bell'" for r in rejections)
