"""``portflow replay``: publish a JSON Lines file of events, exactly as written, in file order.

Consecutive events of a topic are packed into batch records (the original bytes of each line,
never re-encoded, so decimals stay exact). A line that is not a JSON object with a known
``type`` is published unchanged as a record of its own to the shipments topic, so the worker's
rejection path sees it. ``wait_until_applied`` is the barrier behind ``--wait``: it compares the
offsets the broker returned for our records with the worker's per-partition high-water marks in
Redis (never with ListOffsets, which some brokers answer wrongly).
"""

from __future__ import annotations

import gzip
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterator, Mapping, Optional

import msgspec
from kafka import KafkaProducer
from kafka.errors import KafkaError
from tqdm import tqdm

from portflow.adapters.kafka import client_security, connect
from portflow.adapters.redis_store import RedisStore
from portflow.config import Settings
from portflow.domain.events import EVENT_TYPES, MAX_BATCH_EVENTS
from portflow.domain.partitions import partition_name
from portflow.errors import PortflowError

log = logging.getLogger(__name__)

DEFAULT_BATCH = 500
MAX_RECORD_BYTES = 900 * 1024  # stay well under Kafka's default 1 MiB message limit


class ReplayError(PortflowError, RuntimeError):
    """Replay could not publish everything, or the worker did not catch up in time."""


class _Probe(msgspec.Struct):
    """Just enough of an event to route and pace it."""

    type: Any = None
    ts: Any = None
    event_id: Any = None
    declaration_id: Any = None


_PROBE = msgspec.json.Decoder(_Probe)


@dataclass(frozen=True)
class Pace:
    """How fast to publish: as fast as possible, N events per second, or event time sped up."""

    rate: Optional[float] = None
    speed: Optional[float] = None

    def __post_init__(self) -> None:
        if self.rate is not None and self.speed is not None:
            raise ValueError("choose one of --rate and --speed")
        for name, value in (("--rate", self.rate), ("--speed", self.speed)):
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive")


@dataclass
class ReplayResult:
    events: int = 0
    other_lines: int = 0
    records: int = 0
    seconds: float = 0.0
    # (topic, partition) -> (first offset, last offset) of what we published
    offsets: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


class _Delivery:
    """Collects broker acknowledgements from the producer's I/O thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.offsets: dict[tuple[str, int], tuple[int, int]] = {}
        self.errors: list[str] = []

    def ok(self, metadata) -> None:
        tp = (metadata.topic, metadata.partition)
        with self.lock:
            first, last = self.offsets.get(tp, (metadata.offset, metadata.offset))
            self.offsets[tp] = (min(first, metadata.offset), max(last, metadata.offset))

    def failed(self, where: str):
        def record(exc: BaseException) -> None:
            with self.lock:
                self.errors.append(f"{where}: {exc}")
        return record


def make_producer(settings: Settings) -> KafkaProducer:
    """An idempotent producer that waits for every in-sync replica: a record retried after a
    broker failover is written once, in order, and acknowledged only once it would survive the
    loss of its leader. A record still unsent after two minutes fails the run."""
    return connect(settings, lambda wait_ms: KafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap.split(","),
        bootstrap_timeout_ms=wait_ms,
        client_id="portflow-replay",
        acks="all",
        enable_idempotence=True,
        linger_ms=10,
        batch_size=1024 * 1024,
        max_request_size=1024 * 1024,
        retry_backoff_ms=200,
        request_timeout_ms=30_000,
        delivery_timeout_ms=120_000,
        **client_security(settings.kafka_security),
    ))


def _tqdm_disable(progress: bool | None) -> bool | None:
    """tqdm's ``disable``: None shows bars only on a terminal; True/False force them."""
    return None if progress is None else not progress


