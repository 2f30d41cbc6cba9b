"""Latency at a steady rate: events published at a pace to a running worker, each timed from
its producer acknowledgement to its partition's Redis mark covering it; a raw consumer beside
the worker shows how much of that the broker and the Kafka client account for."""

from __future__ import annotations

import asyncio
import bisect
import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from bench.harness import (
    PARTITIONS,
    Bench,
    generate_events,
    mark_ranges,
    percentile,
    progress,
    rss_mb,
)
from bench.pipeline.worker import POLL_S, Batches, worker_batches
from entrypoints.embedded import wait_for_assignment
from entrypoints.processes import Child
from portflow.adapters.kafka import ensure_topics
from portflow.adapters.redis import RedisStore
from portflow.config import Settings
from producers.replay import Pace, Replayer, ReplayResult, make_producer

RecordKey = tuple[str, int, int]  # topic, partition, offset


class TimedProducer:
    """Wraps the replay producer: send time and acknowledgement time of every record."""

    def __init__(self, producer: Any) -> None:
        self.producer = producer
        self.lock = threading.Lock()
        # (topic, partition, offset) -> (send time, ack time, events in the record)
        self.times: dict[RecordKey, tuple[float, float, int]] = {}

    def send(
        self,
        topic: str,
        key: bytes | None = None,
        value: bytes = b"",
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Any:
        sent = time.monotonic()
        events = value.count(b'{"type"') if value[:1] == b"[" else 1
        future = self.producer.send(topic, key=key, value=value, headers=headers)

        def acked(metadata: Any, sent: float = sent, events: int = events) -> None:
            with self.lock:
                self.times[(metadata.topic, metadata.partition, metadata.offset)] = (
                    sent,
                    time.monotonic(),
                    events,
                )

        future.add_callback(acked)
        return future

    def flush(self, *args: Any, **kwargs: Any) -> Any:
        return self.producer.flush(*args, **kwargs)

    def close(self, *args: Any, **kwargs: Any) -> Any:
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


@dataclass(frozen=True)
class LatencyRun:
    """What one paced publish measured (ms; ``from_send``: from the send, not the ack)."""

    batch: int
    records: int
    rate_target: int
    rate_achieved: float
    events: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    p50_from_send_ms: float
    p99_from_send_ms: float
    applied_before_ack: int
    samples: int
    peak_rss_mb: float | None
    timeline_p50_ms: list[int]  # the median of each second of publishing
    fetch_p50_ms: float | None  # the raw consumer beside the worker
    fetch_p99_ms: float | None


@dataclass
class _Delays:
    """Per event (each record's delay counted once per event in it), in ms."""

    from_ack: list[float] = field(default_factory=list)
    from_send: list[float] = field(default_factory=list)
    fetched: list[float] = field(default_factory=list)
    early: int = 0  # seen applied before our ack callback ran: counted as 0
    by_second: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))

    def timeline(self) -> list[int]:
        return [round(statistics.median(self.by_second[s])) for s in sorted(self.by_second)]


@dataclass
class _Watchers:
    poller: AppliedPoller
    fetcher: FetchTimer

    def stop(self) -> None:
        for thread in (self.poller, self.fetcher):
            thread.stopping.set()
            thread.join(5)


def measure_latency(bench: Bench, rate: int, seconds: float, batch: int = 1) -> LatencyRun:
    """Publish at a steady rate to a running worker; ack → applied per event (by its record).

    With ``batch`` > 1 the Replayer sends what is pending whenever the pace makes it wait, as
    ``portflow replay --rate``/``simulate`` do: records of a few events each.
    """
    label = "latency" if batch == 1 else "latencyb"
    settings, env = bench.namespace(label)
    ensure_topics(settings)
    worker = bench.start_worker(env, f"worker-{label}")
    watchers = None
    try:
        wait_for_assignment(settings, worker, timeout_s=90)
        progress(f"{label}: publishing {rate:,} events/s for {seconds:g}s (batch {batch})")
        lines = generate_events(
            int(rate * seconds), seed=5000 + batch, id_prefix=f"lat{bench.run_id}"
        )
        watchers = _watch(bench, settings)
        producer = TimedProducer(make_producer(settings))
        published = _publish_paced(settings, producer, batch, rate, iter(lines))
        _wait_until_applied(watchers.poller, published, worker)
        peak = rss_mb(worker.process.pid, "VmHWM")
        batches = worker_batches(env["PORTFLOW_METRICS_ADDR"])
    finally:
        if watchers is not None:
            watchers.stop()
        bench.stop(worker)
    delays = _delays(producer, watchers)
    run = _latency_run(batch, rate, published, delays, peak)
    progress(f"{label}: median ack→applied ms per second of publishing: {run.timeline_p50_ms}")
    _report(label, run, batches)
    return run


