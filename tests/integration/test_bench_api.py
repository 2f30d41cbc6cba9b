"""`python -m bench.api` in miniature: a tiny scenario, a short load, two freshness markers. Every
answer of the API over the replayed events equals DuckDB's over the same raw events (the
benchmark's independent reading of the replay files), and the load ran without errors."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.bench import REPO, bench_command

pytestmark = pytest.mark.slow


def test_the_api_benchmark_runs_and_every_answer_equals_duckdbs(tmp_path):
    done = subprocess.run(
        bench_command(
            "api",
            "--scale",
            "0.01",
            "--seconds",
            "2",
            "--clients",
            "4",
            "--rate",
            "500",
            "--warmup",
            "1",
            "--markers",
            "2",
            "--open-rate",
            "100",
            "--cli-runs",
            "1",
            "--duckdb-runs",
            "1",
            "--broker",
            "tansu",
            "--json",
        ),
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    compared = {name: q for name, q in result["questions"].items() if "exact" in q}
    assert len(compared) >= 10
    assert "2024-H1 by partner,port" in compared
    assert {name: q["differences"] for name, q in compared.items() if not q["exact"]} == {}
    assert result["errors"] == 0
    assert result["requests"] > 0
    assert result["open_loop"]["errors"] == 0
    assert result["open_loop"]["requests"] == 200
    assert result["markers_not_shown"] == 0
    assert len(result["freshness_ms"]) == 2
    assert all(q["cli_error"] is None for q in result["questions"].values() if "cli_error" in q)
