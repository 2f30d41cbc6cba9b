"""From records to steps: records parsed into chunks, and each chunk summed into the one atomic
Redis step that applies it (its expected and new marks, event ids, increments and outcomes)."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from portflow.adapters.redis.progress import RUN_REJECTIONS_KEPT
from portflow.domain.aggregates import Increments
from portflow.domain.event_time import EventTimeGuard
from portflow.domain.events import Event, Rejection, batch_elements, internal_error, parse_record
from portflow.domain.periods import LocalCalendar
from portflow.services.processing.records import DeadLetter, SourceRecord

log = logging.getLogger(__name__)

# Events per atomic Redis step: large enough to amortise the round trip, small enough that the
# script never blocks Redis for long.
MAX_EVENTS_PER_APPLY = 5000
MAX_KEPT_REASON_CHARS = 300  # of a run's rejection kept in Redis

EventKey = tuple[str, str]  # (type, event id): what the dedupe window remembers


@dataclass
class ParsedRecord:
    record: SourceRecord
    events: list[Event]
    rejections: list[Rejection] = field(default_factory=list)  # the record's, when parsed
    rejected: frozenset[int] = frozenset()  # batch indices of the record's rejected elements

    def elements(self) -> list[tuple[bytes, int | None]]:
        """Per event, its bytes and its index in the batch (None: the whole record)."""
        value = self.record.value
        if not value.lstrip().startswith(b"["):
            return [(value, None)]
        elements = batch_elements(value)
        return [(elements[i], i) for i in range(len(elements)) if i not in self.rejected]

    def reject(self, rejections: list[Rejection]) -> None:
        self.rejections += rejections
        self.rejected |= {r.batch_index for r in rejections if r.batch_index is not None}

    def fault(self, position: int, exc: BaseException) -> Rejection:
        """The rejection of ``events[position]``, whose effect could not be computed."""
        raw, index = self.elements()[position]
        return internal_error(raw, exc, index)

    def keep_in_time(self, guard: EventTimeGuard, now: float) -> None:
        """Take out the events the guard rejects at ``now``, as rejections of the record."""
        low, high = guard.window(now)
        if all(low <= event.ts_seconds <= high for event in self.events):
            return
        kept, turned_away = [], []
        # (the elements decoded once; one per event, as parsed: strict would only cost time)
        for event, (raw, index) in zip(self.events, self.elements(), strict=False):
            judged = guard.judge(event.ts_seconds, now)
            if judged is None:
                kept.append(event)
            else:
                turned_away.append(Rejection(judged[1], judged[0], raw, index))
        self.events = kept
        self.reject(turned_away)


Chunk = list[ParsedRecord]


def parsed_chunks(
    records: list[SourceRecord],
    event_type_of: Mapping[str, str],
    guard: EventTimeGuard,
    now: float,
    quarantine: Mapping[tuple[str, int], Rejection],
) -> Iterator[tuple[Chunk, list[DeadLetter]]]:
    """Parse records as they are needed: runs of whole records holding at most
    ``MAX_EVENTS_PER_APPLY`` events (or one record), with their dead letters. A quarantined
    record is its quarantine's rejection."""
    chunk: Chunk = []
    letters: list[DeadLetter] = []
    size = 0
    for record in records:
        quarantined = quarantine and quarantine.get((record.partition_name, record.offset))
        events: list[Event]
        if quarantined:
            events, rejections = [], [quarantined]
        else:
            events, rejections = parse_record(record.value, event_type_of[record.topic])
        parsed = ParsedRecord(record, events)
        if rejections:  # (rare: a record's cost counts for single-event records)
            parsed.reject(rejections)
        parsed.keep_in_time(guard, now)
        if chunk and size + len(parsed.events) > MAX_EVENTS_PER_APPLY:
            yield chunk, letters
            chunk, letters, size = [], [], 0
        letters += [DeadLetter(record, r) for r in parsed.rejections]
        chunk.append(parsed)
        size += len(parsed.events)
    if chunk:
        yield chunk, letters


@dataclass
class Step:
    """One chunk's atomic Redis step: what it expects and what it adds."""

    chunk: Chunk
    marks: dict[str, tuple[int, int]]  # partition -> (expected mark, new mark)
    event_ids: list[EventKey]  # of the events it counts
    increments: Increments
    counted: list[Event]  # the events it counts: not duplicates
    lines: list[tuple[str, str, str]] = field(default_factory=list)  # increments.lines()
    letters: list[DeadLetter] = field(default_factory=list)  # events whose sum failed
    duplicates: int = 0
    latest_event_s: float = 0.0  # the newest event time it counts
    started: float = 0.0  # when it was sent

    def leaves(self) -> dict[str, int]:
        """The marks once this step is applied."""
        return {name: new for name, (_, new) in self.marks.items()}