class Replayer:
    """Publishes events with batching and pacing; one instance per ``portflow replay`` run."""

    def __init__(self, settings: Settings, producer: KafkaProducer, batch: int = DEFAULT_BATCH,
                 pace: Pace = Pace(), progress: bool | None = None) -> None:
        if not 1 <= batch <= MAX_BATCH_EVENTS:
            raise ValueError(f"--batch must be 1 to {MAX_BATCH_EVENTS}")
        self.settings = settings
        self.producer = producer
        self.batch = batch
        self.pace = pace
        self.progress = progress
        self.topic_of = {t: settings.topic(t) for t in EVENT_TYPES}
        self.delivery = _Delivery()
        self.result = ReplayResult()
        self._pending: dict[str, list[bytes]] = {}
        self._pending_bytes: dict[str, int] = {}
        self._pending_key: dict[str, Optional[bytes]] = {}
        self._first_ts: Optional[datetime] = None
        self._started = 0.0

    def run(self, paths: list[str]) -> ReplayResult:
        self._started = time.monotonic()
        total = sum(os.path.getsize(p) for p in paths)
        with tqdm(total=total, unit="B", unit_scale=True, desc="replay",
                  disable=_tqdm_disable(self.progress)) as bar:
            for path in paths:
                with open(path, "rb") as raw:
                    stream = gzip.open(raw, "rb") if path.endswith(".gz") else raw
                    position = 0
                    for number, line in enumerate(stream, 1):
                        self._publish_line(line, path, number)
                        if number % 1024 == 0:
                            now = raw.tell()
                            bar.update(now - position)
                            position = now
                            bar.set_postfix(events=self.result.events, refresh=False)
                    bar.update(raw.tell() - position)
        return self._finish()

    def _finish(self) -> ReplayResult:
        """Send what is pending, wait for the broker's acknowledgements, and account."""
        self._flush_all()
        self.producer.flush()
        self.result.seconds = time.monotonic() - self._started
        self.result.offsets = dict(self.delivery.offsets)
        if self.delivery.errors:
            raise ReplayError(
                f"{len(self.delivery.errors)} record(s) were not published; first: "
                f"{self.delivery.errors[0]}"
            )
        return self.result

    def run_stream(self, lines: Iterator[bytes], max_events: Optional[int] = None,
                   duration_s: Optional[float] = None) -> ReplayResult:
        """Publish an endless stream (``portflow simulate``) until a limit or Ctrl-C."""
        self._started = time.monotonic()
        try:
            for number, line in enumerate(lines, 1):
                self._publish_line(line, "simulate", number)
                if max_events is not None and self.result.events >= max_events:
                    break
                if duration_s is not None and time.monotonic() - self._started >= duration_s:
                    break
        except KeyboardInterrupt:
            pass
        return self._finish()

    def _publish_line(self, line: bytes, path: str, number: int) -> None:
        line = line.strip()
        if not line:
            return
        try:
            probe = _PROBE.decode(line)
            event_type = probe.type if probe.type in self.topic_of else None
        except (msgspec.DecodeError, UnicodeDecodeError):
            probe, event_type = None, None
        if event_type is None:
            # Not an event we can route: publish it alone, unchanged, for the worker to reject.
            self.result.other_lines += 1
            self._send(self.settings.topic("shipment"), None, line, f"{path}:{number}")
            return
        self._wait_for_turn(probe)
        topic = self.topic_of[event_type]
        key = probe.declaration_id if event_type == "customs" else probe.event_id
        if topic in self._pending and self._pending_bytes[topic] + len(line) > MAX_RECORD_BYTES:
            self._flush(topic)
        pending = self._pending.setdefault(topic, [])
        if not pending:
            self._pending_key[topic] = key.encode() if isinstance(key, str) else None
            self._pending_bytes[topic] = 2
        pending.append(line)
        self._pending_bytes[topic] += len(line) + 1
        self.result.events += 1
        if len(pending) >= self.batch:
            self._flush(topic)

    def _wait_for_turn(self, probe: _Probe) -> None:
        """Sleep until this event is due under the pace (flushing what is pending first)."""
        if self.pace.rate:
            due = self._started + self.result.events / self.pace.rate
        elif self.pace.speed and isinstance(probe.ts, str):
            try:
                ts = datetime.fromisoformat(probe.ts)
            except ValueError:
                return
            if ts.tzinfo is None:
                return
            if self._first_ts is None:
                self._first_ts = ts
            due = self._started + (ts - self._first_ts).total_seconds() / self.pace.speed
        else:
            return
        delay = due - time.monotonic()
        if delay > 0.001:
            self._flush_all()
            time.sleep(delay)

    def _flush_all(self) -> None:
        for topic in list(self._pending):
            self._flush(topic)

    def _flush(self, topic: str) -> None:
        lines = self._pending.pop(topic, [])
        if not lines:
            return
        value = lines[0] if self.batch == 1 else b"[" + b",".join(lines) + b"]"
        self._send(topic, self._pending_key.pop(topic, None), value, topic)

    def _send(self, topic: str, key: Optional[bytes], value: bytes, where: str) -> None:
        try:
            future = self.producer.send(topic, key=key, value=value)
        except KafkaError as exc:
            self.delivery.failed(where)(exc)
            return
        future.add_callback(self.delivery.ok)
        future.add_errback(self.delivery.failed(where))
        self.result.records += 1


def wait_until_applied(store: RedisStore, offsets: dict[tuple[str, int], tuple[int, int]],
                       timeout_s: float, progress: bool | None = None,
                       topic_ids: Mapping[str, str] | None = None) -> float:
    """Block until every partition's high-water mark reaches our last offset; return seconds.

    The mark moves past applied, duplicate and rejected records alike, so this is a barrier
    for everything we published. With ``topic_ids`` (topic → the Kafka id it had when we
    published), marks count only once the workers have tied them to those ids: marks left
    from an earlier topic of the same name (a broker that lost its data) must not pass.
    """
    started = time.monotonic()
    targets = {partition_name(*tp): last for tp, (_, last) in offsets.items()}
    firsts = {partition_name(*tp): first for tp, (first, _) in offsets.items()}
    total = sum(targets[n] - firsts[n] + 1 for n in targets)
    with tqdm(total=total, unit="rec", desc="applied", disable=_tqdm_disable(progress)) as bar:
        while True:
            marks = store.high_water_marks_of(sorted(targets))
            done = sum(min(max(marks[n] - firsts[n] + 1, 0), targets[n] - firsts[n] + 1)
                       for n in targets)
            bar.update(done - bar.n)
            behind = {n: (marks[n], targets[n]) for n in targets if marks[n] < targets[n]}
            ids_adopted = (not topic_ids
                           or store.topic_ids_of(sorted(topic_ids)) == dict(topic_ids))
            if not behind and ids_adopted:
                return time.monotonic() - started
            if time.monotonic() - started > timeout_s:
                waiting = [f"{n} at {m} of {t}" for n, (m, t) in sorted(behind.items())[:4]]
                if not ids_adopted:
                    waiting.insert(0, "the topics' current Kafka ids not yet seen by a worker")
                raise ReplayError(
                    f"timed out after {timeout_s:g}s: {len(behind)} partition(s) not yet applied "
                    f"({', '.join(waiting)}). Is `portflow worker` running against "
                    f"this Redis and topic prefix {store.root!r}?"
                )
            time.sleep(0.1)
