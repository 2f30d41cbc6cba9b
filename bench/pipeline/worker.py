"""The worker end to end: ``portflow worker`` processes on a preloaded topic, timed by their
Redis marks from first move to the published end offsets, with the CPU and memory of every
process meanwhile. Also used by ``bench.peers`` and ``bench.scale``."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.request import urlopen

from bench.harness import (
    Bench,
    Offsets,
    cpu_seconds,
    machine_busy_cpu_seconds,
    mark_ranges,
    progress,
    rss_mb,
)
from bench.pipeline.profiling import start_py_spy, stop_py_spy
from entrypoints.embedded import wait_for_assignment, wait_until_owning
from entrypoints.processes import Child, free_port
from portflow.adapters.redis import RedisStore
from portflow.config import Settings

POLL_S = 0.010
BATCH_METRICS = (
    "portflow_batch_events",
    "portflow_batch_processing_seconds",
    "portflow_redis_write_seconds",
)


@dataclass(frozen=True)
class Batches:
    """A worker's batches of records and atomic Redis steps, from its /metrics."""

    batches: int = 0
    events_per_batch: float | None = None
    ms_per_batch: float | None = None
    redis_steps: int = 0
    ms_per_redis_step: float | None = None

    def describe(self) -> str:
        if not self.batches:
            return "no batches seen in /metrics"
        return (
            f"{self.batches:,} batches of {self.events_per_batch:.1f} events, "
            f"{self.ms_per_batch:.1f} ms each in process(); {self.redis_steps:,} Redis "
            f"steps of {self.ms_per_redis_step:.1f} ms"
        )


def worker_batches(metrics_addr: str) -> Batches:
    """From the worker's /metrics: its batches and atomic Redis steps (nothing if unreadable)."""
    try:
        text = urlopen(f"http://{metrics_addr}/metrics", timeout=5).read().decode()
    except OSError as exc:
        progress(f"could not read the worker's metrics: {exc}")
        return Batches()
    values = batch_sums(text)
    batches = values.get("portflow_batch_events_count", 0)
    steps = values.get("portflow_redis_write_seconds_count", 0)
    return Batches(
        batches=int(batches),
        events_per_batch=values.get("portflow_batch_events_sum", 0) / batches if batches else None,
        ms_per_batch=(
            1000 * values.get("portflow_batch_processing_seconds_sum", 0) / batches
            if batches
            else None
        ),
        redis_steps=int(steps),
        ms_per_redis_step=(
            1000 * values.get("portflow_redis_write_seconds_sum", 0) / steps if steps else None
        ),
    )


def batch_sums(metrics_text: str) -> dict[str, float]:
    """The ``_sum`` and ``_count`` of the batch metrics over shipments (all steps for Redis)."""
    values: dict[str, float] = {}
    for line in metrics_text.splitlines():
        for name in BATCH_METRICS:
            for part in ("_sum", "_count"):
                if line.startswith(name + part) and (
                    'type="shipment"' in line
                    or "{" not in line
                    or name == "portflow_redis_write_seconds"
                ):
                    values[name + part] = values.get(name + part, 0.0) + float(line.split()[-1])
    return values


class MarkPoller(threading.Thread):
    """Polls the partitions' marks in Redis every 10 ms: progress samples and (optionally) RSS."""

    def __init__(self, store: RedisStore, firsts: dict[str, int], lasts: dict[str, int]) -> None:
        super().__init__(daemon=True)
        self.store = store
        self.names = sorted(lasts)
        self.firsts, self.lasts = firsts, lasts
        self.total = sum(lasts[n] - firsts[n] + 1 for n in self.names)
        self.samples: list[tuple[float, int]] = []  # (monotonic, records applied)
        self.rss: list[tuple[float, float]] = []  # (fraction applied, MB)
        self.pid: int | None = None
        self.done = threading.Event()
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._poll()
        except BaseException as exc:  # reported by the caller
            self.error = exc
            self.done.set()

    def _poll(self) -> None:
        n = 0
        while not self.stopping.is_set():
            applied = self._applied()
            self.samples.append((time.monotonic(), applied))
            if self.pid and n % 20 == 0:
                value = rss_mb(self.pid)
                if value is not None:
                    self.rss.append((applied / self.total, value))
            n += 1
            if applied >= self.total:
                self.done.set()
                return
            time.sleep(POLL_S)

    def _applied(self) -> int:
        marks = self.store.marks_of(self.names)
        return sum(
            min(max(marks[k] - self.firsts[k] + 1, 0), self.lasts[k] - self.firsts[k] + 1)
            for k in self.names
        )

    def rate(self, since: float | None = None) -> tuple[float, float]:
        """(records per second, seconds) from the first move of the marks to the last; from
        ``since`` instead if the marks had moved by then (records applied before a rebalance)."""
        if since is not None:
            t_since, a_since = next((s for s in self.samples if s[0] >= since), self.samples[-1])
            seconds = self.samples[-1][0] - t_since
            if 0 < a_since < self.total and seconds > 0:
                return (self.total - a_since) / seconds, seconds
        first = next(i for i, (_, a) in enumerate(self.samples) if a > 0)
        t_first, a_first = self.samples[first]
        t_end = self.samples[-1][0]
        if a_first < self.total and t_end > t_first:
            return (self.total - a_first) / (t_end - t_first), t_end - t_first
        # everything moved at once: count from the last sample that saw nothing
        t_zero = self.samples[first - 1][0] if first else t_first - POLL_S
        return self.total / (t_end - t_zero), t_end - t_zero

    def rss_by_quarter(self) -> list[int | None]:
        """RSS (MB) when 0, 25, 50, 75 and 100 % of the records were applied."""
        return [
            round(min(self.rss, key=lambda sample: abs(sample[0] - q))[1]) if self.rss else None
            for q in (0, 0.25, 0.5, 0.75, 1)
        ]