def prepare_step(
    chunk: Chunk,
    expected: Mapping[str, int],
    seen_before: set[EventKey],
    calendar: LocalCalendar,
) -> Step:
    """Sum a chunk's increments in memory; ids in ``seen_before`` count as duplicates. If that
    raises, the events it raises for are taken out of their records (each becomes an
    ``internal_error`` letter of the step) and the rest is summed again."""
    try:
        return _sum(chunk, expected, set(seen_before), calendar)
    except Exception:
        letters = _take_out_faults(chunk, calendar)
        step = _sum(chunk, expected, set(seen_before), calendar)
        step.letters = letters
        return step


def _take_out_faults(chunk: Chunk, calendar: LocalCalendar) -> list[DeadLetter]:
    """The events of ``chunk`` whose effect cannot be computed, each tried alone."""
    letters = []
    for parsed in chunk:
        kept = []
        for position, event in enumerate(parsed.events):
            try:
                trial = Increments(calendar)
                trial.add([event])
                list(trial.lines())
            except Exception as exc:
                log.error(
                    "%s@%d: the effect of event %r cannot be computed (%s: %s); "
                    "dead-lettered as internal_error",
                    parsed.record.partition_name,
                    parsed.record.offset,
                    event.event_id,
                    type(exc).__name__,
                    exc,
                )
                letters.append(DeadLetter(parsed.record, parsed.fault(position, exc)))
            else:
                kept.append(event)
        parsed.events = kept
        parsed.reject([letter.rejection for letter in letters if letter.source is parsed.record])
    return letters


def _sum(
    chunk: Chunk, expected: Mapping[str, int], seen_before: set[EventKey], calendar: LocalCalendar
) -> Step:
    step = Step(chunk, {}, [], Increments(calendar), [])
    for p in chunk:
        name = p.record.partition_name
        first = step.marks.get(name, (expected[name], 0))[0]
        step.marks[name] = (first, p.record.offset)  # records come in offset order
    events = [event for p in chunk for event in p.events]
    keys = [(event.type, event.event_id) for event in events]
    unique = set(keys)  # (a set against a set: isdisjoint goes over the smaller, no rehashing)
    if len(unique) == len(keys) and seen_before.isdisjoint(unique):  # no duplicates: as a rule
        step.event_ids, step.counted = keys, events
    else:
        for key, event in zip(keys, events, strict=True):
            if key in seen_before:
                step.duplicates += 1
                continue
            seen_before.add(key)  # later copies in this chunk are duplicates
            step.event_ids.append(key)
            step.counted.append(event)
    step.increments.add(step.counted)
    step.lines = list(step.increments.lines())
    return step


@dataclass
class StepOutcomes:
    """What a step did to its events, counted in the same atomic step (``Outcomes``): for the
    whole state (run None) and per replay run, with the first rejections of each run."""

    counts: dict[str | None, Counter[str]] = field(default_factory=dict)
    rejections: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def of(cls, step: Step) -> StepOutcomes:
        outcomes = cls({None: Counter(applied=len(step.counted), duplicates=step.duplicates)})
        for parsed in step.chunk:
            for rejection in parsed.rejections:
                outcomes.counts[None][f"rejected:{rejection.code}"] += 1
        if any(parsed.record.run for parsed in step.chunk):
            outcomes._count_runs(step)
        return outcomes

    def _count_runs(self, step: Step) -> None:
        applied_ids = set(map(id, step.counted)) if step.duplicates else None
        for parsed in step.chunk:
            run = parsed.record.run
            if run is None:
                continue
            counts = self.counts.setdefault(run, Counter())
            events = parsed.events
            applied = (
                len(events)
                if applied_ids is None
                else sum(id(event) in applied_ids for event in events)
            )
            counts["applied"] += applied
            counts["duplicates"] += len(events) - applied
            kept = self.rejections.setdefault(run, [])
            for rejection in parsed.rejections:
                counts[f"rejected:{rejection.code}"] += 1
                if len(kept) < RUN_REJECTIONS_KEPT:
                    kept.append(
                        {
                            "partition": parsed.record.partition_name,
                            "offset": parsed.record.offset,
                            "batch_index": rejection.batch_index,
                            "code": rejection.code,
                            "reason": rejection.reason[:MAX_KEPT_REASON_CHARS],
                        }
                    )
