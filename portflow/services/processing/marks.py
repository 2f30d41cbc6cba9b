"""The partition marks as this worker knows them, and which records continue them.

Per partition, Redis keeps the offset of the last record applied: its mark. A partition's
records are applied strictly in offset order with no gap (Kafka's offsets of plain,
uncompacted, non-transactional topics have no holes), except at the offset the consumer was
moved to (``resume_at``: after retention deleted offsets), where the next record may be further.
"""

from __future__ import annotations

from collections.abc import Mapping

from portflow.services.processing.records import SourceRecord


class PartitionMarks:
    """The marks this worker last read from Redis or applied, and the consumer's moves."""

    def __init__(self) -> None:
        self._applied: dict[str, int] = {}
        self._resume_at: dict[str, int] = {}  # where the consumer was moved to, until reached
        # calls of ``move``: a batch prepared before one expects marks it must not
        self.moves = 0

    def get(self, name: str) -> int | None:
        return self._applied.get(name)

    def unknown(self, names: set[str]) -> set[str]:
        """Those of ``names`` whose mark this worker does not hold."""
        return names - self._applied.keys()

    def copy(self) -> dict[str, int]:
        return dict(self._applied)

    def read(self, marks: Mapping[str, int]) -> None:
        """Marks as Redis holds them now."""
        self._applied.update(marks)

    def move(self, name: str, mark: int, resume_at: int) -> None:
        """The consumer of ``name`` is moved to ``resume_at``; Redis' mark is ``mark``."""
        self._applied[name] = mark
        self._resume_at[name] = resume_at
        self.moves += 1

    def advance(self, name: str, new: int) -> None:
        """A step applied ``name``'s records up to ``new``."""
        self._applied[name] = new
        if self._resume_at.get(name, new + 1) <= new:
            del self._resume_at[name]

    def in_order(
        self, records: list[SourceRecord], gaps: set[str], expected: Mapping[str, int]
    ) -> list[SourceRecord]:
        """The records that continue their partition's mark in ``expected`` without a hole;
        partitions where the next record is missing go in ``gaps``. While a move is pending,
        records beyond it are in flight from before it: dropped, not a gap."""
        chosen = []
        next_at: dict[str, int] = {}
        for record in records:
            name = record.partition_name
            want = next_at.get(name)
            if want is None:
                want = expected[name] + 1
                if record.offset == self._resume_at.get(name):
                    want = record.offset
            if record.offset == want:
                chosen.append(record)
                next_at[name] = want + 1
            elif record.offset > want and name not in self._resume_at:
                gaps.add(name)
        return chosen
