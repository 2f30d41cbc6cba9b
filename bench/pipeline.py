#!/usr/bin/env python
"""End-to-end throughput and latency benchmark of the portflow pipeline.

    .venv/bin/python bench/pipeline.py [--events N] [--broker tansu|apache-kafka] [--json]
                                       [--profile] [--keep]

Starts its own broker (tansu by default, or a one-node Apache Kafka) and redis-server on free
127.0.0.1 ports (stopped by PID at the end, also on errors), generates N deterministic shipment
events and measures, on those same events:

1. ``raw_consume_per_s``     a group-less aiokafka consumer reading and ``json.loads``-ing N
                             single-event records (the client's ceiling);
2. ``faust_noop_per_s``      a Faust agent that only counts the same records (first → last record),
                             on asyncio's event loop; ``faust_noop_uvloop_per_s`` the same on
                             uvloop, which the worker uses;
3. ``worker_single_per_s``   the real ``portflow worker`` on those single-event records, from the
                             first move of the Redis high-water marks to their reaching the
                             published end offsets;
4. ``worker_batched_per_s``  the same on batch records (replay's default batch of 500);
5. ``p50/p99_latency_ms``    producer acknowledgement → observed in the Redis marks, at a steady
                             5,000 events/s of single-event records for ~10 s;
6. ``worker_peak_rss_mb``    VmHWM of the worker process of the batched run;
7. ``replay_events_per_s``   the publish rate Replayer reported for the batched publish;

and, to explain them: the same latency with paced batch records (as ``replay --rate`` sends), a
raw consumer's fetch latency beside the worker, worker and Redis CPU per event, the time Redis
spends in the apply script, and the worker's takes (from its /metrics).

Progress goes to stderr; stdout gets one JSON line (``--json``) or a table. ``--profile`` adds a
py-spy profile of the worker on a second batched run (if py-spy is installed) and a cProfile of
``BatchProcessor.process`` against the running Redis, printed to stderr. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import cProfile
import io
import json
import math
import os
import platform
import pstats
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from entrypoints.embedded import (  # noqa: E402
    BROKERS,
    start_redis,
    start_tansu,
    start_worker,
    wait_for_assignment,
    wait_until_owning,
)
from entrypoints.kafka_cluster import KafkaCluster  # noqa: E402
from entrypoints.processes import Child, free_port  # noqa: E402
from portflow.adapters.kafka import ensure_topics  # noqa: E402  (kafka-python admin)
from portflow.adapters.redis import RedisStore  # noqa: E402
from portflow.config import Settings  # noqa: E402
from producers.replay import DEFAULT_BATCH, Pace, Replayer, make_producer  # noqa: E402

PARTITIONS = 8
SESSION_TIMEOUT_S = 6
LATENCY_RATE = 5000
LATENCY_SECONDS = 10.0
POLL_S = 0.010

_T0 = time.monotonic()


def progress(message: str) -> None:
    print(f"[bench {time.monotonic() - _T0:6.1f}s] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------- the events
PORTS = [
    "alashankou",
    "khorgos",
    "kashgar",
    "urumqi",
    "irkeshtam",
    "torugart",
    "baketu",
    "jimunai",
    "takeshikou",
    "hongqilafu",
    "laoyemiao",
    "dulata",
]
MODES = ["road", "rail", "water", "air", "pipeline"]
MODE_WEIGHTS = [45, 35, 3, 7, 10]
PARTNERS = [
    "KZ",
    "KG",
    "UZ",
    "TJ",
    "RU",
    "DE",
    "PL",
    "TR",
    "PK",
    "MN",
    "NL",
    "IT",
    "BY",
    "AF",
    "IR",
    "GB",
    "FR",
    "ES",
    "AE",
    "IN",
]
TRADE_MODES = ["general", "border_small_volume", "bonded_logistics", "processing", "other"]
ZONES = [
    [],
    [],
    [],
    ["ftz-urumqi"],
    ["cbz-urumqi", "ftz-urumqi"],
    ["cbz-khorgos"],
    ["cbz-kashgar", "ftz-kashgar"],
    ["cbz-alashankou"],
    ["ftz-kashgar"],
]
CST = timezone(timedelta(hours=8))
YEAR_START = datetime(2024, 1, 1, tzinfo=CST)


def generate_events(n: int, seed: int, id_prefix: str) -> list[bytes]:
    """``n`` valid shipment events (JSON Lines without newlines), the same for the same seed."""
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        moment = YEAR_START + timedelta(seconds=rng.randrange(366 * 86400))
        fen = rng.randint(1, 500_000_000)  # up to 5 million yuan, 2 decimals
        kg = rng.randint(1, 40_000_000)  # up to 40,000 t, 3 decimals
        zones = json.dumps(rng.choice(ZONES), separators=(",", ":"))
        lines.append(
            (
                f'{{"type":"shipment","event_id":"{id_prefix}-{i:09d}","ts":"{moment.isoformat()}",'
                f'"port":"{rng.choice(PORTS)}","mode":"{rng.choices(MODES, MODE_WEIGHTS)[0]}",'
                f'"direction":"{rng.choice(("import", "export"))}",'
                f'"value_cny":{fen // 100}.{fen % 100:02d},"weight_tonnes":{kg // 1000}.{kg % 1000:03d},'
                f'"partner":"{rng.choice(PARTNERS)}","trade_mode":"{rng.choice(TRADE_MODES)}",'
                f'"zones":{zones}}}'
            ).encode()
        )
    return lines


def write_jsonl(path: Path, lines: list[bytes]) -> None:
    with open(path, "wb") as out:
        for line in lines:
            out.write(line + b"\n")


# -------------------------------------------------------------------------------- the helpers
class Bench:
    """The servers and processes of one benchmark run; ``close`` stops them all by PID."""

    def __init__(self, workdir: Path, broker: str = "tansu") -> None:
        self.workdir = workdir
        self.broker = broker
        self.logs = workdir / "logs"
        self.children: list[Child] = []
        self.popens: list[subprocess.Popen] = []
        self.run_id = uuid.uuid4().hex[:6]
        self.bootstrap = ""
        self.redis_url = ""
        self.redis_pid = 0
        self.broker_pid = 0
        self._names = 0

    def start_servers(self) -> None:
        kafka_port, redis_port = free_port(), free_port()
        if self.broker == "tansu":
            broker = start_tansu(kafka_port, self.logs, name="tansu")
        else:
            cluster = KafkaCluster(self.workdir / "kafka", port=kafka_port, log_dir=self.logs)
            cluster.start()
            broker = cluster.members[0].child
        self.children.append(broker)
        self.children.append(start_redis(redis_port, self.workdir / "redis", self.logs))
        self.bootstrap = f"127.0.0.1:{kafka_port}"
        self.redis_url = f"redis://127.0.0.1:{redis_port}/0"
        self.broker_pid = broker.process.pid
        self.redis_pid = self.children[1].process.pid
        progress(
            f"{self.broker} on {self.bootstrap} (pid {self.broker_pid}), redis-server "
            f"on 127.0.0.1:{redis_port} (pid {self.redis_pid})"
        )

    def namespace(self, label: str) -> tuple[Settings, dict[str, str]]:
        """Settings and worker environment with a fresh topic prefix and consumer group."""
        self._names += 1
        prefix = f"bench{self.run_id}{self._names}{label}."
        group = f"bench-{self.run_id}-{self._names}-{label}"
        metrics_addr = f"127.0.0.1:{free_port()}"
        settings = Settings(
            kafka_bootstrap=self.bootstrap,
            redis_url=self.redis_url,
            topic_prefix=prefix,
            group_id=group,
            partitions=PARTITIONS,
            session_timeout_s=SESSION_TIMEOUT_S,
            metrics_addr=("127.0.0.1", int(metrics_addr.rsplit(":", 1)[1])),
        )
        env = {
            "PORTFLOW_KAFKA_BOOTSTRAP": self.bootstrap,
            "PORTFLOW_REDIS_URL": self.redis_url,
            "PORTFLOW_TOPIC_PREFIX": prefix,
            "PORTFLOW_GROUP_ID": group,
            "PORTFLOW_SESSION_TIMEOUT": f"{SESSION_TIMEOUT_S}s",
            "PORTFLOW_PARTITIONS": str(PARTITIONS),
            "PORTFLOW_TZ": "Asia/Shanghai",
            "PORTFLOW_METRICS_ADDR": metrics_addr,
            "PYTHONPATH": str(REPO),
        }
        return settings, env

    def start_worker(self, settings: Settings, env: dict[str, str], name: str) -> Child:
        child = start_worker(env, self.logs, name=name)
        self.children.append(child)
        progress(f"{name}: started portflow worker pid {child.process.pid}")
        return child

    def stop(self, child: Child) -> None:
        child.stop(timeout_s=20)
        if child in self.children:
            self.children.remove(child)

    def close(self) -> None:
        for proc in self.popens:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
        for child in reversed(self.children):  # workers first, servers last
            try:
                child.stop(timeout_s=20)
            except Exception as exc:  # keep stopping the others
                progress(f"could not stop {child.name} (pid {child.process.pid}): {exc}")
        self.children.clear()


def publish(settings: Settings, lines_path: Path, batch: int, pace: Pace = Pace()):
    """Replay a JSON Lines file with the project's Replayer; returns its ReplayResult."""
    producer = make_producer(settings)
    try:
        return Replayer(settings, producer, batch=batch, pace=pace, progress=False).run(
            [str(lines_path)]
        )
    finally:
        producer.close()


