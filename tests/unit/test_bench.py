"""The bench package runs as ``python -m bench.<name>``, and its typed results give the figures
and the table they always gave."""

from __future__ import annotations

import json
import subprocess

import pytest

from bench import core
from bench.harness import Machine
from bench.pipeline.latency import LatencyRun
from bench.pipeline.report import Ceilings, PipelineRun, goals, table
from bench.pipeline.worker import Batches, WorkerRun
from producers.replay import ReplayResult
from tests.bench import REPO, bench_command

ENTRY_POINTS = ("pipeline", "peers", "core", "scale", "api", "soak", "detection")

# The keys of ``python -m bench.pipeline --json`` before it returned typed results.
PIPELINE_KEYS = [
    "events",
    "raw_consume_per_s",
    "faust_noop_per_s",
    "faust_noop_uvloop_per_s",
    "worker_single_per_s",
    "worker_batched_per_s",
    "batched_ratio_vs_raw",
    "single_ratio_vs_faust_noop",
    "single_ratio_vs_faust_noop_uvloop",
    "p50_latency_ms",
    "p99_latency_ms",
    "max_latency_ms",
    "p50_latency_from_send_ms",
    "p99_latency_from_send_ms",
    "latency_rate_per_s",
    "latency_events",
    "p50_fetch_latency_ms",
    "p99_fetch_latency_ms",
    "p50_latency_paced_batch_ms",
    "p99_latency_paced_batch_ms",
    "max_latency_paced_batch_ms",
    "latency_paced_batch_events_per_record",
    "worker_peak_rss_mb",
    "worker_rss_after_assignment_mb",
    "worker_rss_end_mb",
    "worker_rss_growth_during_batched_mb",
    "worker_rss_by_quarter_batched_mb",
    "worker_single_peak_rss_mb",
    "worker_rss_by_quarter_single_mb",
    "worker_latency_peak_rss_mb",
    "worker_batched_cpu_us_per_event",
    "worker_batched_cpu_utilisation",
    "redis_batched_cpu_us_per_event",
    "redis_lua_us_per_event_batched",
    "worker_single_cpu_us_per_event",
    "worker_single_cpu_utilisation",
    "replay_events_per_s",
    "replay_single_events_per_s",
    "batched_records",
    "worker_single_seconds",
    "worker_batched_seconds",
    "broker",
    "date",
    "cpus",
    "loadavg_1m_at_end",
    "python",
]


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_every_benchmark_runs_as_a_module_of_the_bench_package(name):
    done = subprocess.run(
        bench_command(name, "--help"), cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith(f"usage: python -m bench.{name} ")


def test_no_benchmark_edits_the_import_path():
    sources = list((REPO / "bench").rglob("*.py"))
    assert [str(p) for p in sources if "sys.path" in p.read_text()] == []


def test_the_pure_core_benchmark_gives_each_stage_per_event_and_their_total(capsys):
    assert core.main(["--events", "1000", "--repeat", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    us = result["us_per_event"]
    assert list(us) == ["parse", "aggregate", "process", "metrics", "bookkeeping", "total"]
    assert us["total"] == round(us["process"] + us["metrics"], 2)
    assert result["events_per_s"] == round(1e6 / us["total"])


def worker_run(events_per_s: float, cpu_s: float) -> WorkerRun:
    return WorkerRun(
        events_per_s=events_per_s,
        seconds=2.0,
        records=400,
        peak_rss_mb=150.0,
        rss_after_assignment_mb=100.0,
        rss_end_mb=140.0,
        rss_samples=[(0.0, 100.0), (1.0, 140.0)],
        worker_cpu_s=cpu_s,
        redis_cpu_s=1.0,
        lua_calls=40,
        lua_s=0.8,
        wall_s=4.0,
        batches=Batches(),
        rss_by_quarter_mb=[100, 120, 130, 140, 140],
        workers=1,
        worker_cpu_s_each=[cpu_s],
        peak_rss_mb_each=[150.0],
        partitions_each=[24],
        batches_each=[Batches()],
        broker_cpu_s=0.5,
        bench_cpu_s=0.1,
        machine_busy_cpu_s=6.0,
        applied_at_assignment=0,
    )


def latency_run(p99_ms: float) -> LatencyRun:
    return LatencyRun(
        batch=1,
        records=50_000,
        rate_target=5000,
        rate_achieved=4990.0,
        events=50_000,
        p50_ms=60.0,
        p99_ms=p99_ms,
        max_ms=300.0,
        p50_from_send_ms=70.0,
        p99_from_send_ms=p99_ms + 10,
        applied_before_ack=0,
        samples=50_000,
        peak_rss_mb=110.0,
        timeline_p50_ms=[60] * 10,
        fetch_p50_ms=None,
        fetch_p99_ms=None,
    )


def test_a_pipeline_run_gives_the_same_figures_table_and_goals_as_before():
    run = PipelineRun(
        events=100_000,
        broker="tansu",
        ceilings=Ceilings(100_000.0, 10_000.0, 12_000.0),
        published_single=ReplayResult(events=100_000, records=100_000, seconds=5.0),
        published_batched=ReplayResult(events=100_000, records=200, seconds=0.5),
        single=worker_run(20_000.0, 5.0),
        batched=worker_run(60_000.0, 3.0),
        latency=latency_run(120.0),
        paced_batch=latency_run(300.0),
        machine=Machine("2026-12-07T22:00:00+00:00", 2, 1.5, "3.11.7"),
    )
    figures = run.figures()
    assert list(figures) == PIPELINE_KEYS
    assert figures["batched_ratio_vs_raw"] == 0.6
    assert figures["single_ratio_vs_faust_noop"] == 2.0
    assert figures["worker_rss_growth_during_batched_mb"] == 40.0
    assert figures["worker_batched_cpu_us_per_event"] == 30.0
    assert [goal.met for goal in goals(figures)] == [True, True, True, True]
    text = table(figures)
    rows = {line[:60].rstrip(): line[60:].strip() for line in text.splitlines()[:16]}
    assert rows["worker, batch records (500)"] == "60,000 events/s"
    assert rows["raw consumer fetch latency p50 / p99"].startswith("n/a / n/a")
    assert text.endswith("met   replay --max ≥ 50,000 events/s")
