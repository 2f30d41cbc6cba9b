"""What a replay run sent: which file lines each record holds, where the broker put it (or why
it failed), and what the worker then did to it, told by file and line.

A batch record's element *i* is the *i*-th line packed into it, so a rejection the worker names
by ``(partition, offset, batch_index)`` maps back to one line of one file. Runs publish millions
of records: lines and records are kept in arrays, not objects.
"""

from __future__ import annotations

import threading
from array import array
from collections.abc import Mapping, Sequence
from typing import Any

from portflow.adapters.redis import Outcomes
from portflow.domain.partitions import split_partition_name
from portflow.errors import EXIT_REJECTIONS, PortflowError

REJECTIONS_SHOWN = 5
REASON_CHARS_SHOWN = 200


class SentRecords:
    """The records of one run, from the producer's thread (acknowledgements, failures) and the
    publishing one. Without ``keep_lines`` (an endless stream) only the per-partition offset
    range and the failures are kept."""

    def __init__(self, keep_lines: bool = True) -> None:
        self.keep_lines = keep_lines
        self.count = 0
        self.acknowledged = 0
        self.failures: list[str] = []
        self.offsets: dict[tuple[str, int], tuple[int, int]] = {}  # first and last offset
        self.paths: list[str] = []
        self._lines = array("Q")  # the lines of every record, record after record
        self._starts = array("Q")  # record k holds _lines[_starts[k]:_starts[k + 1]]
        self._files = array("I")  # record k's file, an index into paths
        self._acked = bytearray()
        self._at: dict[
            tuple[str, int], tuple[array[int], array[int]]
        ] = {}  # partition → offsets, records
        self._cut: dict[int, int] = {}  # record → size of the line it holds cut
        self._lock = threading.Lock()

    def add(self, path: str, lines: Sequence[int], cut_from: int | None = None) -> int:
        """Note a record about to be sent (its lines in the order packed); its number."""
        with self._lock:
            record = self.count
            self.count += 1
            if not self.keep_lines:
                return record
            if not self.paths or self.paths[-1] != path:
                self.paths.append(path)
            self._starts.append(len(self._lines))
            self._lines.extend(lines)
            self._files.append(len(self.paths) - 1)
            self._acked.append(0)
            if cut_from is not None:
                self._cut[record] = cut_from
            return record

    def delivered(self, record: int, topic: str, partition: int, offset: int) -> None:
        with self._lock:
            self.acknowledged += 1
            first, last = self.offsets.get((topic, partition), (offset, offset))
            self.offsets[(topic, partition)] = (min(first, offset), max(last, offset))
            if not self.keep_lines:
                return
            self._acked[record] = 1
            offsets, records = self._at.setdefault((topic, partition), (array("q"), array("Q")))
            offsets.append(offset)
            records.append(record)

    def failed(self, record: int, error: BaseException) -> None:
        with self._lock:
            self.failures.append(f"{self.where(record)}: {error}")

    @property
    def in_flight(self) -> int:
        return self.count - self.acknowledged - len(self.failures)

    def lines_of(self, record: int) -> array[int]:
        end = self._starts[record + 1] if record + 1 < len(self._starts) else len(self._lines)
        return self._lines[self._starts[record] : end]

    def where(self, record: int, batch_index: int | None = None) -> str:
        """``file:line`` of a record's element (or its lines, for the whole record)."""
        if not self.keep_lines:
            return f"record {record + 1:,}"
        lines = self.lines_of(record)
        path = self.paths[self._files[record]]
        if len(lines) == 1:  # one line, which the worker may read as an array of events
            return f"{path}:{lines[0]}" + (f"[{batch_index}]" if batch_index else "")
        if batch_index is not None and 0 <= batch_index < len(lines):
            return f"{path}:{lines[batch_index]}"
        return f"{path}:{lines[0]}-{lines[-1]}" if lines else path

    def record_at(self, topic: str, partition: int, offset: int) -> int | None:
        with self._lock:
            offsets, records = self._at.get((topic, partition), (array("q"), array("Q")))
            try:
                return records[offsets.index(offset)]
            except ValueError:
                return None

    def first_unpublished(self) -> tuple[str, int] | None:
        """The earliest ``(file, line)`` in a record the broker did not acknowledge."""
        with self._lock:
            earliest = None
            record = self._acked.find(0)
            while record >= 0:
                lines = self.lines_of(record)
                if lines:
                    here = (self._files[record], lines[0])
                    earliest = here if earliest is None else min(earliest, here)
                record = self._acked.find(0, record + 1)
        return None if earliest is None else (self.paths[earliest[0]], earliest[1])

    def rejection_at(self, rejection: Mapping[str, Any]) -> tuple[tuple[int, int], str]:
        """Where a rejection of ``Outcomes.rejections`` came from: a sort key (file order) and
        ``file:line`` (or the partition and offset of a record this run did not send)."""
        topic, partition = split_partition_name(rejection["partition"])
        offset, index = rejection["offset"], rejection.get("batch_index")
        record = self.record_at(topic, partition, offset)
        if record is None:
            return (len(self.paths), 0), f"{rejection['partition']}@{offset}"
        lines = self.lines_of(record)
        line = lines[index] if index is not None and 0 <= index < len(lines) else lines[0]
        where = self.where(record, index)
        if record in self._cut:
            where += f" (a line of {self._cut[record]:,} bytes, published cut)"
        return (self._files[record], line), where


