"""The Kafka headers of a dead letter: the worker writes them, ``portflow dlq`` reads them, and
any consumer of the DLQ topic may (README, "Dead letters"). The names are part of the contract."""

from __future__ import annotations

REASON = "portflow-reason"
CODE = "portflow-reason-code"
SOURCE_TOPIC = "portflow-source-topic"
SOURCE_PARTITION = "portflow-source-partition"
SOURCE_OFFSET = "portflow-source-offset"
BATCH_INDEX = "portflow-batch-index"  # only for an element of a batch record
TRUNCATED_FROM = "portflow-truncated-from"  # only for a value cut to fit: the original's size
REDRIVEN_FROM = (
    "portflow-redriven-from"  # on a re-driven record: "<dlq topic>:<partition>:<offset>"
)


def text(headers: dict[str, bytes], name: str) -> str | None:
    value = headers.get(name)
    return value.decode(errors="replace") if value is not None else None


def number(headers: dict[str, bytes], name: str) -> int | None:
    value = text(headers, name)
    return int(value) if value and value.lstrip("-").isdigit() else None


# On a record published by ``portflow replay``: the run it belongs to (hex), so that the workers
# count what they did to that run's events (``Progress.run_outcomes``). Not on dead letters.
REPLAY_RUN = "portflow-replay-run"
