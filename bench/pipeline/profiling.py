"""Where the worker's time goes (``--profile``): a py-spy profile of a running worker, summed by
category and function, and a cProfile of ``BatchProcessor.process`` against the running Redis."""

from __future__ import annotations

import asyncio
import cProfile
import io
import os
import pstats
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from bench.harness import BATCH_RECORDS, PARTITIONS, REPO, Bench, progress
from portflow.adapters.redis import RedisStore
from producers.replay import DEFAULT_BATCH


def start_py_spy(pid: int, out: Path) -> subprocess.Popen[bytes] | None:
    """py-spy recording ``pid`` into ``out`` (rate ``SPY_RATE``, threads if ``SPY_THREADS``)."""
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


def stop_py_spy(proc: subprocess.Popen[bytes]) -> None:
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
_CATEGORIES: list[tuple[str, Callable[[str], bool]]] = [
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
    own: Counter[str] = Counter()
    categories: Counter[str] = Counter()
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
        categories[category_of(";".join(frames))] += n
    if not total:
        return "py-spy: no busy samples\n"
    lines = [f"py-spy: {total} busy samples ({idle} waiting samples left out)", "  share   where"]
    lines += [f"  {100 * n / total:5.1f}%  {c}" for c, n in categories.most_common()]
    lines.append("  self    function")
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in own.most_common(top)]
    return "\n".join(lines) + "\n"


def category_of(stack: str) -> str:
    return next((name for name, test in _CATEGORIES if test(stack)), "other")


def profile_processor(bench: Bench, lines: list[bytes], batch: int = DEFAULT_BATCH) -> str:
    """cProfile of BatchProcessor.process on batch records against the running Redis."""
    from portflow.services.processing import SourceRecord
    from streams.processor import BatchProcessor

    settings, _ = bench.namespace("cprofile")
    store = RedisStore.from_url(settings.redis_url, settings.topic_prefix)

    async def no_letters(letters: object) -> None:
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
        for i in range(0, len(records), BATCH_RECORDS):
            await processor.process(records[i : i + BATCH_RECORDS])
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
