"""The Faust application: one agent per event topic, all feeding one ``BatchProcessor``.

Agents receive what each fetch returned, per partition (``streams.intake``: Faust's per-record
path cost several times portflow's own work), read raw bytes (no Faust models: validation is the
core's job), gather records in batches while the previous batch is in Redis
(``streams.batching``), and acknowledge them only once Redis holds them. Faust tables and
changelogs are not used: Redis holds the state and the per-partition marks that make
restarts exact; where each partition is read from follows those marks
(``streams.positioning``), not Kafka's committed offsets.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import faust
from faust.sensors import Monitor
from faust.transport.drivers.aiokafka import Transport
from faust.types import TP, EventT, Message, StreamT, TopicT

from portflow.adapters.kafka import TopicIds, faust_credentials
from portflow.adapters.redis import RedisStore, StateLost
from portflow.config import Settings
from portflow.domain.partitions import partition_name
from portflow.retry import Backoff
from portflow.services.processing import (
    DEAD_LETTER_HEADROOM,
    MAX_DEAD_LETTER_BYTES,
    BatchStats,
    DeadLetter,
    Handoff,
    SourceRecord,
)
from streams.assignment import AssignmentTracker
from streams.batching import Batcher
from streams.drops import DropCollector
from streams.intake import BatchingConsumer, Fetched, batching_consumer
from streams.metrics import DataDirCollector, LostOffsetsCollector, WorkerMetrics
from streams.positioning import Positioner
from streams.processor import BatchProcessor, is_transient
from streams.yoy import YoyCollector

log = logging.getLogger(__name__)

# How long a batch may wait to fill: part of the latency at low rates. Bigger batches cost the
# worker less per record (one Redis step and one round of bookkeeping for all their records).
BATCH_WAIT_S = 0.05
# Fetches an agent's channel holds before the consumer waits (each up to
# broker_max_poll_records records): a bound on memory, enough to keep the agent busy.
FETCHES_QUEUED = 2
# How long the broker may hold a fetch that has no data yet. faust-streaming hard-codes 1.5 s;
# tansu answers a waiting fetch only near its deadline, so the wait would be a floor under the
# latency.
FETCH_MAX_WAIT_MS = 25


@dataclass(frozen=True)
class WorkerParts:
    """What ``create_app`` wires together, for the worker that runs it and for tests."""

    app: faust.App
    processor: BatchProcessor
    positioner: Positioner  # the worker re-executes itself when it asks to
    assignment: AssignmentTracker


class WorkerApp(faust.App):
    """Faust's App without its data directory: the worker keeps no Faust tables (Redis holds
    the state), so it writes nothing where it runs."""

    async def on_first_start(self) -> None:
        pass


def create_app(settings: Settings, store: RedisStore, metrics: WorkerMetrics) -> WorkerParts:
    app = WorkerApp(
        settings.group_id,
        broker=[f"kafka://{server}" for server in settings.kafka_bootstrap.split(",")],
        store="memory://",
        web_enabled=False,
        topic_partitions=settings.partitions,
        topic_allow_declare=False,  # portflow creates its topics itself (see ensure_topics)
        topic_disable_leader=True,  # no leader election needed: no leader topic to create
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=max(1.0, settings.session_timeout_s / 3),
        broker_rebalance_timeout=max(10.0, settings.session_timeout_s * 2),
        stream_buffer_maxsize=FETCHES_QUEUED,  # each agent's channel (app.topic drops maxsize=)
        stream_wait_empty=False,  # unacknowledged records are re-read (from the marks) anyway
        producer_acks=-1,
        # Kafka's default largest message (1 MiB), not Faust's 1,000,000 bytes: a dead letter
        # holds up to MAX_DEAD_LETTER_BYTES of its record plus headers (a letter too large to
        # send would stop its partition)
        producer_max_request_size=MAX_DEAD_LETTER_BYTES + DEAD_LETTER_HEADROOM,
        # per partition: a producer batch is at most ~1 MiB; prefetched bytes are worker memory
        consumer_max_fetch_size=2 * 1024 * 1024,
        broker_credentials=faust_credentials(settings.kafka_security),
        monitor=QuietMonitor(),
        # records per fetch (all partitions): what one Fetched holds at most
        broker_max_poll_records=settings.batch_records,
    )
    # before anything makes app.consumer; this app's transport alone (Faust: a class variable)
    app.transport.Consumer = BatchingConsumer  # type: ignore[misc]

    async def send_dead_letters(letters: list[DeadLetter]) -> None:
        pending = []
        for letter in letters:
            raw, headers = letter.payload()
            pending.append(
                await app.producer.send(
                    settings.dlq_topic, letter.source.key, raw, None, None, headers
                )
            )
        await asyncio.gather(*pending)

    processor = BatchProcessor(settings, store, send_dead_letters, on_applied=metrics.count_applied)
    positioner = Positioner(
        app,
        settings,
        store,
        processor,
        TopicIds(settings),
        on_lost=lambda topic, count: metrics.count_lost_offsets(
            settings.event_topics[topic], count
        ),
    )
    positioner.install()
    _shorten_fetch_wait(app, FETCH_MAX_WAIT_MS)
    yoy = YoyCollector(store, settings.tz, max_ahead_s=settings.max_event_ahead_s)
    metrics.registry.register(yoy)
    lost = LostOffsetsCollector(store, settings.event_topics)
    metrics.registry.register(lost)
    drops = DropCollector(store, settings.tz, max_ahead_s=settings.max_event_ahead_s)
    metrics.registry.register(drops)
    if settings.data_dir:
        metrics.registry.register(DataDirCollector(settings.data_dir))
    assignment = AssignmentTracker(
        app, settings, store, processor, positioner, metrics, yoy, lost, drops
    )
    assignment.install()

    for topic_name, event_type in settings.event_topics.items():
        topic = app.topic(
            topic_name,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
        )
        _register_agent(app, topic, event_type, processor, positioner, metrics)
    return WorkerParts(app, processor, positioner, assignment)


class QuietMonitor(Monitor):
    """Faust's Monitor without its bookkeeping of every record (a cost paid per record): it
    feeds Faust's web statistics, which the worker does not serve (portflow's metrics are its
    own). Faust's calls about offsets and commits still reach it."""

    def on_message_in(self, tp: TP, offset: int, message: Message) -> None:
        pass

    def on_stream_event_in(
        self, tp: TP, offset: int, stream: StreamT[Any], event: EventT[Any]
    ) -> dict[str, Any] | None:
        return None

    def on_stream_event_out(
        self,
        tp: TP,
        offset: int,
        stream: StreamT[Any],
        event: EventT[Any],
        state: dict[str, Any] | None = None,
    ) -> None:
        pass

    def on_message_out(self, tp: TP, offset: int, message: Message) -> None:
        pass