@dataclass(frozen=True)
class CpuCounters:
    """CPU seconds so far of the workers, Redis, the broker, this process and the machine."""

    workers: list[float]
    redis: float
    broker: float
    bench: float
    machine: float
    at: float = field(default_factory=time.monotonic)

    @classmethod
    def read(cls, bench: Bench, pids: list[int]) -> CpuCounters:
        return cls(
            workers=[cpu_seconds(pid) or 0.0 for pid in pids],
            redis=cpu_seconds(bench.redis_pid) or 0.0,
            broker=cpu_seconds(bench.broker_pid) or 0.0,
            bench=cpu_seconds(os.getpid()) or 0.0,
            machine=machine_busy_cpu_seconds(),
        )

    def since(self, start: CpuCounters) -> CpuCounters:
        return CpuCounters(
            workers=[now - then for now, then in zip(self.workers, start.workers, strict=True)],
            redis=self.redis - start.redis,
            broker=self.broker - start.broker,
            bench=self.bench - start.bench,
            machine=self.machine - start.machine,
            at=self.at - start.at,
        )


def lua_stats(store: RedisStore) -> tuple[int, int]:
    """(calls, microseconds) of EVALSHA in this Redis: the server side of the apply steps."""
    stats = store.client.info("commandstats").get("cmdstat_evalsha", {})
    return int(stats.get("calls", 0)), int(stats.get("usec", 0))


@dataclass(frozen=True)
class WorkerRun:
    """What one run of ``workers`` workers on a preloaded topic measured."""

    events_per_s: float
    seconds: float  # from the first move of the marks (or the assignment) to the end offsets
    records: int
    peak_rss_mb: float
    rss_after_assignment_mb: float | None
    rss_end_mb: float | None
    rss_samples: list[tuple[float, float]]  # (fraction applied, MB) of the first worker
    worker_cpu_s: float  # all workers
    redis_cpu_s: float
    lua_calls: int
    lua_s: float
    wall_s: float  # from the assignment to the end
    batches: Batches  # the first worker's
    rss_by_quarter_mb: list[int | None]
    workers: int
    worker_cpu_s_each: list[float]
    peak_rss_mb_each: list[float]
    partitions_each: list[int]
    batches_each: list[Batches]
    broker_cpu_s: float
    bench_cpu_s: float
    machine_busy_cpu_s: float
    applied_at_assignment: int


@dataclass
class _Running:
    """Workers started on a topic, with the poller of their marks."""

    bench: Bench
    settings: Settings
    name: str
    envs: list[dict[str, str]]
    children: list[Child]
    store: RedisStore
    poller: MarkPoller

    @property
    def pids(self) -> list[int]:
        return [child.process.pid for child in self.children]


def measure_worker(
    bench: Bench,
    settings: Settings,
    env: dict[str, str],
    offsets: Offsets,
    events: int,
    name: str,
    profile_to: Path | None = None,
    workers: int = 1,
) -> WorkerRun:
    """Start ``workers`` workers together on a preloaded topic; time the marks from first move
    to the end offsets.

    With several workers, each gets its own metrics port, the timing starts only once every one
    of them owns partitions (the first may apply records alone before the group rebalances;
    ``applied_at_assignment`` says how many), and CPU, RSS and batches are summed or kept per
    worker (``*_each``); py-spy follows the first.
    """
    running = _start_workers(bench, settings, env, offsets, name, workers)
    try:
        return _measure(running, events, profile_to)
    finally:
        running.poller.stopping.set()
        for child in running.children:
            bench.stop(child)


def _start_workers(
    bench: Bench,
    settings: Settings,
    env: dict[str, str],
    offsets: Offsets,
    name: str,
    workers: int,
) -> _Running:
    firsts, lasts = mark_ranges(offsets)
    store = RedisStore.from_url(settings.redis_url, settings.topic_prefix)
    poller = MarkPoller(store, firsts, lasts)
    poller.start()  # before the workers: they may apply records before the assignment is seen
    envs = [env] + [
        {**env, "PORTFLOW_METRICS_ADDR": f"127.0.0.1:{free_port()}"} for _ in range(workers - 1)
    ]
    children = [
        bench.start_worker(worker_env, name if i == 0 else f"{name}-{i + 1}")
        for i, worker_env in enumerate(envs)
    ]
    return _Running(bench, settings, name, envs, children, store, poller)