def outcomes_missing(outcomes: Outcomes, sent: SentRecords) -> bool:
    """Whether the worker that handled a run's records counted none of them (it predates the
    per-run counts)."""
    handled = outcomes.applied + outcomes.duplicates + outcomes.rejected_total
    return sent.count > 0 and handled == 0


def describe_outcomes(outcomes: Outcomes, sent: SentRecords, so_far: str = "") -> list[str]:
    """What the worker did to a run's events (``so_far``: while it is still at it), and the
    first rejections by file and line."""
    if not so_far and outcomes_missing(outcomes, sent):
        return [
            "the worker counted nothing for this replay (a worker older than this replay?): "
            "`portflow dlq list` shows rejected lines"
        ]
    said = (
        f"{so_far}the worker applied {outcomes.applied:,} event(s), skipped "
        f"{outcomes.duplicates:,} duplicate(s) and rejected {outcomes.rejected_total:,}"
    )
    if outcomes.rejected:
        by_code = sorted(outcomes.rejected.items(), key=lambda item: (-item[1], item[0]))
        said += " (" + ", ".join(f"{n:,} {code}" for code, n in by_code) + ")"
    lines = [said]
    rejections = sorted(
        ((sent.rejection_at(r), r) for r in outcomes.rejections), key=lambda pair: pair[0][0]
    )
    for (_, where), rejection in rejections[:REJECTIONS_SHOWN]:
        lines.append(f"  {where}: {rejection['code']}: {_shortened(rejection['reason'])}")
    more = outcomes.rejected_total - min(len(rejections), REJECTIONS_SHOWN)
    if more > 0:
        lines.append(
            f"  and {more:,} more: `portflow dlq list` shows every rejection "
            "(--code C for one kind)"
        )
    return lines


def _shortened(reason: str) -> str:
    return reason if len(reason) <= REASON_CHARS_SHOWN else reason[:REASON_CHARS_SHOWN] + "…"


class RejectedLines(PortflowError):
    """``--fail-on-rejection``: the worker rejected some of the run's lines."""

    exit_code = EXIT_REJECTIONS


class OutcomesUnknown(PortflowError):
    """``--fail-on-rejection``: the worker did not count the run's outcomes."""


def check_no_rejections(outcomes: Outcomes, sent: SentRecords) -> None:
    """``--fail-on-rejection`` after ``--wait``: raise unless the worker rejected nothing."""
    if outcomes.rejected_total:
        raise RejectedLines(
            f"the worker rejected {outcomes.rejected_total:,} of this replay's "
            "lines (--fail-on-rejection)"
        )
    if outcomes_missing(outcomes, sent):
        raise OutcomesUnknown(
            "cannot tell whether the worker rejected lines of this replay: "
            "it counted none of them (a worker older than this replay?)"
        )
