"""The dead-letter topic: read it back (``portflow dlq list``) and re-drive it (``dlq replay``).

Reading stops at each partition's end offset as the fetch responses report it (never
ListOffsets, which some brokers answer wrongly). Re-driving sends a record's original bytes and
key back to its source topic, with a header naming the dead letter it came from, so events
rejected under an old rule (or a since-fixed bug) are validated again.

The DLQ topic is an append-only log: the same rejected event may be on it several times (a
re-drive rejected again, a source re-read by ``portflow rebuild``, a worker's crash). So letters
are grouped when read, by the event they are about (``DeadLetterGroup``): a letter's group is
its original source (topic, partition, offset, batch index), or, for a letter of a re-driven
record, the group of the letter it was re-driven from (the ledger's record of where the re-drive
went, else the record's ``portflow-redriven-from`` header). What became of each re-drive is in
the re-drive ledger in Redis (``portflow.adapters.redis.redrives``): a re-driven record that was
applied leaves nothing on the DLQ.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, TypedDict

from kafka import KafkaConsumer, TopicPartition

from portflow.adapters import dead_letter_headers as header
from portflow.adapters.kafka import client_security, connect
from portflow.adapters.redis import RedisStore
from portflow.config import Settings
from portflow.domain.partitions import partition_name
from producers.replay import make_producer

# What became of a group's event (``DeadLetterGroup.status``).
REJECTED = "rejected"  # never re-driven
REJECTED_AGAIN = "rejected-again"  # re-driven, and the re-driven record was rejected too
REDRIVEN = "redriven"  # re-driven, not yet handled by the workers
ACCEPTED = "accepted"  # re-driven, and the workers handled it without rejecting it


class Redrive(TypedDict):
    """One re-drive of a group's event, as the ledger in Redis holds it."""

    letter: str  # the letter re-driven: ``<partition>@<offset>`` on the DLQ topic
    at: float  # when: Unix time
    to: str  # the record it became: ``<topic>:<partition>@<offset>``


class Rejected(TypedDict):
    """A rejection in a group's history (``DeadLetterGroup.history``)."""

    at: str  # RFC 3339, UTC
    event: Literal["rejected"]
    letter: str
    record: str
    code: str
    reason: str


class Redriven(TypedDict):
    """A re-drive in a group's history."""

    at: str
    event: Literal["redriven"]
    letter: str
    to: str


class Producer(Protocol):
    """What ``redrive`` needs of kafka-python's ``KafkaProducer`` (which ships no types)."""

    def send(
        self, topic: str, *, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]
    ) -> Any: ...  # kafka-python's FutureRecordMetadata

    def flush(self) -> None: ...


@dataclass(frozen=True)
class DeadLetterRecord:
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    reason: str
    code: str
    source_topic: str
    source_partition: int | None
    source_offset: int | None
    batch_index: int | None
    truncated_from: int | None = None  # the original's size, if the value was cut
    redriven_from: str | None = None  # of a re-driven record's letter: "<dlq>:<part>:<offset>"
    timestamp_ms: int = 0  # when the worker published it (Kafka's record timestamp)

    @property
    def position(self) -> str:
        """Where it is on the DLQ topic: ``<partition>@<offset>``."""
        return f"{self.partition}@{self.offset}"

    @property
    def record(self) -> str:
        """The record it was rejected from: ``<topic>:<partition>@<offset>``."""
        return f"{self.source_topic}:{self.source_partition}@{self.source_offset}"

    @property
    def source(self) -> str:
        """The event it was rejected for: its record, and its index if it was in a batch."""
        return self.record + (f"[{self.batch_index}]" if self.batch_index is not None else "")

    @property
    def at(self) -> str:
        return iso_time(self.timestamp_ms / 1000)

    def as_json(self) -> dict[str, object]:
        return {
            "partition": self.partition,
            "offset": self.offset,
            "code": self.code,
            "reason": self.reason,
            "source_topic": self.source_topic,
            "source_partition": self.source_partition,
            "source_offset": self.source_offset,
            "batch_index": self.batch_index,
            "redriven_from": self.redriven_from,
            "at": self.at,
            "value": self.value.decode(errors="replace"),
        }


