"""What ``python -m bench.pipeline`` measured, its figures (the JSON line) and its table with
the goals beside them."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from bench.harness import Goal, Machine, ratio, rounded
from bench.pipeline.latency import LatencyRun, ms_or_na
from bench.pipeline.worker import WorkerRun
from producers.replay import ReplayResult


@dataclass(frozen=True)
class Ceilings:
    """Records/s of the client and of a do-nothing Faust agent on the single-event records."""

    raw_consume_per_s: float
    faust_noop_per_s: float
    faust_noop_uvloop_per_s: float


@dataclass(frozen=True)
class PipelineRun:
    """Every measurement of one run, on the same ``events``."""

    events: int
    broker: str
    ceilings: Ceilings
    published_single: ReplayResult
    published_batched: ReplayResult
    single: WorkerRun
    batched: WorkerRun
    latency: LatencyRun  # single-event records
    paced_batch: LatencyRun  # records of what the pace let gather (replay --rate)
    machine: Machine

    def figures(self) -> dict[str, Any]:
        """The figures, flat and rounded, as the JSON line and the table show them."""
        return {
            "events": self.events,
            **self._throughput(),
            **self._latency(),
            **self._memory(),
            **self._cpu(),
            **self._replay(),
            "broker": self.broker,
            **asdict(self.machine),
        }

    def _throughput(self) -> dict[str, Any]:
        c, single, batched = self.ceilings, self.single.events_per_s, self.batched.events_per_s
        return {
            "raw_consume_per_s": round(c.raw_consume_per_s),
            "faust_noop_per_s": round(c.faust_noop_per_s),
            "faust_noop_uvloop_per_s": round(c.faust_noop_uvloop_per_s),
            "worker_single_per_s": round(single),
            "worker_batched_per_s": round(batched),
            "batched_ratio_vs_raw": ratio(batched, c.raw_consume_per_s),
            "single_ratio_vs_faust_noop": ratio(single, c.faust_noop_per_s),
            "single_ratio_vs_faust_noop_uvloop": ratio(single, c.faust_noop_uvloop_per_s),
        }

    def _latency(self) -> dict[str, Any]:
        lat, paced = self.latency, self.paced_batch
        return {
            "p50_latency_ms": round(lat.p50_ms, 1),
            "p99_latency_ms": round(lat.p99_ms, 1),
            "max_latency_ms": round(lat.max_ms, 1),
            "p50_latency_from_send_ms": round(lat.p50_from_send_ms, 1),
            "p99_latency_from_send_ms": round(lat.p99_from_send_ms, 1),
            "latency_rate_per_s": round(lat.rate_achieved),
            "latency_events": lat.events,
            "p50_fetch_latency_ms": rounded(lat.fetch_p50_ms),
            "p99_fetch_latency_ms": rounded(lat.fetch_p99_ms),
            "p50_latency_paced_batch_ms": round(paced.p50_ms, 1),
            "p99_latency_paced_batch_ms": round(paced.p99_ms, 1),
            "max_latency_paced_batch_ms": round(paced.max_ms, 1),
            "latency_paced_batch_events_per_record": round(paced.events / paced.records, 1),
        }

    def _memory(self) -> dict[str, Any]:
        batched, samples = self.batched, self.batched.rss_samples
        growth = samples[-1][1] - samples[0][1] if samples else None
        return {
            "worker_peak_rss_mb": round(batched.peak_rss_mb, 1),
            "worker_rss_after_assignment_mb": rounded(batched.rss_after_assignment_mb),
            "worker_rss_end_mb": rounded(batched.rss_end_mb),
            "worker_rss_growth_during_batched_mb": rounded(growth),
            "worker_rss_by_quarter_batched_mb": batched.rss_by_quarter_mb,
            "worker_single_peak_rss_mb": round(self.single.peak_rss_mb, 1),
            "worker_rss_by_quarter_single_mb": self.single.rss_by_quarter_mb,
            "worker_latency_peak_rss_mb": rounded(self.latency.peak_rss_mb),
        }

    def _cpu(self) -> dict[str, Any]:
        n, single, batched = self.events, self.single, self.batched
        return {
            "worker_batched_cpu_us_per_event": round(1e6 * batched.worker_cpu_s / n, 1),
            "worker_batched_cpu_utilisation": ratio(batched.worker_cpu_s, batched.wall_s, 2),
            "redis_batched_cpu_us_per_event": round(1e6 * batched.redis_cpu_s / n, 1),
            "redis_lua_us_per_event_batched": round(1e6 * batched.lua_s / n, 1),
            "worker_single_cpu_us_per_event": round(1e6 * single.worker_cpu_s / n, 1),
            "worker_single_cpu_utilisation": ratio(single.worker_cpu_s, single.wall_s, 2),
        }

    def _replay(self) -> dict[str, Any]:
        return {
            "replay_events_per_s": round(self.published_batched.events_per_s),
            "replay_single_events_per_s": round(self.published_single.events_per_s),
            "batched_records": self.published_batched.records,
            "worker_single_seconds": round(self.single.seconds, 2),
            "worker_batched_seconds": round(self.batched.seconds, 2),
        }


def goals(f: dict[str, Any]) -> list[Goal]:
    """The pipeline's goals (issue 4), judged on the figures."""
    return [
        Goal("batched worker ≥ 30,000 events/s (goal 50,000)", f["worker_batched_per_s"] >= 30_000),
        Goal("single-event worker ≥ 0.8 × Faust no-op", f["single_ratio_vs_faust_noop"] >= 0.8),
        Goal(
            "p99 < 250 ms at 5,000 events/s",
            f["p99_latency_ms"] < 250 and f["latency_rate_per_s"] >= 4900,
        ),
        Goal("replay --max ≥ 50,000 events/s", f["replay_events_per_s"] >= 50_000),
    ]