def _measure(running: _Running, events: int, profile_to: Path | None) -> WorkerRun:
    started = time.monotonic()
    _wait_for_every_assignment(running)
    poller, pids = running.poller, running.pids
    applied_at_assignment = poller.samples[-1][1] if poller.samples else 0
    poller.pid = pids[0]  # RSS samples from here on
    rss_start = rss_mb(pids[0])
    cpu_start = CpuCounters.read(running.bench, pids)
    lua_start = lua_stats(running.store)
    progress(
        f"{running.name}: partitions assigned after {time.monotonic() - started:.1f}s "
        f"(RSS {rss_start:.0f} MB; {applied_at_assignment} records applied already)"
    )
    spy = start_py_spy(pids[0], profile_to) if profile_to is not None else None
    try:
        _wait_until_applied(running, events)
        peaks = [rss_mb(pid, "VmHWM") or 0.0 for pid in pids]
        rss_end = rss_mb(pids[0])
        cpu = CpuCounters.read(running.bench, pids).since(cpu_start)
        owned = _partitions_owned(running.store)
        time.sleep(0.3)  # the batch that moved the marks last observes its metrics after its acks
        batches = [worker_batches(env["PORTFLOW_METRICS_ADDR"]) for env in running.envs]
        lua_end = lua_stats(running.store)
    finally:
        if spy is not None:
            stop_py_spy(spy)
    since = cpu_start.at if len(pids) > 1 else None
    records_per_s, seconds = poller.rate(since=since)
    run = WorkerRun(
        events_per_s=records_per_s * events / poller.total,
        seconds=seconds,
        records=poller.total,
        peak_rss_mb=max(peaks),
        rss_after_assignment_mb=rss_start,
        rss_end_mb=rss_end,
        rss_samples=poller.rss,
        worker_cpu_s=sum(cpu.workers),
        redis_cpu_s=cpu.redis,
        lua_calls=lua_end[0] - lua_start[0],
        lua_s=(lua_end[1] - lua_start[1]) / 1e6,
        wall_s=cpu.at,
        batches=batches[0],
        rss_by_quarter_mb=poller.rss_by_quarter(),
        workers=len(pids),
        worker_cpu_s_each=cpu.workers,
        peak_rss_mb_each=peaks,
        partitions_each=[owned.get(pid, 0) for pid in pids],
        batches_each=batches,
        broker_cpu_s=cpu.broker,
        bench_cpu_s=cpu.bench,
        machine_busy_cpu_s=cpu.machine,
        applied_at_assignment=applied_at_assignment,
    )
    _report(running, run, events)
    return run


def _wait_for_every_assignment(running: _Running) -> None:
    wait_for_assignment(running.settings, running.children[0], timeout_s=90)
    if len(running.children) > 1:  # coverage alone could be the first worker's, pre-rebalance
        for child in running.children:
            wait_until_owning(running.settings, child, timeout_s=90)


def _wait_until_applied(running: _Running, events: int) -> None:
    deadline = time.monotonic() + 120 + events / 1000
    while not running.poller.done.wait(0.5):
        for child in running.children:
            if not child.alive():
                raise RuntimeError(f"{child.name} exited:\n{child.tail()}")
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{running.name} did not apply every record in time:\n{running.children[0].tail()}"
            )
    if running.poller.error:
        raise running.poller.error


def _partitions_owned(store: RedisStore) -> dict[int, int]:
    """Partitions owned, by worker PID (the last part of a worker's id)."""
    return {
        int(worker_id.rpartition("-")[2]): len(info["partitions"])
        for worker_id, info in store.workers().items()
    }


def _report(running: _Running, run: WorkerRun, events: int) -> None:
    progress(f"{running.name}: RSS (MB) at 0/25/50/75/100 % applied: {run.rss_by_quarter_mb}")
    progress(
        f"{running.name}: {run.records:,} records ({events:,} events) applied in "
        f"{run.seconds:.2f}s after the first mark moved = {run.events_per_s:,.0f} events/s; "
        f"peak RSS {run.peak_rss_mb:.0f} MB; CPU worker {run.worker_cpu_s:.1f}s "
        f"({1e6 * run.worker_cpu_s / events:.0f} µs/event), redis {run.redis_cpu_s:.1f}s, of "
        f"which {run.lua_calls} apply scripts {run.lua_s:.2f}s "
        f"({1e6 * run.lua_s / events:.1f} µs/event), {running.bench.broker} "
        f"{run.broker_cpu_s:.1f}s, machine {run.machine_busy_cpu_s:.1f}s in {run.wall_s:.2f}s"
    )
    for child, cpu, partitions, batches in zip(
        running.children, run.worker_cpu_s_each, run.partitions_each, run.batches_each, strict=True
    ):
        progress(f"{child.name}: {partitions} partitions, CPU {cpu:.1f}s; {batches.describe()}")
