"""Records as the processor receives them, and the dead letters it makes of what it rejects."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from portflow.adapters import dead_letter_headers as header
from portflow.domain.events import Rejection
from portflow.domain.partitions import partition_name

# The largest dead-letter value published whole: with its headers (at most the headroom) it stays
# under Kafka's default message size (1 MiB). A record just under that limit would not fit again
# once headers are added, and a letter that cannot be sent would stop its partition: it is cut,
# and says so (the source offset names the original).
MAX_DEAD_LETTER_BYTES = 1_000_000
DEAD_LETTER_HEADROOM = 1024 * 1024 - MAX_DEAD_LETTER_BYTES


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """A Kafka record, as plain data: the processor needs no Kafka client."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()  # as the producer set them
    # made once: the processor asks for it several times a record
    partition_name: str = field(init=False, repr=False, compare=False)
    run: str | None = field(init=False, repr=False, compare=False)  # ``replay_run``

    def __post_init__(self) -> None:
        object.__setattr__(self, "partition_name", partition_name(self.topic, self.partition))
        object.__setattr__(self, "run", replay_run(self.headers) if self.headers else None)


def replay_run(headers: tuple[tuple[str, bytes], ...]) -> str | None:
    """The replay run a record belongs to (its ``portflow-replay-run`` header), if it names one
    plausibly: a header from anyone may not make the worker write keys of any name or size."""
    for name, value in headers:
        if name == header.REPLAY_RUN and value and len(value) <= 64 and value.isascii():
            run = value.decode()
            if run.replace("-", "").replace("_", "").isalnum():
                return run
    return None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A rejected record or batch element, with where it came from and why."""

    source: SourceRecord
    rejection: Rejection

    def payload(self) -> tuple[bytes, list[tuple[str, bytes]]]:
        """The value and headers to publish."""
        raw, headers = self.rejection.raw, self.headers()
        if len(raw) > MAX_DEAD_LETTER_BYTES:
            headers.append((header.TRUNCATED_FROM, str(len(raw)).encode()))
            raw = raw[:MAX_DEAD_LETTER_BYTES]
        return raw, headers

    def headers(self) -> list[tuple[str, bytes]]:
        headers = [
            (header.REASON, self.rejection.reason.encode()),
            (header.CODE, self.rejection.code.encode()),
            (header.SOURCE_TOPIC, self.source.topic.encode()),
            (header.SOURCE_PARTITION, str(self.source.partition).encode()),
            (header.SOURCE_OFFSET, str(self.source.offset).encode()),
        ]
        if self.rejection.batch_index is not None:
            headers.append((header.BATCH_INDEX, str(self.rejection.batch_index).encode()))
        # a re-driven record rejected again: its letter names the letter it was re-driven from
        headers += [
            (name, value) for name, value in self.source.headers if name == header.REDRIVEN_FROM
        ]
        return headers


class DeadLetterSink(Protocol):
    async def __call__(self, letters: list[DeadLetter]) -> None:
        """Publish the letters and return once the broker has them all."""
