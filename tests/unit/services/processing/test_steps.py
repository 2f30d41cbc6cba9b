"""Records into chunks, chunks into steps: limits, duplicates, faults and outcomes."""

import json
from zoneinfo import ZoneInfo

from portflow.adapters import dead_letter_headers as header
from portflow.domain import aggregates
from portflow.domain.event_time import EventTimeGuard
from portflow.domain.events import Rejection
from portflow.domain.periods import LocalCalendar
from portflow.services.processing import steps
from portflow.services.processing.records import SourceRecord
from portflow.services.processing.steps import StepOutcomes, parsed_chunks, prepare_step

CALENDAR = LocalCalendar(ZoneInfo("Asia/Shanghai"))
OPEN = EventTimeGuard(None, None)
TOPICS = {"t": "shipment"}


def shipment(n: int) -> dict:
    return {
        "type": "shipment",
        "event_id": f"s{n}",
        "ts": "2024-06-30T23:30:00Z",
        "port": "khorgos",
        "mode": "rail",
        "direction": "export",
        "value_cny": "10.00",
        "weight_tonnes": "1.5",
        "partner": "KZ",
        "trade_mode": "general",
        "zones": [],
    }


def record(offset: int, value, run: str | None = None) -> SourceRecord:
    headers = ((header.REPLAY_RUN, run.encode()),) if run else ()
    return SourceRecord("t", 0, offset, None, json.dumps(value).encode(), headers)


def chunks(records, quarantine=None):
    return list(parsed_chunks(records, TOPICS, OPEN, 0.0, quarantine or {}))


def test_a_chunk_holds_whole_records_up_to_the_events_of_one_step(monkeypatch):
    monkeypatch.setattr(steps, "MAX_EVENTS_PER_APPLY", 3)
    made = chunks(
        [
            record(0, [shipment(0), shipment(1)]),
            record(1, shipment(2)),
            record(2, [shipment(3), shipment(4)]),
        ]
    )
    assert [[p.record.offset for p in chunk] for chunk, _ in made] == [[0, 1], [2]]


def test_rejected_elements_are_the_chunks_dead_letters_and_a_quarantined_record_is_one():
    quarantined = Rejection("fails alone", "internal_error", b"{}")
    made = chunks(
        [record(0, [shipment(0), {"bad": 1}]), record(1, shipment(1))], {("t:0", 1): quarantined}
    )
    ((chunk, letters),) = made
    assert [(d.source.offset, d.rejection.batch_index) for d in letters] == [(0, 1), (1, None)]
    assert letters[1].rejection is quarantined
    assert [len(p.events) for p in chunk] == [1, 0]


def test_a_step_expects_the_mark_before_its_first_record_and_leaves_its_last():
    ((chunk, _),) = chunks([record(5, shipment(0)), record(6, shipment(1))])
    step = prepare_step(chunk, {"t:0": 4}, set(), CALENDAR)
    assert step.marks == {"t:0": (4, 6)}
    assert step.leaves() == {"t:0": 6}


def test_ids_seen_before_and_repeated_in_the_chunk_count_as_duplicates():
    ((chunk, _),) = chunks(
        [record(0, [shipment(0), shipment(1), shipment(1)]), record(1, shipment(2))]
    )
    seen_before = {("shipment", "s2")}
    step = prepare_step(chunk, {"t:0": -1}, seen_before, CALENDAR)
    assert step.event_ids == [("shipment", "s0"), ("shipment", "s1")]
    assert step.duplicates == 2
    assert seen_before == {("shipment", "s2")}  # (the caller's set is left as it was)


class PoisonedIncrements(aggregates.Increments):
    def add(self, events):
        events = list(events)
        if any(e.event_id == "s1" for e in events):
            raise ZeroDivisionError("division by zero")
        return super().add(events)


def test_an_event_whose_sum_raises_becomes_a_letter_of_the_step_and_the_rest_is_summed(monkeypatch):
    monkeypatch.setattr(steps, "Increments", PoisonedIncrements)
    ((chunk, _),) = chunks([record(0, [shipment(0), shipment(1)]), record(1, shipment(2))])
    step = prepare_step(chunk, {"t:0": -1}, set(), CALENDAR)
    assert [e.event_id for e in step.counted] == ["s0", "s2"]
    assert [(d.source.offset, d.rejection.code, d.rejection.batch_index) for d in step.letters] == [
        (0, "internal_error", 1)
    ]
    assert chunk[0].rejected == frozenset({1})


def test_outcomes_count_the_whole_state_and_each_replay_run_with_its_rejections():
    ((chunk, _),) = chunks(
        [
            record(0, [shipment(0), {"bad": 1}], run="r1"),
            record(1, shipment(0), run="r1"),
            record(2, shipment(2)),
        ]
    )
    outcomes = StepOutcomes.of(prepare_step(chunk, {"t:0": -1}, set(), CALENDAR))
    assert outcomes.counts[None] == {"applied": 2, "duplicates": 1, "rejected:invalid_field": 1}
    assert outcomes.counts["r1"] == {"applied": 1, "duplicates": 1, "rejected:invalid_field": 1}
    assert [(r["offset"], r["batch_index"], r["code"]) for r in outcomes.rejections["r1"]] == [
        (0, 1, "invalid_field")
    ]