def table(f: dict[str, Any]) -> str:
    rows = _throughput_rows(f) + _latency_rows(f) + _resource_rows(f)
    width = max(len(k) for k, _ in rows)
    lines = [f"{k:<{width}}  {v}" for k, v in rows]
    lines.append("")
    lines += [goal.line() for goal in goals(f)]
    return "\n".join(lines)


def _throughput_rows(f: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        ("broker", f["broker"]),
        ("events", f"{f['events']:,}"),
        ("raw consume + json.loads", f"{f['raw_consume_per_s']:,} records/s"),
        ("Faust no-op agent", f"{f['faust_noop_per_s']:,} records/s"),
        ("Faust no-op agent on uvloop", f"{f['faust_noop_uvloop_per_s']:,} records/s"),
        ("worker, single-event records", f"{f['worker_single_per_s']:,} events/s"),
        ("worker, batch records (500)", f"{f['worker_batched_per_s']:,} events/s"),
        ("batched ÷ raw", f"{f['batched_ratio_vs_raw']:.3f}"),
        (
            "single ÷ Faust no-op",
            f"{f['single_ratio_vs_faust_noop']:.3f} "
            f"(÷ the no-op on uvloop: {f['single_ratio_vs_faust_noop_uvloop']:.3f})",
        ),
    ]


def _latency_rows(f: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (
            f"latency at {f['latency_rate_per_s']:,}/s p50 / p99",
            f"{f['p50_latency_ms']:.0f} / {f['p99_latency_ms']:.0f} ms "
            f"(max {f['max_latency_ms']:.0f})",
        ),
        (
            "raw consumer fetch latency p50 / p99",
            f"{ms_or_na(f['p50_fetch_latency_ms'])} / "
            f"{ms_or_na(f['p99_fetch_latency_ms'])} (aiokafka, fetch_max_wait_ms 1500)",
        ),
        (
            f"latency, paced replay batch 500 (~{f['latency_paced_batch_events_per_record']:g} "
            "events/record) p50 / p99",
            f"{f['p50_latency_paced_batch_ms']:.0f} / {f['p99_latency_paced_batch_ms']:.0f} ms",
        ),
    ]


def _resource_rows(f: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (
            "worker peak RSS (batched)",
            f"{f['worker_peak_rss_mb']:.0f} MB "
            f"(after assignment {f['worker_rss_after_assignment_mb']:.0f}, "
            f"end {f['worker_rss_end_mb']:.0f})",
        ),
        (
            "worker CPU per event, batched / single",
            f"{f['worker_batched_cpu_us_per_event']:g} / "
            f"{f['worker_single_cpu_us_per_event']:g} µs (Lua in Redis, batched: "
            f"{f['redis_lua_us_per_event_batched']:g} µs)",
        ),
        ("replay, batch 500", f"{f['replay_events_per_s']:,} events/s"),
        ("replay, batch 1", f"{f['replay_single_events_per_s']:,} events/s"),
    ]
