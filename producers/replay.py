"""``portflow replay``: publish a JSON Lines file of events, exactly as written, in file order.

Consecutive events of a topic are packed into batch records (the original bytes of each line,
never re-encoded, so decimals stay exact). A line that is not a JSON object with a known
``type`` is published unchanged as a record of its own to the shipments topic, so the worker's
rejection path sees it. ``--wait`` is ``portflow.services.progress.wait_until_applied``.
"""

from __future__ import annotations

import gzip
import logging
import os
import threading
from contextlib import closing
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterator, Optional

import msgspec
from kafka import KafkaProducer
from kafka.errors import KafkaError
from tqdm import tqdm

from portflow.adapters.kafka import client_security, connect, ensure_topics
from portflow.config import Settings
from portflow.domain.events import EVENT_TYPES, MAX_BATCH_EVENTS
from portflow.errors import PortflowError, UsageError
from portflow.services.progress import progress_bar_disabled

log = logging.getLogger(__name__)

DEFAULT_BATCH = 500
MAX_RECORD_BYTES = 900 * 1024  # stay well under Kafka's default 1 MiB message limit


class ReplayError(PortflowError, RuntimeError):
    """Replay could not publish everything."""


class InvalidPublishing(UsageError, ValueError):
    """A pace or batch size that cannot be published with."""


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
            raise InvalidPublishing("choose one of --rate and --speed")
        for name, value in (("--rate", self.rate), ("--speed", self.speed)):
            if value is not None and not value > 0:
                raise InvalidPublishing(f"{name} must be positive")


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

    def summary(self) -> str:
        others = f" ({self.other_lines:,} other lines)" if self.other_lines else ""
        return (f"published {self.events:,} events in {self.records:,} records{others} in "
                f"{self.seconds:.1f}s ({self.events_per_s:,.0f} events/s)")


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


class Replayer:
    """Publishes events with batching and pacing; one instance per ``portflow replay`` run."""

    def __init__(self, settings: Settings, producer: KafkaProducer, batch: int = DEFAULT_BATCH,
                 pace: Pace = Pace(), progress: bool | None = None) -> None:
        if not 1 <= batch <= MAX_BATCH_EVENTS:
            raise InvalidPublishing(f"--batch must be 1 to {MAX_BATCH_EVENTS}")
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
                  disable=progress_bar_disabled(self.progress)) as bar:
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


def publish(settings: Settings, run: Callable[[Replayer], ReplayResult], *,
            batch: int = DEFAULT_BATCH, pace: Pace = Pace(),
            progress: bool | None = None) -> ReplayResult:
    """Create missing topics, then ``run(replayer)`` through a producer closed on every path
    (a failed publish still flushes nothing half-sent into the next run)."""
    replayer = Replayer(settings, None, batch=batch, pace=pace, progress=progress)
    ensure_topics(settings)
    with closing(make_producer(settings)) as replayer.producer:
        return run(replayer)