def mark_ranges(offsets: dict) -> tuple[dict[str, int], dict[str, int]]:
    firsts = {f"{t}:{p}": first for (t, p), (first, _) in offsets.items()}
    lasts = {f"{t}:{p}": last for (t, p), (_, last) in offsets.items()}
    return firsts, lasts


def rss_mb(pid: int, field: str = "VmRSS") -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_cpu_seconds() -> float:
    """Non-idle CPU time of the whole machine so far (all cores, from /proc/stat): with the
    processes' own CPU it shows how much of the cores others (other users' jobs) took."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")  # user … steal, not guest


def lua_stats(client) -> tuple[int, int]:
    """(calls, microseconds) of EVALSHA in this Redis: the server side of the apply steps."""
    stats = client.info("commandstats").get("cmdstat_evalsha", {})
    return int(stats.get("calls", 0)), int(stats.get("usec", 0))


def worker_takes(metrics_addr: str) -> dict:
    """From the worker's /metrics: its takes (batches of records) and atomic Redis steps."""
    from urllib.request import urlopen

    values: dict[str, float] = {}
    try:
        text = urlopen(f"http://{metrics_addr}/metrics", timeout=5).read().decode()
    except OSError as exc:
        progress(f"could not read the worker's metrics: {exc}")
        return {}
    for line in text.splitlines():
        for name in (
            "portflow_batch_events",
            "portflow_batch_processing_seconds",
            "portflow_redis_write_seconds",
        ):
            for part in ("_sum", "_count"):
                if line.startswith(name + part) and (
                    'type="shipment"' in line
                    or "{" not in line
                    or name == "portflow_redis_write_seconds"
                ):
                    values[name + part] = values.get(name + part, 0.0) + float(line.split()[-1])
    takes = values.get("portflow_batch_events_count", 0)
    steps = values.get("portflow_redis_write_seconds_count", 0)
    return {
        "takes": int(takes),
        "events_per_take": values.get("portflow_batch_events_sum", 0) / takes if takes else None,
        "ms_per_take": (
            1000 * values.get("portflow_batch_processing_seconds_sum", 0) / takes if takes else None
        ),
        "redis_steps": int(steps),
        "ms_per_redis_step": (
            1000 * values.get("portflow_redis_write_seconds_sum", 0) / steps if steps else None
        ),
    }


def describe_takes(takes: dict) -> str:
    if not takes.get("takes"):
        return "no takes seen in /metrics"
    return (
        f"{takes['takes']:,} takes of {takes['events_per_take']:.1f} events, "
        f"{takes['ms_per_take']:.1f} ms each in process(); {takes['redis_steps']:,} Redis "
        f"steps of {takes['ms_per_redis_step']:.1f} ms"
    )


