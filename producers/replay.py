"""``portflow replay``: publish a JSON Lines file of events, exactly as written, in file order.

Consecutive events of a topic are packed into batch records (the original bytes of each line,
never re-encoded, so decimals stay exact). A line that is not a JSON object with a known
``type`` is published unchanged as a record of its own to the shipments topic, so the worker's
rejection path sees it. A line too large for any record is published cut (see ``_publish_cut``).
Every record carries the run's id (header ``portflow-replay-run``), so the workers count what
they did to this run's events; ``SentRecords`` maps that back to files and lines. ``--wait`` is
``portflow.services.progress.wait_until_applied``.

A run that stops part-way (a first Ctrl-C, a file unreadable part-way, records the broker did
not take) still sends what it holds, then raises ``ReplayError`` saying up to which line it
published: running it again is safe, as events already applied count once.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NoReturn

import msgspec
from kafka import KafkaProducer
from kafka.errors import KafkaError
from tqdm import tqdm

from portflow.adapters import dead_letter_headers as header
from portflow.adapters.kafka import client_security, connect, ensure_topics
from portflow.config import Settings
from portflow.domain.events import EVENT_TYPES, MAX_BATCH_EVENTS, MAX_EVENT_BYTES
from portflow.errors import EXIT_INTERRUPTED, PortflowError, UsageError
from portflow.services.progress import progress_bar_disabled
from producers.replay_files import UnreadablePart, read_lines
from producers.replay_records import SentRecords

log = logging.getLogger(__name__)

DEFAULT_BATCH = 500
MAX_RECORD_BYTES = 900 * 1024  # stay well under Kafka's default 1 MiB message limit
RERUN_IS_SAFE = "running it again is safe: events already applied count once"


class ReplayError(PortflowError, RuntimeError):
    """Replay stopped before publishing everything; ``result`` holds what it did publish."""

    def __init__(self, message: str, result: ReplayResult | None = None) -> None:
        super().__init__(message)
        self.result = result


class ReplayInterrupted(ReplayError):
    """Ctrl-C stopped the replay."""

    exit_code = EXIT_INTERRUPTED


class InvalidPublishing(UsageError, ValueError):
    """A pace or batch size that cannot be published with."""


class _Probe(msgspec.Struct):
    """Just enough of an event to route and pace it."""

    type: str | None = None  # else not routable (a list or an object would not even hash)
    ts: Any = None
    event_id: Any = None
    declaration_id: Any = None


_PROBE = msgspec.json.Decoder(_Probe)


@dataclass(frozen=True)
class Pace:
    """How fast to publish: as fast as possible, N events per second, or event time sped up."""

    rate: float | None = None
    speed: float | None = None

    def __post_init__(self) -> None:
        if self.rate is not None and self.speed is not None:
            raise InvalidPublishing("choose one of --rate and --speed")
        for name, value in (("--rate", self.rate), ("--speed", self.speed)):
            if value is not None and not value > 0:
                raise InvalidPublishing(f"{name} must be positive")


@dataclass
class ReplayResult:
    run_id: str = ""
    events: int = 0
    other_lines: int = 0
    cut_lines: int = 0  # lines too large for a record, published cut (also counted above)
    records: int = 0
    seconds: float = 0.0
    # (topic, partition) -> (first offset, last offset) of what we published
    offsets: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)
    sent: SentRecords = field(default_factory=SentRecords)

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def counts(self) -> str:
        others = f" ({self.other_lines:,} other line(s))" if self.other_lines else ""
        return f"{self.events:,} events in {self.records:,} records{others}"

    def summary(self) -> str:
        said = (
            f"published {self.counts()} in {self.seconds:.1f}s ({self.events_per_s:,.0f} events/s)"
        )
        if self.cut_lines:
            said += (
                f"; {self.cut_lines:,} line(s) over the {MAX_RECORD_BYTES // 1024:,} KiB "
                f"record limit went cut to {MAX_EVENT_BYTES + 1:,} bytes, for the worker "
                "to reject as too large"
            )
        return said


def make_producer(settings: Settings) -> KafkaProducer:
    """An idempotent producer that waits for every in-sync replica: a record retried after a
    broker failover is written once, in order, and acknowledged only once it would survive the
    loss of its leader. A record still unsent after two minutes fails the run."""
    return connect(
        settings,
        lambda wait_ms: KafkaProducer(
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
        ),
    )


class Replayer:
    """Publishes events with batching and pacing; one instance per ``portflow replay`` run."""

    def __init__(
        self,
        settings: Settings,
        producer: KafkaProducer,
        batch: int = DEFAULT_BATCH,
        pace: Pace = Pace(),
        progress: bool | None = None,
    ) -> None:
        if not 1 <= batch <= MAX_BATCH_EVENTS:
            raise InvalidPublishing(f"--batch must be 1 to {MAX_BATCH_EVENTS}")
        self.settings = settings
        self.producer = producer
        self.batch = batch
        self.pace = pace
        self.progress = progress
        self.topic_of = {t: settings.topic(t) for t in EVENT_TYPES}
        self.result = ReplayResult(run_id=uuid.uuid4().hex)
        self.sent = self.result.sent
        self._headers = [(header.REPLAY_RUN, self.result.run_id.encode())]
        self._pending: dict[str, list[bytes]] = {}
        self._pending_lines: dict[str, list[int]] = {}
        self._pending_bytes: dict[str, int] = {}
        self._pending_key: dict[str, bytes | None] = {}
        self._path = ""
        self._last_line: tuple[str, int] | None = None  # the last line handed to publishing
        self._stop: tuple[type[ReplayError], str] | None = None
        self._first_ts: datetime | None = None
        self._started = 0.0

    def interrupt(self) -> None:
        """Stop after the current line and send what is pending (safe from a signal handler)."""
        self._stop = (ReplayInterrupted, "interrupted (Ctrl-C)")

    def run(self, paths: list[str]) -> ReplayResult:
        self._started = time.monotonic()
        total = sum(os.path.getsize(p) for p in paths)
        with tqdm(
            total=total,
            unit="B",
            unit_scale=True,
            desc="replay",
            disable=progress_bar_disabled(self.progress),
        ) as bar:
            try:
                for path in paths:
                    if self._stop:
                        break
                    self._publish_file(path, bar)
            except (UnreadablePart, OSError) as exc:  # (a file gone since it was checked)
                self._stop = (ReplayError, f"cannot read {exc}")
        return self._finish()

    def _publish_file(self, path: str, bar: tqdm[NoReturn]) -> None:
        """Publish a file's lines; its records hold no line of another file."""
        self._path = path
        with open(path, "rb") as raw:
            position = 0
            for number, line in read_lines(path, raw):
                if self._stop:
                    break
                self._publish_line(line, path, number)
                self._last_line = (path, number)
                if number % 1024 == 0:
                    now = raw.tell()
                    bar.update(now - position)
                    position = now
                    bar.set_postfix(events=self.result.events, refresh=False)
            bar.update(raw.tell() - position)
        self._flush_all()

    def _finish(self) -> ReplayResult:
        """Send what is pending, wait for the broker's acknowledgements, and account."""
        self._flush_all()
        self.producer.flush()
        self.result.seconds = time.monotonic() - self._started
        self.result.offsets = dict(self.sent.offsets)
        error, why = self._stop or (ReplayError, "")
        if self.sent.failures:
            failed = (
                f"{len(self.sent.failures):,} of {self.sent.count:,} records were not "
                f"published (first: {self.sent.failures[0]})"
            )
            why = f"{why} and {failed}" if why else failed
        if why:
            raise error(
                f"replay stopped part-way, {why}: {self.published_so_far()}; {RERUN_IS_SAFE}",
                self.result,
            )
        return self.result

    def published_so_far(self) -> str:
        """What is published, and up to which line (of the files read in order)."""
        sent = self.sent
        counts = self.result.counts()
        if sent.failures or sent.in_flight:
            counts += f" sent, {sent.acknowledged:,} of those records acknowledged by the broker"
        unpublished = sent.first_unpublished() if sent.keep_lines else None
        if unpublished:
            return f"every line before {unpublished[0]}:{unpublished[1]:,} is published: {counts}"
        if self._last_line:
            path, number = self._last_line
            return f"every line up to {path}:{number:,} is published: {counts}"
        return "nothing was published"

    def run_stream(
        self, lines: Iterator[bytes], max_events: int | None = None, duration_s: float | None = None
    ) -> ReplayResult:
        """Publish an endless stream (``portflow simulate``) until a limit or Ctrl-C."""
        self._started = time.monotonic()
        self.sent = self.result.sent = SentRecords(keep_lines=False)  # memory stays flat
        self._headers = []  # nobody asks the workers what became of a stream's events
        self._path = "simulate"
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
            probe: _Probe | None = _PROBE.decode(line)
        except (msgspec.DecodeError, UnicodeDecodeError):  # (a type that is no string too)
            probe = None
        event_type = probe.type if probe is not None and probe.type in self.topic_of else None
        if len(line) > MAX_RECORD_BYTES:
            self._publish_cut(line, event_type, path, number)
            return
        if probe is None or event_type is None:
            # Not an event we can route: publish it alone, unchanged, for the worker to reject.
            self.result.other_lines += 1
            self._send(self.settings.topic("shipment"), None, line, path, [number])
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
            self._pending_lines[topic] = []
        pending.append(line)
        self._pending_lines[topic].append(number)
        self._pending_bytes[topic] += len(line) + 1
        self.result.events += 1
        if len(pending) >= self.batch:
            self._flush(topic)

    def _publish_cut(self, line: bytes, event_type: str | None, path: str, number: int) -> None:
        """A line no record can hold: its first ``MAX_EVENT_BYTES + 1`` bytes go alone, for the
        worker to reject (an object that large is ``too_large`` whatever it holds), so it is
        counted and dead-lettered like any rejected line. The header names the line's size."""
        self.result.cut_lines += 1
        if event_type is None:
            self.result.other_lines += 1
        else:
            self.result.events += 1
        topic = self.settings.topic("shipment") if event_type is None else self.topic_of[event_type]
        self._send(topic, None, line[: MAX_EVENT_BYTES + 1], path, [number], cut_from=len(line))

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
        if due - time.monotonic() > 0.001:
            self._flush_all()
            while not self._stop and (left := due - time.monotonic()) > 0:
                time.sleep(min(left, 0.1))  # a Ctrl-C is heeded within a tenth of a second

    def _flush_all(self) -> None:
        for topic in list(self._pending):
            self._flush(topic)

    def _flush(self, topic: str) -> None:
        lines = self._pending.pop(topic, [])
        if not lines:
            return
        value = lines[0] if self.batch == 1 else b"[" + b",".join(lines) + b"]"
        self._send(
            topic,
            self._pending_key.pop(topic, None),
            value,
            self._path,
            self._pending_lines.pop(topic),
        )

    def _send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        path: str,
        lines: Sequence[int],
        cut_from: int | None = None,
    ) -> None:
        record = self.sent.add(path, lines, cut_from)
        headers = self._headers
        if cut_from is not None:
            headers = [*headers, (header.TRUNCATED_FROM, str(cut_from).encode())]
        self.result.records += 1
        try:
            future = self.producer.send(topic, key=key, value=value, headers=headers)
        except KafkaError as exc:
            self.sent.failed(record, exc)
            return
        future.add_callback(
            lambda metadata: self.sent.delivered(
                record, metadata.topic, metadata.partition, metadata.offset
            )
        )
        future.add_errback(lambda exc: self.sent.failed(record, exc))


def publish(
    settings: Settings,
    run: Callable[[Replayer], ReplayResult],
    *,
    batch: int = DEFAULT_BATCH,
    pace: Pace = Pace(),
    progress: bool | None = None,
) -> ReplayResult:
    """Create missing topics, then ``run(replayer)`` through a producer closed on every path
    (a failed publish still flushes nothing half-sent into the next run)."""
    replayer = Replayer(settings, None, batch=batch, pace=pace, progress=progress)
    ensure_topics(settings)
    with closing(make_producer(settings)) as replayer.producer:
        return run(replayer)