def _shorten_fetch_wait(app: faust.App, wait_ms: int) -> None:
    """Give the worker's aiokafka consumer ``fetch_max_wait_ms=wait_ms`` (Faust offers no
    setting): set on the consumer Faust creates, before it starts its fetcher."""
    thread = batching_consumer(app)._thread
    create = thread._create_worker_consumer

    def create_with_short_wait(transport: Transport) -> Any:  # aiokafka's consumer: untyped
        consumer = create(transport)
        consumer._fetch_max_wait_ms = wait_ms
        return consumer

    thread._create_worker_consumer = create_with_short_wait  # type: ignore[method-assign]


def _register_agent(
    app: faust.App,
    topic: TopicT,
    event_type: str,
    processor: BatchProcessor,
    positioner: Positioner,
    metrics: WorkerMetrics,
) -> None:
    @app.agent(topic, name=f"portflow-{event_type}")
    async def aggregate(stream: StreamT[Fetched]) -> None:
        # Each value is a Fetched (streams.intake): a fetch's records of this topic. Records are
        # acknowledged once Redis holds their effects. Single-event records share one Redis step
        # per batch; the processor splits a batch of batch records into atomic steps. While a
        # batch is in Redis the next is prepared and sent (``Handoff``), and about
        # PORTFLOW_BATCH_RECORDS records wait for the one after.
        consumer = batching_consumer(app)
        last: Handoff | None = None

        async def start(records: list[SourceRecord]) -> asyncio.Task[None]:
            """Start applying a batch; return once the next may start (this one's steps are
            in Redis) with the task that finishes it."""
            nonlocal last
            handoff = last = Handoff(last)
            applying = asyncio.ensure_future(apply(records, handoff))
            sent = asyncio.ensure_future(handoff.sent.wait())
            try:
                await asyncio.wait([sent, applying], return_when=asyncio.FIRST_COMPLETED)
            except asyncio.CancelledError:
                applying.cancel()
                raise
            finally:
                sent.cancel()
            return applying

        async def apply(records: list[SourceRecord], handoff: Handoff) -> None:
            started = time.perf_counter()
            try:
                stats = await _process_until_done(
                    processor, positioner, records, event_type, metrics, handoff
                )
                _acknowledge_applied(consumer, processor, records)
            finally:
                handoff.done.set()
            if stats.gaps:
                positioner.request_restart(
                    f"the next offset of {', '.join(sorted(stats.gaps))} did not arrive"
                )
            metrics.observe(event_type, stats, time.perf_counter() - started)
            if stats.rejections:
                log.warning(
                    "%s: %d rejected to the DLQ (first: %s)",
                    event_type,
                    len(stats.rejections),
                    stats.rejections[0].reason,
                )

        batcher = Batcher(start, processor.settings.batch_records, BATCH_WAIT_S)
        try:
            async for fetched in stream:
                if not fetched.is_current(app):
                    continue  # a rebalance came since: read again from the new positions
                for records in fetched.parts.values():
                    await batcher.put_many(
                        [
                            SourceRecord(
                                r.topic,
                                r.partition,
                                r.offset,
                                r.key,
                                r.value,
                                tuple(r.headers or ()),
                            )
                            for r in records
                        ]
                    )
        finally:
            await batcher.close()


