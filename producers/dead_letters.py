"""The dead-letter topic: read it back (``portflow dlq list``) and re-drive it (``dlq replay``).

Reading stops at each partition's high-water mark as the fetch responses report it (never
ListOffsets, which some brokers answer wrongly). Re-driving sends a record's original bytes and
key back to its source topic, with a header naming the dead letter it came from, so events
rejected under an old rule (or a since-fixed bug) are validated again.
"""

from __future__ import annotations

import time
from contextlib import closing
from dataclasses import dataclass
from itertools import islice
from typing import Iterator, Optional

from kafka import KafkaConsumer, TopicPartition

from portflow.adapters import dead_letter_headers as header
from portflow.adapters.kafka import client_security, connect
from portflow.config import Settings
from producers.replay import make_producer


@dataclass(frozen=True)
class DeadLetterRecord:
    partition: int
    offset: int
    key: Optional[bytes]
    value: bytes
    reason: str
    code: str
    source_topic: str
    source_partition: Optional[int]
    source_offset: Optional[int]
    batch_index: Optional[int]
    truncated_from: Optional[int] = None  # the original's size, if the value was cut

    def as_json(self) -> dict:
        return {"partition": self.partition, "offset": self.offset, "code": self.code,
                "reason": self.reason, "source_topic": self.source_topic,
                "source_partition": self.source_partition, "source_offset": self.source_offset,
                "batch_index": self.batch_index, "value": self.value.decode(errors="replace")}

    def summary(self) -> str:
        """Where it is and came from, why it was rejected, and the start of it: two lines."""
        where = f"{self.source_topic}:{self.source_partition}@{self.source_offset}"
        if self.batch_index is not None:
            where += f"[{self.batch_index}]"
        preview = self.value[:80].decode(errors="replace")
        return f"{self.partition}@{self.offset}  {where}  {self.code}: {self.reason}\n    {preview}"


def read_dead_letters(settings: Settings, idle_timeout_s: float = 5.0) -> Iterator[DeadLetterRecord]:
    """Every record of the DLQ topic, partition by partition, oldest first."""
    consumer = connect(settings, lambda wait_ms: KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap.split(","), bootstrap_timeout_ms=wait_ms,
        enable_auto_commit=False,
        client_id="portflow-dlq", **client_security(settings.kafka_security)))
    try:
        partitions = consumer.partitions_for_topic(settings.dlq_topic) or set()
        tps = [TopicPartition(settings.dlq_topic, p) for p in sorted(partitions)]
        if not tps:
            return
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        done: set = set()
        idle_since = time.monotonic()
        while len(done) < len(tps) and time.monotonic() - idle_since < idle_timeout_s:
            batches = consumer.poll(timeout_ms=500)
            for tp, messages in batches.items():
                idle_since = time.monotonic()
                for m in messages:
                    headers = {k: v for k, v in (m.headers or [])}
                    yield DeadLetterRecord(
                        m.partition, m.offset, m.key, m.value,
                        header.text(headers, header.REASON) or "(no reason header)",
                        header.text(headers, header.CODE) or "",
                        header.text(headers, header.SOURCE_TOPIC) or "",
                        header.number(headers, header.SOURCE_PARTITION),
                        header.number(headers, header.SOURCE_OFFSET),
                        header.number(headers, header.BATCH_INDEX),
                        header.number(headers, header.TRUNCATED_FROM))
            for tp in tps:
                highwater = consumer.highwater(tp)
                if highwater is not None and consumer.position(tp) >= highwater:
                    done.add(tp)
    finally:
        consumer.close()


def select_dead_letters(settings: Settings, code: Optional[str] = None,
                        limit: Optional[int] = None) -> list[DeadLetterRecord]:
    """The dead letters, of one rejection code if given, at most ``limit`` of them."""
    letters = (d for d in read_dead_letters(settings) if not code or d.code == code)
    return list(islice(letters, limit)) if limit else list(letters)


def redrive_letters(settings: Settings, letters: list[DeadLetterRecord]) -> dict[str, int]:
    """``redrive`` through a producer of its own, closed on every path."""
    with closing(make_producer(settings)) as producer:
        return redrive(settings, letters, producer)


def redrive(settings: Settings, letters: list[DeadLetterRecord], producer) -> dict[str, int]:
    """Send each letter's original bytes back to its source topic; count by topic.

    A letter that came from one event of a batch goes back as a single-event record. Letters
    whose source is not one of portflow's event topics, or whose value was cut to fit the DLQ,
    are skipped (counted as ``skipped``).
    """
    sent: dict[str, int] = {}
    futures = []
    for letter in letters:
        if letter.source_topic not in settings.event_topics or letter.truncated_from:
            sent["skipped"] = sent.get("skipped", 0) + 1
            continue
        origin = f"{settings.dlq_topic}:{letter.partition}:{letter.offset}".encode()
        futures.append(producer.send(letter.source_topic, key=letter.key, value=letter.value,
                                     headers=[(header.REDRIVEN_FROM, origin)]))
        sent[letter.source_topic] = sent.get(letter.source_topic, 0) + 1
    producer.flush()
    for future in futures:
        future.get(timeout=30)  # raises if the broker refused one
    return sent
