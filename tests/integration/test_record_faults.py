"""No single record can stop the processor (real redis-server, records built here): a record
whose effect portflow's own code cannot compute, or whose step fails for no infrastructure
reason, goes to the DLQ as ``internal_error``; its neighbours count exactly; Redis outages are
still retried and blame no record."""

import json

import redis

from portflow.domain.aggregates import Increments
from portflow.services.processing import FAULT_CONFIRMATIONS, BatchStats, Handoff, steps
from streams.app import _process_until_done
from streams.metrics import WorkerMetrics
from streams.processor import is_transient
from tests.support.processing import run, shipment


class PoisonedIncrements(Increments):
    """Increments that raise for the event with id ``s-poison`` (a bug nobody foresaw)."""

    def add(self, events):
        events = list(events)
        if any(e.event_id == "s-poison" for e in events):
            raise ZeroDivisionError("division by zero")
        return super().add(events)


def poisoned_store_call(poison: str, failures: list):
    """A store hook that fails (not as Redis would) for steps counting the event ``poison``."""

    async def call(fn, *args):
        if fn.__name__ == "apply" and ("shipment", poison) in args[1]:
            failures.append(poison)
            raise ValueError(f"cannot pack {poison}")
        return await fn(*args)

    return call


def process_until_done(processor, records) -> BatchStats:
    """What the worker does with a batch (``streams.app._process_until_done``), without Faust."""
    metrics = WorkerMetrics()
    stats = run(_process_until_done(processor, None, records, "shipment", metrics, Handoff()))
    assert metrics.registry.get_sample_value("portflow_batches_retrying", {"type": "shipment"}) == 0
    return stats


def test_an_event_whose_sum_raises_is_dead_lettered_alone_and_its_batch_counts(h, monkeypatch):
    monkeypatch.setattr(steps, "Increments", PoisonedIncrements)
    batch = [shipment(1), {"bad": 1}, {**shipment(2), "event_id": "s-poison"}, shipment(3)]
    records = h.records([batch, shipment(4), {**shipment(5), "event_id": "s-poison"}])
    stats = run(h.processor().process(records))

    assert stats.applied_events == 3
    assert h.total("count") == 3
    assert h.mark() == 2
    faults = [d for d in h.letters if d.rejection.code == "internal_error"]
    assert [(d.source.offset, d.rejection.batch_index) for d in faults] == [(0, 2), (2, None)]
    assert all("ZeroDivisionError: division by zero" in d.rejection.reason for d in faults)
    assert json.loads(faults[0].rejection.raw)["event_id"] == "s-poison"
    assert json.loads(faults[1].rejection.raw) == {**shipment(5), "event_id": "s-poison"}
    assert [(d.rejection.code, d.rejection.batch_index) for d in h.letters] == [
        ("invalid_field", 1),
        ("internal_error", 2),
        ("internal_error", None),
    ]


def test_a_record_whose_step_fails_is_found_quarantined_and_the_rest_applied(h):
    failures = []
    processor = h.processor(
        store_hook=poisoned_store_call("s-poison", failures), retry_delay_s=0.01
    )
    values = [shipment(i) for i in range(40)]
    values[23] = {**shipment(23), "event_id": "s-poison"}
    records = h.records(values)
    stats = process_until_done(processor, records)

    assert h.mark() == 39
    assert h.total("count") == 39
    assert stats.applied_events == 39
    assert stats.records == 40
    assert [(d.source.offset, d.rejection.code) for d in h.letters] == [(23, "internal_error")]
    assert "ValueError: cannot pack s-poison" in h.letters[0].rejection.reason
    assert processor.quarantine == {}  # forgotten once the record is past
    assert len(failures) >= FAULT_CONFIRMATIONS  # it failed alone, each time


def test_a_record_that_fails_once_by_chance_is_not_dead_lettered(h):
    failed = []

    async def flaky_once(fn, *args):
        if fn.__name__ == "apply" and not failed:
            failed.append(1)
            raise RuntimeError("a hiccup")
        return await fn(*args)

    processor = h.processor(store_hook=flaky_once, retry_delay_s=0.01)
    stats = process_until_done(processor, h.records([shipment(i) for i in range(8)]))
    assert stats.applied_events == 8
    assert h.total("count") == 8
    assert h.letters == []


def test_redis_outages_are_retried_and_never_blamed_on_a_record(h):
    outage = iter(range(6))

    async def unreachable(fn, *args):
        if next(outage, None) is not None:
            raise redis.ConnectionError("connection refused")
        return await fn(*args)

    assert is_transient(redis.ConnectionError())
    assert is_transient(redis.ResponseError("OOM"))
    assert not is_transient(ValueError())
    assert not is_transient(RecursionError())
    stats = run(
        h.processor(store_hook=unreachable, retry_delay_s=0.01).process(
            h.records([shipment(i) for i in range(5)])
        )
    )
    assert stats.applied_events == 5
    assert h.total("count") == 5
    assert h.letters == []


def test_past_the_quarantine_budget_the_batch_still_ends_only_slower(h, monkeypatch):
    monkeypatch.setattr("streams.app.MAX_QUARANTINED_PER_BATCH", 2)
    poisoned = {f"s{i}" for i in (3, 9, 14, 17)}
    failures = []

    async def call(fn, *args):
        if fn.__name__ == "apply" and poisoned & {event_id for _, event_id in args[1]}:
            failures.append(1)
            raise ValueError("a systemic fault?")
        return await fn(*args)

    processor = h.processor(store_hook=call, retry_delay_s=0.01)
    stats = process_until_done(processor, h.records([shipment(i) for i in range(20)]))
    assert h.mark() == 19
    assert h.total("count") == 16
    assert stats.applied_events == 16
    # (dead letters are at least once: a letter sent before a step that failed is sent again)
    assert {d.source.offset for d in h.letters} == {3, 9, 14, 17}