def _acknowledge_applied(
    consumer: BatchingConsumer, processor: BatchProcessor, records: list[SourceRecord]
) -> None:
    """Acknowledge, per partition, the batch's offsets up to the mark Redis holds now (past a
    gap or a record not applied, none): Kafka's committed offset never passes Redis."""
    spans: dict[tuple[str, int], list[int]] = {}
    for record in records:  # (offsets of a partition re-read after a rebalance may go down)
        span = spans.get((record.topic, record.partition))
        if span is None:
            spans[(record.topic, record.partition)] = [record.offset, record.offset]
        elif record.offset < span[0]:
            span[0] = record.offset
        elif record.offset > span[1]:
            span[1] = record.offset
    for (topic, partition), (first, last) in spans.items():
        mark = processor.mark(partition_name(topic, partition))
        if mark is not None and mark >= first:
            consumer.ack_applied(TP(topic, partition), first, min(last, mark))


# Records one batch may quarantine at full speed. Beyond that the worker suspects its own code,
# not the records: it waits before each further one (backoff up to a minute), so that a
# systemic fault shows (PortflowPartitionStuck) before it sends much to the DLQ, and yet no
# batch is retried forever.
MAX_QUARANTINED_PER_BATCH = 10
BATCH_BACKOFF = Backoff(1.0, 60.0)  # between retries of one batch


async def _process_until_done(
    processor: BatchProcessor,
    positioner: Positioner,
    records: list[SourceRecord],
    event_type: str,
    metrics: WorkerMetrics,
    handoff: Handoff,
) -> BatchStats:
    """Process a batch until it is done, whatever fails.

    Infrastructure failures (Redis, Kafka) are retried with backoff: re-processing is safe
    (marks and dedupe make it idempotent), and the records stay unacknowledged meanwhile, so a
    stuck batch shows as lag and as the age of its oldest record, never as loss. Any other
    failure is blamed on the record that causes it, which ``BatchProcessor.isolate`` finds and
    quarantines: it goes to the DLQ and the batch goes on. When Redis lost its state, the
    worker re-reads its partitions from the start first.
    """
    names = sorted({record.partition_name for record in records})
    metrics.records_pending(names)
    probes: list[BatchStats] = []
    suspect: BaseException | None = None  # the last failure that was not the infrastructure's
    quarantined = 0
    delays = BATCH_BACKOFF.delays()
    try:
        while True:
            try:
                if suspect is not None:
                    quarantined += await processor.isolate(records, suspect, probes) is not None
                    suspect = None
                stats = await processor.process(records, handoff)
                for probe in probes:
                    stats.absorb(probe)
                return stats
            except StateLost as lost:
                positioner.request_restart(str(lost))
                await asyncio.sleep(3600)  # the records stay unacknowledged; the stop cancels this
                continue
            except asyncio.CancelledError:
                raise
            except Exception as failure:
                transient = is_transient(failure)
                if transient or quarantined >= MAX_QUARANTINED_PER_BATCH:
                    delay = next(delays)
                    metrics.batch_retrying(event_type, True)
                    log.error(
                        "%s: a batch of %d records (%s) failed: %s: %s; %s in %.0fs",
                        event_type,
                        len(records),
                        _where(records),
                        type(failure).__name__,
                        failure,
                        "retrying"
                        if transient
                        else f"{quarantined} of its records were dead-lettered already "
                        "(something systemic?): isolating the next",
                        delay,
                        exc_info=not transient,
                    )
                    await asyncio.sleep(delay)
                suspect = None if transient else failure
    finally:
        metrics.batch_retrying(event_type, False)
        metrics.records_done(names)


def _where(records: list[SourceRecord]) -> str:
    """``topic:partition offsets first-last`` of each partition of a batch (a log's words)."""
    spans: dict[str, list[int]] = {}
    for record in records:
        spans.setdefault(record.partition_name, []).append(record.offset)
    return ", ".join(
        f"{name} offsets {min(offsets)}-{max(offsets)}" for name, offsets in sorted(spans.items())
    )