class MarkPoller(threading.Thread):
    """Polls the Redis high-water marks every 10 ms: progress samples and (optionally) RSS."""

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
            n = 0
            while not self.stopping.is_set():
                marks = self.store.marks_of(self.names)
                now = time.monotonic()
                applied = sum(
                    min(max(marks[k] - self.firsts[k] + 1, 0), self.lasts[k] - self.firsts[k] + 1)
                    for k in self.names
                )
                self.samples.append((now, applied))
                if self.pid and n % 20 == 0:
                    value = rss_mb(self.pid)
                    if value is not None:
                        self.rss.append((applied / self.total, value))
                n += 1
                if applied >= self.total:
                    self.done.set()
                    return
                time.sleep(POLL_S)
        except BaseException as exc:  # reported by the caller
            self.error = exc
            self.done.set()

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


# --------------------------------------------------------------------------- 1. raw consume
async def _raw_consume(
    bootstrap: str, offsets: dict, n: int, timeout_s: float
) -> tuple[float, float]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        topic = next(iter(offsets))[0]
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, offsets.get((topic, tp.partition), (0, 0))[0])
        loads = json.loads
        count = 0
        started = time.perf_counter()
        while count < n:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for messages in batches.values():
                for message in messages:
                    loads(message.value)
                count += len(messages)
            if time.perf_counter() - started > timeout_s:
                raise RuntimeError(f"raw consumer read only {count} of {n} records")
        seconds = time.perf_counter() - started
        return count / seconds, seconds
    finally:
        await consumer.stop()


def measure_raw_consume(bench: Bench, offsets: dict, n: int) -> float:
    progress("raw aiokafka consume + json.loads ...")
    rate, seconds = asyncio.run(_raw_consume(bench.bootstrap, offsets, n, 120 + n / 5000))
    progress(f"raw consume: {n:,} records in {seconds:.2f}s = {rate:,.0f}/s")
    return rate


# ------------------------------------------------------------------------------ 2. faust noop
FAUST_NOOP = """
import os, sys, time
import faust

if sys.argv[6] == "uvloop":  # the event loop the portflow worker runs on
    import asyncio, uvloop
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())

bootstrap, topic_name, app_id, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
# Faust redirects sys.stdout into its log: write the time stamps to our own file descriptor.
stamps = os.open(sys.argv[5], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)


def stamp(*words):
    os.write(stamps, (" ".join(str(w) for w in words) + "\\n").encode())


app = faust.App(
    app_id, broker=f"kafka://{bootstrap}", store="memory://", web_enabled=False,
    topic_partitions=%(partitions)d, topic_allow_declare=False,
    consumer_auto_offset_reset="earliest",
    broker_session_timeout=%(session)d, broker_heartbeat_interval=2, broker_rebalance_timeout=12,
)
topic = app.topic(topic_name, key_type=bytes, value_type=bytes,
                  key_serializer="raw", value_serializer="raw")


@app.agent(topic)
async def count(stream):
    seen = 0
    async for _value in stream:
        seen += 1
        if seen == 1:
            stamp("FIRST", repr(time.perf_counter()))
        if seen >= n:
            stamp("LAST", repr(time.perf_counter()), seen)
            os._exit(0)


if __name__ == "__main__":
    stamp("STARTING", repr(time.perf_counter()))
    faust.Worker(app, loglevel="WARNING", quiet=True).execute_from_commandline()
"""


def run_stamped(
    bench: Bench, argv: list[str], name: str, extra: list[str], timeout_s: float, what: str
) -> dict[str, float]:
    """Run ``python argv… <stamps file> extra…`` (a measured app that writes ``STARTING``,
    ``FIRST`` and ``LAST`` monotonic stamps to that file), logging to ``logs/<name>.log``;
    return the stamps, or raise naming ``what`` if it timed out or stopped before ``LAST``."""
    log_path = bench.logs / f"{name}.log"
    stamps_path = bench.workdir / f"{name}.stamps"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, *argv, str(stamps_path), *extra],
            cwd=bench.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    bench.popens.append(proc)
    progress(f"{name} pid {proc.pid}")
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
        raise RuntimeError(f"{what} did not finish in time; see {log_path}") from None
    stamps = {}
    for line in (stamps_path.read_text() if stamps_path.exists() else "").splitlines():
        parts = line.split()
        if parts and parts[0] in ("STARTING", "FIRST", "LAST"):
            stamps[parts[0]] = float(parts[1])
    if "LAST" not in stamps:
        raise RuntimeError(f"{what} stopped early (exit {proc.returncode}); see {log_path}")
    return stamps


def measure_faust_noop(bench: Bench, topic: str, n: int, loop: str = "asyncio") -> float:
    """Records/s of a do-nothing Faust agent on ``topic``, on asyncio's default event loop or on
    uvloop (``loop="uvloop"``, which the portflow worker uses)."""
    progress(f"faust no-op agent on {loop} (subprocess) ...")
    script = bench.workdir / "faust_noop.py"
    script.write_text(FAUST_NOOP % {"partitions": PARTITIONS, "session": SESSION_TIMEOUT_S})
    stamps = run_stamped(
        bench,
        [str(script), bench.bootstrap, topic, f"bench-noop-{bench.run_id}-{loop}", str(n)],
        "faust-noop",
        [loop],
        120 + n / 2000,
        f"the faust no-op agent counting {n:,} records",
    )
    seconds = stamps["LAST"] - stamps["FIRST"]
    rate = (n - 1) / seconds
    progress(
        f"faust no-op on {loop}: start-up + join {stamps['FIRST'] - stamps['STARTING']:.1f}s, then "
        f"{n:,} records in {seconds:.2f}s = {rate:,.0f}/s"
    )
    return rate