def iso_time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class DeadLetterGroup:
    """One rejected event and its history: every letter about it, oldest first, and the
    re-drives of it the ledger holds (``{"letter", "at", "to"}`` each, oldest first)."""

    source: str  # the original letter's ``source`` (or, if that letter is gone, its position)
    letters: list[DeadLetterRecord]
    redrives: list[Redrive] = field(default_factory=list)
    status: str = REJECTED

    @property
    def latest(self) -> DeadLetterRecord:
        return self.letters[-1]

    @property
    def attempts(self) -> int:
        """Records rejected for this event: the original and each re-drive rejected again
        (the same record rejected twice, after a rebuild or a crash, is one attempt)."""
        return len({letter.source for letter in self.letters})

    @property
    def redriven(self) -> bool:
        """Re-driven before (as the ledger says, or a letter of a re-driven record shows)."""
        return bool(self.redrives) or any(letter.redriven_from for letter in self.letters)

    def history(self) -> list[Rejected | Redriven]:
        """Its rejections and re-drives, in time order."""
        rejections: list[tuple[float, Rejected | Redriven]] = [
            (
                letter.timestamp_ms / 1000,
                {
                    "at": letter.at,
                    "event": "rejected",
                    "letter": letter.position,
                    "record": letter.source,
                    "code": letter.code,
                    "reason": letter.reason,
                },
            )
            for letter in self.letters
        ]
        redrives: list[tuple[float, Rejected | Redriven]] = [
            (
                r["at"],
                {
                    "at": iso_time(r["at"]),
                    "event": "redriven",
                    "letter": r["letter"],
                    "to": r["to"],
                },
            )
            for r in self.redrives
        ]
        return [entry for _, entry in sorted(rejections + redrives, key=lambda e: e[0])]

    def as_json(self) -> dict[str, object]:
        """The latest letter's fields (as ``as_json`` of a letter) and the group's."""
        return {
            **self.latest.as_json(),
            "source": self.source,
            "status": self.status,
            "attempts": self.attempts,
            "letters": len(self.letters),
            "history": self.history(),
        }

    def summary(self) -> str:
        """Three lines: the event, status, attempts and latest reason; its history; its start."""
        steps = "; ".join(_step(e) for e in self.history())
        preview = self.latest.value[:80].decode(errors="replace")
        return (
            f"{self.source}  {self.status}  {self.attempts}  {self.latest.code}: "
            f"{self.latest.reason}\n    {steps}\n    {preview}"
        )


def _step(entry: Rejected | Redriven) -> str:
    if entry["event"] == "rejected":
        return f"{entry['at']} rejected {entry['code']} (letter {entry['letter']})"
    return f"{entry['at']} re-driven to {entry['to']}"


def group_letters(
    letters: list[DeadLetterRecord],
    ledger: Mapping[str, Sequence[Redrive]],
    marks: dict[str, int],
    dlq_topic: str,
) -> list[DeadLetterGroup]:
    """Group letters by the event they are about (see the module), oldest group first.

    ``ledger``: source → re-drives (``RedisStore.redrives``); ``marks``: the workers' marks of
    the partitions re-drives went to (to tell a re-drive accepted from one not yet handled).
    """
    at_position = {(letter.partition, letter.offset): letter for letter in letters}
    redriven_to = {r["to"]: source for source, redrives in ledger.items() for r in redrives}

    def origin(letter: DeadLetterRecord) -> str:
        seen: set[tuple[int, int] | None] = set()
        while letter.record not in redriven_to and letter.redriven_from:
            previous = letter_position(letter.redriven_from, dlq_topic)
            if previous not in at_position:  # gone (retention), or not ours
                return letter.redriven_from
            if previous in seen:  # (only forged headers could make a cycle)
                break
            seen.add(previous)
            letter = at_position[previous]
        return redriven_to.get(letter.record, letter.source)

    grouped: dict[str, list[DeadLetterRecord]] = {}
    for letter in sorted(letters, key=lambda d: (d.timestamp_ms, d.partition, d.offset)):
        grouped.setdefault(origin(letter), []).append(letter)
    groups = [
        DeadLetterGroup(source, members, list(ledger.get(source, [])))
        for source, members in grouped.items()
    ]
    for group in groups:
        group.status = group_status(group, marks)
    return groups


