"""What every benchmark shares: its arguments, its servers, its events, timing and printing.

A benchmark starts its own broker and redis-server on free 127.0.0.1 ports (``Bench``), in a
fresh work directory that is deleted unless the run failed or ``--keep`` (``run_on_servers``),
and stops every process it started by PID, also on errors. Progress goes to stderr; stdout gets
a table or one JSON line (``--json``) of the figures, with the machine they were taken on.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

from entrypoints.embedded import BROKERS, start_redis, start_tansu, start_worker
from entrypoints.kafka_cluster import KafkaCluster
from entrypoints.processes import Child, free_port
from portflow.config import Settings
from producers.replay import Pace, Replayer, ReplayResult, make_producer

REPO = Path(__file__).resolve().parents[1]
PARTITIONS = 8
BATCH_RECORDS = 100  # records per batch (one ``process`` call), as the worker's
SESSION_TIMEOUT_S = 6
FETCH_KAFKA = "Java 17 and bash scripts/fetch-kafka.sh"

Result = TypeVar("Result")

_T0 = time.monotonic()


def progress(message: str) -> None:
    print(f"[bench {time.monotonic() - _T0:6.1f}s] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ the arguments
def parser_of(module: str, doc: str | None) -> argparse.ArgumentParser:
    """The parser of ``python -m <module>``, described by its docstring's first paragraph."""
    return argparse.ArgumentParser(
        prog=f"python -m {module}",
        description=(doc or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_broker_argument(parser: argparse.ArgumentParser, default: str | None) -> None:
    help_text = f"apache-kafka needs {FETCH_KAFKA}"
    if default is None:
        help_text = f"one broker only (default: each); {help_text}"
    else:
        help_text = f"the broker to measure on (default {default}); {help_text}"
    parser.add_argument("--broker", choices=BROKERS, default=default, help=help_text)


def add_output_arguments(parser: argparse.ArgumentParser, keep: bool = True) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    if keep:
        parser.add_argument(
            "--keep", action="store_true", help="keep the work directory (logs, events, profiles)"
        )


def add_seed_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=2024, help="seed of the generators (2024)")


# ---------------------------------------------------------------------------------- the events
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
ZONES: list[list[str]] = [
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
    return [shipment(rng, f"{id_prefix}-{i:09d}") for i in range(n)]


def shipment(rng: random.Random, event_id: str) -> bytes:
    """One shipment of 2024 at a random moment, port, mode, partner and zones."""
    moment = YEAR_START + timedelta(seconds=rng.randrange(366 * 86400))
    fen = rng.randint(1, 500_000_000)  # up to 5 million yuan, 2 decimals
    kg = rng.randint(1, 40_000_000)  # up to 40,000 t, 3 decimals
    zones = json.dumps(rng.choice(ZONES), separators=(",", ":"))
    return (
        f'{{"type":"shipment","event_id":"{event_id}","ts":"{moment.isoformat()}",'
        f'"port":"{rng.choice(PORTS)}","mode":"{rng.choices(MODES, MODE_WEIGHTS)[0]}",'
        f'"direction":"{rng.choice(("import", "export"))}",'
        f'"value_cny":{fen // 100}.{fen % 100:02d},'
        f'"weight_tonnes":{kg // 1000}.{kg % 1000:03d},'
        f'"partner":"{rng.choice(PARTNERS)}","trade_mode":"{rng.choice(TRADE_MODES)}",'
        f'"zones":{zones}}}'
    ).encode()


def write_jsonl(path: Path, lines: list[bytes]) -> None:
    with open(path, "wb") as out:
        for line in lines:
            out.write(line + b"\n")


# --------------------------------------------------------------------------------- the servers
class Bench:
    """The servers and processes of one benchmark run; ``close`` stops them all by PID."""

    def __init__(self, workdir: Path, broker: str = "tansu") -> None:
        self.workdir = workdir
        self.broker = broker
        self.logs = workdir / "logs"
        self.children: list[Child] = []
        self.popens: list[subprocess.Popen[Any]] = []
        self.run_id = uuid.uuid4().hex[:6]
        self.bootstrap = ""
        self.redis_url = ""
        self.redis_pid = 0
        self.broker_pid = 0
        self._names = 0

    def start_servers(self) -> None:
        kafka_port, redis_port = free_port(), free_port()
        broker = self._start_broker(kafka_port)
        self.children.append(broker)
        redis = start_redis(redis_port, self.workdir / "redis", self.logs)
        self.children.append(redis)
        self.bootstrap = f"127.0.0.1:{kafka_port}"
        self.redis_url = f"redis://127.0.0.1:{redis_port}/0"
        self.broker_pid = broker.process.pid
        self.redis_pid = redis.process.pid
        progress(
            f"{self.broker} on {self.bootstrap} (pid {self.broker_pid}), redis-server "
            f"on 127.0.0.1:{redis_port} (pid {self.redis_pid})"
        )

    def _start_broker(self, port: int) -> Child:
        if self.broker == "tansu":
            return start_tansu(port, self.logs, name="tansu")
        cluster = KafkaCluster(self.workdir / "kafka", port=port, log_dir=self.logs)
        cluster.start()
        child = cluster.members[0].child
        if child is None:
            raise RuntimeError("the Kafka cluster started without its broker process")
        return child

    def namespace(self, label: str) -> tuple[Settings, dict[str, str]]:
        """Settings and worker environment with a fresh topic prefix and consumer group."""
        self._names += 1
        prefix = f"bench{self.run_id}{self._names}{label}."
        group = f"bench-{self.run_id}-{self._names}-{label}"
        metrics_port = free_port()
        settings = Settings(
            kafka_bootstrap=self.bootstrap,
            redis_url=self.redis_url,
            topic_prefix=prefix,
            group_id=group,
            partitions=PARTITIONS,
            session_timeout_s=SESSION_TIMEOUT_S,
            metrics_addr=("127.0.0.1", metrics_port),
        )
        env = {
            "PORTFLOW_KAFKA_BOOTSTRAP": self.bootstrap,
            "PORTFLOW_REDIS_URL": self.redis_url,
            "PORTFLOW_TOPIC_PREFIX": prefix,
            "PORTFLOW_GROUP_ID": group,
            "PORTFLOW_SESSION_TIMEOUT": f"{SESSION_TIMEOUT_S}s",
            "PORTFLOW_PARTITIONS": str(PARTITIONS),
            "PORTFLOW_TZ": "Asia/Shanghai",
            "PORTFLOW_METRICS_ADDR": f"127.0.0.1:{metrics_port}",
            "PYTHONPATH": str(REPO),
        }
        return settings, env

    def start_worker(self, env: dict[str, str], name: str) -> Child:
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


def run_on_servers(
    prefix: str, args: argparse.Namespace, run: Callable[[argparse.Namespace, Bench], Result]
) -> tuple[int, Result | None]:
    """``run(args, bench)`` on a ``Bench`` of ``args.broker`` in a fresh work directory
    (``run_in_workdir``; ``args.keep`` keeps it); the bench's processes stopped on every path."""

    def measure(workdir: Path) -> Result:
        bench = Bench(workdir, args.broker)
        try:
            return run(args, bench)
        finally:
            bench.close()

    return run_in_workdir(prefix, args.keep, measure)


def run_in_workdir(
    prefix: str, keep: bool, measure: Callable[[Path], Result]
) -> tuple[int, Result | None]:
    """Run ``measure`` in a fresh temporary directory, also the working directory (Faust keeps
    an ``<app id>-data`` directory there: out of the repo); delete it unless the run failed or
    ``keep``. Returns the exit status and the result (None if it failed)."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    os.chdir(workdir)
    ok = False
    try:
        result = measure(workdir)
        ok = True
        return 0, result
    except KeyboardInterrupt:
        progress("interrupted")
        return 130, None
    except Exception as exc:
        progress(f"FAILED: {type(exc).__name__}: {exc}")
        return 1, None
    finally:
        if ok and not keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            progress(f"work directory kept: {workdir}")


def publish(
    settings: Settings, lines_path: Path, batch: int, pace: Pace | None = None
) -> ReplayResult:
    """Replay a JSON Lines file with the project's Replayer."""
    producer = make_producer(settings)
    try:
        return Replayer(settings, producer, batch=batch, pace=pace or Pace(), progress=False).run(
            [str(lines_path)]
        )
    finally:
        producer.close()


Offsets = dict[tuple[str, int], tuple[int, int]]  # (topic, partition) -> (first, last)


def mark_ranges(offsets: Offsets) -> tuple[dict[str, int], dict[str, int]]:
    """The first and last offsets published, by the mark names Redis keeps them under."""
    firsts = {f"{t}:{p}": first for (t, p), (first, _) in offsets.items()}
    lasts = {f"{t}:{p}": last for (t, p), (_, last) in offsets.items()}
    return firsts, lasts


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
    stamps = read_stamps(stamps_path)
    if "LAST" not in stamps:
        raise RuntimeError(f"{what} stopped early (exit {proc.returncode}); see {log_path}")
    return stamps


def read_stamps(path: Path) -> dict[str, float]:
    stamps = {}
    for line in (path.read_text() if path.exists() else "").splitlines():
        parts = line.split()
        if parts and parts[0] in ("STARTING", "FIRST", "LAST"):
            stamps[parts[0]] = float(parts[1])
    return stamps


# ------------------------------------------------------------------------- processes and time
def rss_mb(pid: int, field: str = "VmRSS") -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (None once it is gone)."""
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


def best_seconds(stages: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """The best time of each stage over ``repeat`` rounds; each round runs every stage once, so
    a slow spell of the shared machine hits all stages alike rather than one."""
    best = dict.fromkeys(stages, float("inf"))
    for _ in range(repeat):
        for name, run in stages.items():
            started = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - started)
    return best


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


# --------------------------------------------------------------------------------- the figures
@dataclass(frozen=True)
class Machine:
    """Where and when figures were taken (the machine is shared: the load says how busy)."""

    date: str
    cpus: int | None
    loadavg_1m_at_end: float
    python: str

    @classmethod
    def now(cls) -> Machine:
        return cls(
            date=datetime.now(UTC).isoformat(timespec="seconds"),
            cpus=os.cpu_count(),
            loadavg_1m_at_end=round(os.getloadavg()[0], 2),
            python=platform.python_version(),
        )


@dataclass(frozen=True)
class Goal:
    """A goal a figure is held to, and whether the run met it."""

    text: str
    met: bool

    def line(self) -> str:
        return f"{'met ' if self.met else 'MISS'}  {self.text}"


def ratio(numerator: float, denominator: float, digits: int = 3) -> float:
    return round(numerator / denominator, digits)


def rounded(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def emit(figures: dict[str, Any], as_json: bool, table: Callable[[], str]) -> None:
    """The figures as one JSON line or as the benchmark's table, on stdout."""
    print(json.dumps(figures, default=str) if as_json else table(), flush=True)