# ---------------------------------------------------------------------------- 3./4. the worker
def measure_worker(
    bench: Bench,
    settings: Settings,
    env: dict,
    offsets: dict,
    events: int,
    name: str,
    profile_to: Path | None = None,
    workers: int = 1,
) -> dict:
    """Start ``workers`` workers together on a preloaded topic; time the marks from first move
    to the end offsets.

    With several workers, each gets its own metrics port, the timing starts only once every one
    of them owns partitions (the first may apply records alone before the group rebalances;
    ``applied_at_assignment`` says how many),
    and CPU, RSS and takes are summed or kept per worker (``*_each``); py-spy follows the first.
    """
    firsts, lasts = mark_ranges(offsets)
    store = RedisStore.from_url(settings.redis_url, settings.topic_prefix)
    poller = MarkPoller(store, firsts, lasts)
    poller.start()  # before the workers: they may apply records before the assignment is seen
    envs = [env] + [
        {**env, "PORTFLOW_METRICS_ADDR": f"127.0.0.1:{free_port()}"} for _ in range(workers - 1)
    ]
    children = [
        bench.start_worker(settings, worker_env, name if i == 0 else f"{name}-{i + 1}")
        for i, worker_env in enumerate(envs)
    ]
    pids = [child.process.pid for child in children]
    spy = None
    try:
        started = time.monotonic()
        wait_for_assignment(settings, children[0], timeout_s=90)
        if workers > 1:  # coverage alone could be the first worker's before the rebalance
            for child in children:
                wait_until_owning(settings, child, timeout_s=90)
        applied_at_assignment = poller.samples[-1][1] if poller.samples else 0
        poller.pid = pids[0]  # RSS samples from here on
        rss_start = rss_mb(pids[0])
        cpu_start = (
            [cpu_seconds(pid) for pid in pids],
            cpu_seconds(bench.redis_pid),
            cpu_seconds(bench.broker_pid),
            cpu_seconds(os.getpid()),
            machine_busy_cpu_seconds(),
        )
        wall_start = time.monotonic()
        lua_start = lua_stats(store.client)
        progress(
            f"{name}: partitions assigned after {time.monotonic() - started:.1f}s "
            f"(RSS {rss_start:.0f} MB; {applied_at_assignment} records applied already)"
        )
        if profile_to is not None:
            spy = start_py_spy(pids[0], profile_to)
        deadline = time.monotonic() + 120 + events / 1000
        while not poller.done.wait(0.5):
            for child in children:
                if not child.alive():
                    raise RuntimeError(f"{child.name} exited:\n{child.tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{name} did not apply every record in time:\n{children[0].tail()}"
                )
        if poller.error:
            raise poller.error
        peaks = [rss_mb(pid, "VmHWM") for pid in pids]
        end_rss = rss_mb(pids[0])
        wall = time.monotonic() - wall_start
        worker_cpus = [cpu_seconds(pid) - before for pid, before in zip(pids, cpu_start[0])]
        redis_cpu = cpu_seconds(bench.redis_pid) - cpu_start[1]
        broker_cpu = cpu_seconds(bench.broker_pid) - cpu_start[2]
        bench_cpu = cpu_seconds(os.getpid()) - cpu_start[3]
        machine_cpu = machine_busy_cpu_seconds() - cpu_start[4]
        owned = {
            int(worker_id.rpartition("-")[2]): len(info["partitions"])
            for worker_id, info in store.workers().items()
        }
        time.sleep(0.3)  # the take that moved the marks last observes its metrics after its acks
        takes = [worker_takes(worker_env["PORTFLOW_METRICS_ADDR"]) for worker_env in envs]
        lua_end = lua_stats(store.client)
        if spy is not None:
            stop_py_spy(spy)
            spy = None
    finally:
        poller.stopping.set()
        if spy is not None:
            stop_py_spy(spy)
        for child in children:
            bench.stop(child)
    records_per_s, seconds = poller.rate(since=wall_start if workers > 1 else None)
    rate = records_per_s * events / poller.total
    lua_calls, lua_us = lua_end[0] - lua_start[0], lua_end[1] - lua_start[1]
    worker_cpu = sum(worker_cpus)
    rss_by_quarter = [
        round(min(poller.rss, key=lambda sample: abs(sample[0] - q))[1]) if poller.rss else None
        for q in (0, 0.25, 0.5, 0.75, 1)
    ]
    progress(f"{name}: RSS (MB) at 0/25/50/75/100 % applied: {rss_by_quarter}")
    progress(
        f"{name}: {poller.total:,} records ({events:,} events) applied in {seconds:.2f}s "
        f"after the first mark moved = {rate:,.0f} events/s; peak RSS "
        f"{max(peaks):.0f} MB; CPU worker {worker_cpu:.1f}s "
        f"({1e6 * worker_cpu / events:.0f} µs/event), redis {redis_cpu:.1f}s, of which "
        f"{lua_calls} apply scripts {lua_us / 1e6:.2f}s ({lua_us / events:.1f} µs/event), "
        f"{bench.broker} {broker_cpu:.1f}s, machine {machine_cpu:.1f}s in {wall:.2f}s"
    )
    for child, pid, cpu, worker_takes_ in zip(children, pids, worker_cpus, takes):
        progress(
            f"{child.name}: {owned.get(pid, 0)} partitions, CPU {cpu:.1f}s; "
            f"{describe_takes(worker_takes_)}"
        )
    return {
        "events_per_s": rate,
        "seconds": seconds,
        "records": poller.total,
        "peak_rss_mb": max(peaks),
        "rss_after_assignment_mb": rss_start,
        "rss_end_mb": end_rss,
        "rss_samples": poller.rss,
        "worker_cpu_s": worker_cpu,
        "redis_cpu_s": redis_cpu,
        "lua_calls": lua_calls,
        "lua_s": lua_us / 1e6,
        "wall_s": wall,
        "takes": takes[0],
        "rss_by_quarter_mb": rss_by_quarter,
        "workers": workers,
        "worker_cpu_s_each": worker_cpus,
        "peak_rss_mb_each": peaks,
        "partitions_each": [owned.get(pid, 0) for pid in pids],
        "takes_each": takes,
        "broker_cpu_s": broker_cpu,
        "bench_cpu_s": bench_cpu,
        "machine_busy_cpu_s": machine_cpu,
        "applied_at_assignment": applied_at_assignment,
    }