def letter_position(redriven_from: str, dlq_topic: str) -> tuple[int, int] | None:
    """The (partition, offset) a ``portflow-redriven-from`` value names on ``dlq_topic``."""
    topic, _, place = redriven_from.rpartition(":")
    topic, _, partition = topic.rpartition(":")
    if topic != dlq_topic or not (partition.isdigit() and place.isdigit()):
        return None
    return int(partition), int(place)


def group_status(group: DeadLetterGroup, marks: dict[str, int]) -> str:
    if not group.redrives:
        return REJECTED_AGAIN if group.redriven else REJECTED
    last = group.redrives[-1]["to"]
    if any(letter.record == last for letter in group.letters):
        return REJECTED_AGAIN
    name, _, offset = last.rpartition("@")
    return ACCEPTED if marks.get(name, -1) >= int(offset) else REDRIVEN


def read_groups(settings: Settings, store: RedisStore | None) -> list[DeadLetterGroup]:
    """The dead letters grouped, with the ledger of ``store`` (none without a store).

    The ledger and marks are read before the DLQ: the workers publish a letter before they move
    the mark past its record, so a re-drive the marks show handled has its letter in what is
    read after, if it was rejected.
    """
    ledger = store.redrives() if store is not None else {}
    names = sorted({r["to"].rpartition("@")[0] for redrives in ledger.values() for r in redrives})
    marks = store.marks_of(names) if store is not None else {}
    return group_letters(list(read_dead_letters(settings)), ledger, marks, settings.dlq_topic)


def read_dead_letters(
    settings: Settings, idle_timeout_s: float = 5.0
) -> Iterator[DeadLetterRecord]:
    """Every record of the DLQ topic, partition by partition, oldest first."""
    consumer = _dlq_consumer(settings)
    try:
        partitions = consumer.partitions_for_topic(settings.dlq_topic) or set()
        tps = [TopicPartition(settings.dlq_topic, p) for p in sorted(partitions)]
        if not tps:
            return
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        yield from _records_to_the_end(consumer, tps, idle_timeout_s)
    finally:
        consumer.close()


def _dlq_consumer(settings: Settings) -> KafkaConsumer:
    """A consumer that commits nothing, connected as ``connect`` waits for the broker."""
    return connect(
        settings,
        lambda wait_ms: KafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap.split(","),
            bootstrap_timeout_ms=wait_ms,
            enable_auto_commit=False,
            client_id="portflow-dlq",
            **client_security(settings.kafka_security),
        ),
    )


def _records_to_the_end(
    consumer: KafkaConsumer, tps: list[TopicPartition], idle_timeout_s: float
) -> Iterator[DeadLetterRecord]:
    """The assigned partitions' records until each is read to its end, or until nothing came
    for ``idle_timeout_s``."""
    done: set[TopicPartition] = set()
    idle_since = time.monotonic()
    while len(done) < len(tps) and time.monotonic() - idle_since < idle_timeout_s:
        batches = consumer.poll(timeout_ms=500)
        for messages in batches.values():
            idle_since = time.monotonic()
            yield from map(_dead_letter_record, messages)
        for tp in tps:
            highwater = consumer.highwater(tp)
            if highwater is not None and consumer.position(tp) >= highwater:
                done.add(tp)


def _dead_letter_record(m: Any) -> DeadLetterRecord:
    """One DLQ message (a kafka-python ``ConsumerRecord``) and what its headers say."""
    headers = dict(m.headers or [])
    return DeadLetterRecord(
        m.partition,
        m.offset,
        m.key,
        m.value,
        header.text(headers, header.REASON) or "(no reason header)",
        header.text(headers, header.CODE) or "",
        header.text(headers, header.SOURCE_TOPIC) or "",
        header.number(headers, header.SOURCE_PARTITION),
        header.number(headers, header.SOURCE_OFFSET),
        header.number(headers, header.BATCH_INDEX),
        header.number(headers, header.TRUNCATED_FROM),
        header.text(headers, header.REDRIVEN_FROM),
        max(m.timestamp or 0, 0),
    )