def _watch(bench: Bench, settings: Settings) -> _Watchers:
    store = RedisStore.from_url(settings.redis_url, settings.topic_prefix)
    topic = settings.topic("shipment")
    poller = AppliedPoller(store, [f"{topic}:{p}" for p in range(PARTITIONS)])
    poller.start()
    fetcher = FetchTimer(bench.bootstrap, topic)
    fetcher.start()
    fetcher.ready.wait(30)
    return _Watchers(poller, fetcher)


def _publish_paced(
    settings: Settings, producer: TimedProducer, batch: int, rate: int, lines: Iterator[bytes]
) -> ReplayResult:
    """The events at ``rate`` by the project's Replayer, on a thread of its own (as replay)."""
    replayer = Replayer(settings, producer, batch=batch, pace=Pace(rate=rate), progress=False)
    results: list[ReplayResult] = []
    thread = threading.Thread(target=lambda: results.append(replayer.run_stream(lines)))
    thread.start()
    thread.join()
    producer.close()
    if not results:
        raise RuntimeError("the paced replay failed (see the messages above)")
    return results[0]


def _wait_until_applied(poller: AppliedPoller, published: ReplayResult, worker: Child) -> None:
    _, lasts = mark_ranges(published.offsets)
    deadline = time.monotonic() + 60
    while any(poller.marks[n] < last for n, last in lasts.items()):
        if poller.error:
            raise poller.error
        if time.monotonic() > deadline or not worker.alive():
            raise RuntimeError(f"the latency worker fell behind:\n{worker.tail()}")
        time.sleep(0.05)


def _delays(producer: TimedProducer, watchers: _Watchers) -> _Delays:
    delays = _Delays()
    first_send = min(sent for sent, _, _ in producer.times.values())
    for (topic, partition, offset), (sent, acked, events) in producer.times.items():
        applied = watchers.poller.applied_at(f"{topic}:{partition}", offset)
        if applied is None:
            continue
        if applied < acked:
            delays.early += 1
        from_ack = max(0.0, applied - acked) * 1000
        delays.from_ack += [from_ack] * events
        delays.from_send += [(applied - sent) * 1000] * events
        delays.by_second[int(sent - first_send)] += [from_ack] * events
        received = watchers.fetcher.received.get((partition, offset))
        if received is not None:
            delays.fetched += [max(0.0, received - acked) * 1000] * events
    return delays


def _latency_run(
    batch: int, rate: int, published: ReplayResult, delays: _Delays, peak: float | None
) -> LatencyRun:
    fetched = delays.fetched
    return LatencyRun(
        batch=batch,
        records=published.records,
        rate_target=rate,
        rate_achieved=published.events_per_s,
        events=published.events,
        p50_ms=percentile(delays.from_ack, 50),
        p99_ms=percentile(delays.from_ack, 99),
        max_ms=max(delays.from_ack),
        p50_from_send_ms=percentile(delays.from_send, 50),
        p99_from_send_ms=percentile(delays.from_send, 99),
        applied_before_ack=delays.early,
        samples=len(delays.from_ack),
        peak_rss_mb=peak,
        timeline_p50_ms=delays.timeline(),
        fetch_p50_ms=percentile(fetched, 50) if fetched else None,
        fetch_p99_ms=percentile(fetched, 99) if fetched else None,
    )


def ms_or_na(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} ms"


def _report(label: str, run: LatencyRun, batches: Batches) -> None:
    progress(
        f"{label}: {run.events:,} events in {run.records:,} records at "
        f"{run.rate_achieved:,.0f}/s; ack→applied "
        f"p50 {run.p50_ms:.0f} ms, p99 {run.p99_ms:.0f} ms, max {run.max_ms:.0f} ms "
        f"(send→applied p50 {run.p50_from_send_ms:.0f}, p99 "
        f"{run.p99_from_send_ms:.0f} ms); a raw consumer beside it fetched them "
        f"p50 {ms_or_na(run.fetch_p50_ms)}, p99 {ms_or_na(run.fetch_p99_ms)} after the ack; "
        f"worker: {batches.describe()}"
    )