# ----------------------------------------------------------------------------------- 5. latency
class TimedProducer:
    """Wraps the replay producer: send time and acknowledgement time of every record."""

    def __init__(self, producer) -> None:
        self.producer = producer
        self.lock = threading.Lock()
        # (topic, partition, offset) -> (send time, ack time, events in the record)
        self.times: dict[tuple[str, int, int], tuple[float, float, int]] = {}

    def send(self, topic, key=None, value=None, headers=None):
        sent = time.monotonic()
        events = value.count(b'{"type"') if value[:1] == b"[" else 1
        future = self.producer.send(topic, key=key, value=value, headers=headers)

        def acked(metadata, sent=sent, events=events):
            with self.lock:
                self.times[(metadata.topic, metadata.partition, metadata.offset)] = (
                    sent,
                    time.monotonic(),
                    events,
                )

        future.add_callback(acked)
        return future

    def flush(self, *args, **kwargs):
        return self.producer.flush(*args, **kwargs)

    def close(self, *args, **kwargs):
        return self.producer.close(*args, **kwargs)


class FetchTimer(threading.Thread):
    """A group-less aiokafka consumer beside the worker: when each record became fetchable.

    It uses Faust's fetch_max_wait_ms (1500, fixed in faust's aiokafka driver), so its delay is
    the part of the worker's latency that the broker and the Kafka client account for.
    """

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(daemon=True)
        self.bootstrap, self.topic = bootstrap, topic
        self.received: dict[tuple[int, int], float] = {}
        self.stopping = threading.Event()
        self.ready = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._consume())
        except BaseException as exc:
            self.error = exc
            self.ready.set()

    async def _consume(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=1500,
        )
        await consumer.start()
        try:
            tps = [TopicPartition(self.topic, p) for p in range(PARTITIONS)]
            consumer.assign(tps)
            for tp in tps:
                consumer.seek(tp, 0)
            self.ready.set()
            while not self.stopping.is_set():
                batches = await consumer.getmany(timeout_ms=200)
                now = time.monotonic()
                for tp, messages in batches.items():
                    for message in messages:
                        self.received[(tp.partition, message.offset)] = now
        finally:
            await consumer.stop()


class AppliedPoller(threading.Thread):
    """Every 10 ms, notes when each partition's mark moved: offsets ≤ mark are applied."""

    def __init__(self, store: RedisStore, names: list[str]) -> None:
        super().__init__(daemon=True)
        self.store = store
        self.names = names
        self.moves: dict[str, list[tuple[int, float]]] = defaultdict(list)  # (new mark, time)
        self.marks = dict.fromkeys(names, -1)
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                marks = self.store.marks_of(self.names)
                now = time.monotonic()
                for name, mark in marks.items():
                    if mark > self.marks[name]:
                        self.marks[name] = mark
                        self.moves[name].append((mark, now))
                time.sleep(POLL_S)
        except BaseException as exc:
            self.error = exc

    def applied_at(self, name: str, offset: int) -> float | None:
        moves = self.moves.get(name, [])
        i = bisect.bisect_left(moves, (offset, float("-inf")))
        return moves[i][1] if i < len(moves) else None


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} ms"


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def measure_latency(bench: Bench, rate: int, seconds: float, batch: int = 1) -> dict:
    """Publish at a steady rate to a running worker; ack → applied per event (by its record).

    With ``batch`` > 1 the Replayer sends what is pending whenever the pace makes it wait, as
    ``portflow replay --rate``/``simulate`` do: records of a few events each.
    """
    label = "latency" if batch == 1 else "latencyb"
    settings, env = bench.namespace(label)
    ensure_topics(settings)
    worker = bench.start_worker(settings, env, f"worker-{label}")
    poller = fetcher = None
    try:
        wait_for_assignment(settings, worker, timeout_s=90)
        progress(f"{label}: publishing {rate:,} events/s for {seconds:g}s (batch {batch})")
        lines = generate_events(
            int(rate * seconds), seed=5000 + batch, id_prefix=f"lat{bench.run_id}"
        )
        store = RedisStore.from_url(settings.redis_url, settings.topic_prefix)
        topic = settings.topic("shipment")
        poller = AppliedPoller(store, [f"{topic}:{p}" for p in range(PARTITIONS)])
        poller.start()
        fetcher = FetchTimer(bench.bootstrap, topic)
        fetcher.start()
        fetcher.ready.wait(30)
        producer = TimedProducer(make_producer(settings))
        replayer = Replayer(settings, producer, batch=batch, pace=Pace(rate=rate), progress=False)
        results = []
        thread = threading.Thread(target=lambda: results.append(replayer.run_stream(iter(lines))))
        thread.start()
        thread.join()
        producer.close()
        if not results:
            raise RuntimeError("the paced replay failed (see the messages above)")
        result = results[0]
        _, lasts = mark_ranges(result.offsets)
        deadline = time.monotonic() + 60
        while any(poller.marks[n] < last for n, last in lasts.items()):
            if poller.error:
                raise poller.error
            if time.monotonic() > deadline or not worker.alive():
                raise RuntimeError(f"the latency worker fell behind:\n{worker.tail()}")
            time.sleep(0.05)
        peak = rss_mb(worker.process.pid, "VmHWM")
        takes = worker_takes(env["PORTFLOW_METRICS_ADDR"])
    finally:
        for thread in (poller, fetcher):
            if thread is not None:
                thread.stopping.set()
                thread.join(5)
        bench.stop(worker)
    from_ack, from_send, fetched, early = [], [], [], 0
    by_second: dict[int, list[float]] = defaultdict(list)
    first_send = min(sent for sent, _, _ in producer.times.values())
    for (topic_name, partition, offset), (sent, acked, events) in producer.times.items():
        applied = poller.applied_at(f"{topic_name}:{partition}", offset)
        if applied is None:
            continue
        if applied < acked:
            early += 1  # seen applied before our ack callback ran: count as 0
        from_ack += [max(0.0, applied - acked) * 1000] * events
        from_send += [(applied - sent) * 1000] * events
        by_second[int(sent - first_send)] += [max(0.0, applied - acked) * 1000] * events
        received = fetcher.received.get((partition, offset))
        if received is not None:
            fetched += [max(0.0, received - acked) * 1000] * events
    timeline = [round(statistics.median(by_second[s])) for s in sorted(by_second)]
    progress(f"{label}: median ack→applied ms per second of publishing: {timeline}")
    out = {
        "batch": batch,
        "records": result.records,
        "rate_target": rate,
        "rate_achieved": result.events_per_s,
        "events": result.events,
        "p50_ms": percentile(from_ack, 50),
        "p99_ms": percentile(from_ack, 99),
        "max_ms": max(from_ack),
        "p50_from_send_ms": percentile(from_send, 50),
        "p99_from_send_ms": percentile(from_send, 99),
        "applied_before_ack": early,
        "samples": len(from_ack),
        "peak_rss_mb": peak,
        "timeline_p50_ms": timeline,
        "fetch_p50_ms": percentile(fetched, 50) if fetched else None,
        "fetch_p99_ms": percentile(fetched, 99) if fetched else None,
    }
    progress(
        f"{label}: {out['events']:,} events in {out['records']:,} records at "
        f"{out['rate_achieved']:,.0f}/s; ack→applied "
        f"p50 {out['p50_ms']:.0f} ms, p99 {out['p99_ms']:.0f} ms, max {out['max_ms']:.0f} ms "
        f"(send→applied p50 {out['p50_from_send_ms']:.0f}, p99 "
        f"{out['p99_from_send_ms']:.0f} ms); a raw consumer beside it fetched them "
        f"p50 {_ms(out['fetch_p50_ms'])}, p99 {_ms(out['fetch_p99_ms'])} after the ack; "
        f"worker: {describe_takes(takes)}"
    )
    return out