def select_groups(
    groups: list[DeadLetterGroup], code: str | None = None, limit: int | None = None
) -> list[DeadLetterGroup]:
    """The groups whose latest rejection has this code (if given), the first ``limit``."""
    chosen = [g for g in groups if not code or g.latest.code == code]
    return chosen[:limit] if limit is not None else chosen


@dataclass
class RedrivePlan:
    chosen: list[DeadLetterGroup]
    skipped: dict[str, int]  # why → how many

    def skipped_text(self) -> str:
        return ", ".join(f"{n:,} {why}" for why, n in self.skipped.items())


def plan_redrive(
    groups: list[DeadLetterGroup],
    event_topics: Collection[str],
    again: bool = False,
    limit: int | None = None,
) -> RedrivePlan:
    """Which groups to re-drive (their latest letter): those never re-driven, and with
    ``again`` those whose re-drive was rejected again too. Never one whose re-drive is not yet
    handled or was accepted (a second copy would count twice once past the dedupe window),
    nor a letter cut to fit the DLQ or from another topic than an event topic."""
    plan = RedrivePlan([], {})
    for group in groups:
        why = redrive_obstacle(group, event_topics, again)
        if why is None and limit is not None and len(plan.chosen) >= limit:
            why = f"beyond --limit {limit}"
        if why is None:
            plan.chosen.append(group)
        else:
            plan.skipped[why] = plan.skipped.get(why, 0) + 1
    return plan


def redrive_obstacle(
    group: DeadLetterGroup, event_topics: Collection[str], again: bool
) -> str | None:
    """Why the group is not to be re-driven, if it is not."""
    if group.status == REDRIVEN:
        return "re-driven and not yet handled by the workers"
    if group.status == ACCEPTED:
        return "accepted after a re-drive"
    if group.status == REJECTED_AGAIN and not again:
        return "already re-driven (use --again)"
    if group.latest.truncated_from:
        return "cut to fit the DLQ (re-publish the original)"
    if group.latest.source_topic not in event_topics:
        return "not from an event topic"
    return None


def redrive_groups(
    settings: Settings, store: RedisStore, groups: list[DeadLetterGroup]
) -> dict[str, int]:
    """``redrive`` through a producer of its own, closed on every path."""
    with closing(make_producer(settings)) as producer:
        return redrive(settings, store, groups, producer)


def redrive(
    settings: Settings, store: RedisStore, groups: list[DeadLetterGroup], producer: Producer
) -> dict[str, int]:
    """Send each group's latest letter back to its source topic, its original bytes and key
    with a header naming that letter; note each re-drive the broker acknowledged in the
    ledger (even if another failed). Returns the count by topic.

    A letter that came from one event of a batch goes back as a single-event record.
    """
    sent = []
    at = time.time()  # (before the workers can reject a re-driven record: the history's order)
    for group in groups:
        letter = group.latest
        origin = f"{settings.dlq_topic}:{letter.partition}:{letter.offset}".encode()
        sent.append(
            (
                group,
                producer.send(
                    letter.source_topic,
                    key=letter.key,
                    value=letter.value,
                    headers=[(header.REDRIVEN_FROM, origin)],
                ),
            )
        )
    producer.flush()
    noted: dict[str, list[Redrive]] = {}
    by_topic: dict[str, int] = {}
    try:
        for group, future in sent:
            record = future.get(timeout=30)  # raises if the broker refused it
            to = f"{partition_name(record.topic, record.partition)}@{record.offset}"
            noted[group.source] = [
                *group.redrives,
                {"letter": group.latest.position, "at": at, "to": to},
            ]
            by_topic[record.topic] = by_topic.get(record.topic, 0) + 1
    finally:
        store.set_redrives(noted)
    return by_topic