# ----------------------------------------------------------------------------------- profiling
def start_py_spy(pid: int, out: Path) -> subprocess.Popen | None:
    binary = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(binary).exists():
        progress("py-spy is not installed (pip install py-spy): no worker profile")
        return None
    proc = subprocess.Popen(
        [
            binary,
            "record",
            "--pid",
            str(pid),
            "--rate",
            os.environ.get("SPY_RATE", "200"),
            "--nonblocking",
            "--gil",
            *(["--threads"] if os.environ.get("SPY_THREADS") else []),
            "--format",
            "raw",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    time.sleep(0.3)
    return proc


def stop_py_spy(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# Leaf frames where a thread waits (py-spy cannot always tell idle threads in this VM).
_WAITS = (
    ".select (selectors.py",
    "_worker (concurrent/futures/thread.py",
    "wait (threading.py",
    "_wait_for_tstate_lock (threading.py",
    "serve_forever (socketserver.py",
)
# What a busy sample is spent on: the first category whose test accepts the stack.
_CATEGORIES = [
    (
        "Redis apply: client packs the script's arguments",
        lambda st: "RedisStore.apply" in st and "pack" in st.rsplit("RedisStore.apply", 1)[1],
    ),
    ("Redis apply: waits for the Lua script (server time)", lambda st: "RedisStore.apply" in st),
    ("parse + validate (parse_record: msgspec, Decimal, checks)", lambda st: "parse_record" in st),
    ("aggregate in memory (Increments.add: calendar, cells)", lambda st: "Increments.add" in st),
    (
        "chunk bookkeeping (seen keys, per_measure, marks)",
        lambda st: "BatchProcessor._prepare" in st or "BatchProcessor._send" in st,
    ),
    ("YoY gauges (Redis reads every 15 s)", lambda st: "yoy.py" in st),
    (
        "metrics (streams/metrics.py, prometheus_client)",
        lambda st: "metrics.py" in st or "prometheus_client" in st,
    ),
    ("aiokafka consumer (fetch, decode)", lambda st: "aiokafka/" in st),
    ("Faust streams, consumer and acks", lambda st: "faust/" in st.rsplit("streams/app.py", 1)[-1]),
    ("agent loop: SourceRecord list (streams/app.py)", lambda st: "streams/app.py" in st),
]


def summarise_py_spy(path: Path, top: int = 15) -> str:
    """Shares of the worker's busy samples, by category and by function (self time)."""
    own, categories = Counter(), Counter()
    total = idle = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        frames = [f.replace(str(REPO) + "/", "") for f in stack.split(";")]
        if any(w in frames[-1] for w in _WAITS):
            idle += n
            continue
        total += n
        own[frames[-1].rsplit(":", 1)[0] + ")"] += n
        joined = ";".join(frames)
        category = next((name for name, test in _CATEGORIES if test(joined)), "other")
        categories[category] += n
    if not total:
        return "py-spy: no busy samples\n"
    lines = [f"py-spy: {total} busy samples ({idle} waiting samples left out)", "  share   where"]
    lines += [f"  {100 * n / total:5.1f}%  {c}" for c, n in categories.most_common()]
    lines.append("  self    function")
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in own.most_common(top)]
    return "\n".join(lines) + "\n"


def profile_processor(bench: Bench, lines: list[bytes], batch: int = DEFAULT_BATCH) -> str:
    """cProfile of BatchProcessor.process on batch records against the running Redis."""
    from streams.processor import BatchProcessor, SourceRecord

    settings, _ = bench.namespace("cprofile")
    store = RedisStore.from_url(settings.redis_url, settings.topic_prefix)

    async def no_letters(letters):
        raise AssertionError("the benchmark's events are all valid")

    processor = BatchProcessor(settings, store, no_letters)
    topic = settings.topic("shipment")
    records = []
    for i in range(0, len(lines), batch):
        value = b"[" + b",".join(lines[i : i + batch]) + b"]"
        partition = (i // batch) % PARTITIONS
        records.append(SourceRecord(topic, partition, i // batch // PARTITIONS, None, value))

    async def run() -> float:
        started = time.perf_counter()
        for i in range(0, len(records), 100):  # batches of 100 records
            await processor.process(records[i : i + 100])
        return time.perf_counter() - started

    profiler = cProfile.Profile()
    profiler.enable()
    seconds = asyncio.run(run())
    profiler.disable()
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("tottime").print_stats(18)
    stats.sort_stats("cumulative").print_stats(25)
    return (
        f"cProfile of BatchProcessor.process: {len(lines):,} events in {len(records)} batch "
        f"records, {seconds:.2f}s under the profiler = {len(lines) / seconds:,.0f} events/s\n"
        + text.getvalue()
    )


# ----------------------------------------------------------------------------------------- main
def run(args: argparse.Namespace, bench: Bench) -> dict:
    n = args.events
    bench.start_servers()
    progress(f"generating {n:,} shipment events")
    lines = generate_events(n, seed=args.seed, id_prefix="ev")
    events_path = bench.workdir / "events.jsonl"
    write_jsonl(events_path, lines)

    # the single-event topic: created with kafka-python's admin (8 partitions), replay --batch 1
    single, single_env = bench.namespace("single")
    ensure_topics(single)
    progress(
        f"publishing {n:,} single-event records (Replayer, batch 1) to {single.topic('shipment')}"
    )
    published_single = publish(single, events_path, batch=1)
    if published_single.records != n:
        raise RuntimeError(f"published {published_single.records} records, expected {n}")
    progress(
        f"published in {published_single.seconds:.1f}s "
        f"({published_single.events_per_s:,.0f} events/s)"
    )

    raw = measure_raw_consume(bench, published_single.offsets, n)
    noop = measure_faust_noop(bench, single.topic("shipment"), n)
    noop_uvloop = measure_faust_noop(bench, single.topic("shipment"), n, loop="uvloop")
    worker_single = measure_worker(
        bench, single, single_env, published_single.offsets, n, "worker-single"
    )

    batched, batched_env = bench.namespace("batched")
    ensure_topics(batched)
    progress(
        f"publishing {n:,} events in batch records of {DEFAULT_BATCH} "
        f"to {batched.topic('shipment')}"
    )
    published_batched = publish(batched, events_path, batch=DEFAULT_BATCH)
    progress(
        f"replay: {published_batched.events:,} events in {published_batched.records} "
        f"records in {published_batched.seconds:.2f}s "
        f"({published_batched.events_per_s:,.0f} events/s)"
    )
    worker_batched = measure_worker(
        bench, batched, batched_env, published_batched.offsets, n, "worker-batched"
    )

    latency = measure_latency(bench, args.latency_rate, args.latency_seconds)
    latency_b = measure_latency(bench, args.latency_rate, args.latency_seconds, batch=DEFAULT_BATCH)

    profile_text = ""
    if args.profile:
        prof, prof_env = bench.namespace("profile")
        ensure_topics(prof)
        published_prof = publish(prof, events_path, batch=DEFAULT_BATCH)
        spy_path = bench.workdir / "worker-batched.pyspy.txt"
        profiled = measure_worker(
            bench,
            prof,
            prof_env,
            published_prof.offsets,
            n,
            "worker-batched-py-spy",
            profile_to=spy_path,
        )
        if spy_path.exists():
            profile_text += (
                f"worker under py-spy (200 Hz, non-blocking): "
                f"{profiled['events_per_s']:,.0f} events/s\n"
            )
            profile_text += summarise_py_spy(spy_path)
            if args.keep:
                profile_text += f"(collapsed stacks: {spy_path})\n"
        profile_text += profile_processor(bench, lines)

    rss_growth = None
    samples = worker_batched["rss_samples"]
    if samples:
        rss_growth = samples[-1][1] - samples[0][1]
    result = {
        "events": n,
        "raw_consume_per_s": round(raw),
        "faust_noop_per_s": round(noop),
        "faust_noop_uvloop_per_s": round(noop_uvloop),
        "worker_single_per_s": round(worker_single["events_per_s"]),
        "worker_batched_per_s": round(worker_batched["events_per_s"]),
        "batched_ratio_vs_raw": round(worker_batched["events_per_s"] / raw, 3),
        "single_ratio_vs_faust_noop": round(worker_single["events_per_s"] / noop, 3),
        "single_ratio_vs_faust_noop_uvloop": round(worker_single["events_per_s"] / noop_uvloop, 3),
        "p50_latency_ms": round(latency["p50_ms"], 1),
        "p99_latency_ms": round(latency["p99_ms"], 1),
        "max_latency_ms": round(latency["max_ms"], 1),
        "p50_latency_from_send_ms": round(latency["p50_from_send_ms"], 1),
        "p99_latency_from_send_ms": round(latency["p99_from_send_ms"], 1),
        "latency_rate_per_s": round(latency["rate_achieved"]),
        "latency_events": latency["events"],
        "p50_fetch_latency_ms": _round(latency["fetch_p50_ms"]),
        "p99_fetch_latency_ms": _round(latency["fetch_p99_ms"]),
        "p50_latency_paced_batch_ms": round(latency_b["p50_ms"], 1),
        "p99_latency_paced_batch_ms": round(latency_b["p99_ms"], 1),
        "max_latency_paced_batch_ms": round(latency_b["max_ms"], 1),
        "latency_paced_batch_events_per_record": round(
            latency_b["events"] / latency_b["records"], 1
        ),
        "worker_peak_rss_mb": round(worker_batched["peak_rss_mb"], 1),
        "worker_rss_after_assignment_mb": round(worker_batched["rss_after_assignment_mb"], 1),
        "worker_rss_end_mb": round(worker_batched["rss_end_mb"], 1),
        "worker_rss_growth_during_batched_mb": (
            round(rss_growth, 1) if rss_growth is not None else None
        ),
        "worker_rss_by_quarter_batched_mb": worker_batched["rss_by_quarter_mb"],
        "worker_single_peak_rss_mb": round(worker_single["peak_rss_mb"], 1),
        "worker_rss_by_quarter_single_mb": worker_single["rss_by_quarter_mb"],
        "worker_latency_peak_rss_mb": round(latency["peak_rss_mb"], 1),
        "worker_batched_cpu_us_per_event": round(1e6 * worker_batched["worker_cpu_s"] / n, 1),
        "worker_batched_cpu_utilisation": round(
            worker_batched["worker_cpu_s"] / worker_batched["wall_s"], 2
        ),
        "redis_batched_cpu_us_per_event": round(1e6 * worker_batched["redis_cpu_s"] / n, 1),
        "redis_lua_us_per_event_batched": round(1e6 * worker_batched["lua_s"] / n, 1),
        "worker_single_cpu_us_per_event": round(1e6 * worker_single["worker_cpu_s"] / n, 1),
        "worker_single_cpu_utilisation": round(
            worker_single["worker_cpu_s"] / worker_single["wall_s"], 2
        ),
        "replay_events_per_s": round(published_batched.events_per_s),
        "replay_single_events_per_s": round(published_single.events_per_s),
        "batched_records": published_batched.records,
        "worker_single_seconds": round(worker_single["seconds"], 2),
        "worker_batched_seconds": round(worker_batched["seconds"], 2),
        "broker": bench.broker,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "loadavg_1m_at_end": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
    }
    if profile_text:
        print("\n" + profile_text, file=sys.stderr, flush=True)
    return result


GOALS = [
    (
        "worker_batched_per_s",
        "batched worker ≥ 30,000 events/s (goal 50,000)",
        lambda r: r["worker_batched_per_s"] >= 30_000,
    ),
    (
        "single_ratio_vs_faust_noop",
        "single-event worker ≥ 0.8 × Faust no-op",
        lambda r: r["single_ratio_vs_faust_noop"] >= 0.8,
    ),
    (
        "p99_latency_ms",
        "p99 < 250 ms at 5,000 events/s",
        lambda r: r["p99_latency_ms"] < 250 and r["latency_rate_per_s"] >= 4900,
    ),
    (
        "replay_events_per_s",
        "replay --max ≥ 50,000 events/s",
        lambda r: r["replay_events_per_s"] >= 50_000,
    ),
]


def table(result: dict) -> str:
    rows = [
        ("broker", result["broker"]),
        ("events", f"{result['events']:,}"),
        ("raw consume + json.loads", f"{result['raw_consume_per_s']:,} records/s"),
        ("Faust no-op agent", f"{result['faust_noop_per_s']:,} records/s"),
        ("Faust no-op agent on uvloop", f"{result['faust_noop_uvloop_per_s']:,} records/s"),
        ("worker, single-event records", f"{result['worker_single_per_s']:,} events/s"),
        ("worker, batch records (500)", f"{result['worker_batched_per_s']:,} events/s"),
        ("batched ÷ raw", f"{result['batched_ratio_vs_raw']:.3f}"),
        (
            "single ÷ Faust no-op",
            f"{result['single_ratio_vs_faust_noop']:.3f} "
            f"(÷ the no-op on uvloop: {result['single_ratio_vs_faust_noop_uvloop']:.3f})",
        ),
        (
            f"latency at {result['latency_rate_per_s']:,}/s p50 / p99",
            f"{result['p50_latency_ms']:.0f} / {result['p99_latency_ms']:.0f} ms "
            f"(max {result['max_latency_ms']:.0f})",
        ),
        (
            "raw consumer fetch latency p50 / p99",
            f"{_ms(result['p50_fetch_latency_ms'])} / "
            f"{_ms(result['p99_fetch_latency_ms'])} (aiokafka, fetch_max_wait_ms 1500)",
        ),
        (
            f"latency, paced replay batch 500 (~{result['latency_paced_batch_events_per_record']:g} "
            "events/record) p50 / p99",
            f"{result['p50_latency_paced_batch_ms']:.0f} / {result['p99_latency_paced_batch_ms']:.0f} ms",
        ),
        (
            "worker peak RSS (batched)",
            f"{result['worker_peak_rss_mb']:.0f} MB "
            f"(after assignment {result['worker_rss_after_assignment_mb']:.0f}, "
            f"end {result['worker_rss_end_mb']:.0f})",
        ),
        (
            "worker CPU per event, batched / single",
            f"{result['worker_batched_cpu_us_per_event']:g} / "
            f"{result['worker_single_cpu_us_per_event']:g} µs (Lua in Redis, batched: "
            f"{result['redis_lua_us_per_event_batched']:g} µs)",
        ),
        ("replay, batch 500", f"{result['replay_events_per_s']:,} events/s"),
        ("replay, batch 1", f"{result['replay_single_events_per_s']:,} events/s"),
    ]
    width = max(len(k) for k, _ in rows)
    lines = [f"{k:<{width}}  {v}" for k, v in rows]
    lines.append("")
    for _, text, check in GOALS:
        lines.append(f"{'met ' if check(result) else 'MISS'}  {text}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=200_000, help="events (default 200000)")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    parser.add_argument("--seed", type=int, default=2024, help="event generator seed")
    parser.add_argument(
        "--latency-rate",
        type=int,
        default=LATENCY_RATE,
        help=f"events/s of the latency runs (default {LATENCY_RATE})",
    )
    parser.add_argument(
        "--latency-seconds",
        type=float,
        default=LATENCY_SECONDS,
        help="duration of each latency run (default 10)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also profile the batched path (py-spy of the worker, cProfile of "
        "BatchProcessor.process); printed to stderr",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the work directory (logs, events file, profiles)"
    )
    parser.add_argument(
        "--broker",
        choices=BROKERS,
        default="tansu",
        help="the broker to measure on (default tansu; apache-kafka needs "
        "Java 17 and bash scripts/fetch-kafka.sh)",
    )
    args = parser.parse_args(argv)
    if args.events < 1000:
        parser.error("--events must be at least 1000")

    status, result = run_on_servers("portflow-bench-", args, run)
    if status == 0:
        print(json.dumps(result) if args.json else table(result), flush=True)
    return status


def run_on_servers(
    prefix: str, args: argparse.Namespace, run: Callable[[argparse.Namespace, Bench], dict]
) -> tuple[int, dict]:
    """``run(args, bench)`` on a ``Bench`` of ``args.broker`` in a fresh work directory
    (``run_in_workdir``; ``args.keep`` keeps it); the bench's processes stopped on every path."""

    def measure(workdir: Path) -> dict:
        bench = Bench(workdir, args.broker)
        try:
            return run(args, bench)
        finally:
            bench.close()

    return run_in_workdir(prefix, args.keep, measure)


def run_in_workdir(prefix: str, keep: bool, measure: Callable[[Path], dict]) -> tuple[int, dict]:
    """Run ``measure`` in a fresh temporary directory, also the working directory (Faust keeps
    an ``<app id>-data`` directory there: out of the repo); delete it unless the run failed or
    ``keep``. Returns the exit status and the result."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    os.chdir(workdir)
    ok = False
    try:
        result = measure(workdir)
        ok = True
        return 0, result
    except KeyboardInterrupt:
        progress("interrupted")
        return 130, {}
    except Exception as exc:
        progress(f"FAILED: {type(exc).__name__}: {exc}")
        return 1, {}
    finally:
        if ok and not keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            progress(f"work directory kept: {workdir}")


if __name__ == "__main__":
    sys.exit(main())
