"""Business counters sum a batch per label set; the figures equal the per-event sums, ports keep
their first-come labels, and clearance times use the events' times."""

from prometheus_client import CollectorRegistry

from portflow.domain.events import parse_event
from portflow.services.processing import BatchStats
from streams.metrics import MAX_PORTS, WorkerMetrics
from tests.support import events as valid
from tests.support.events import encoded


def shipment(i: int, port: str, mode: str, value: str, weight: str):
    event = valid.shipment(
        f"s-{i}",
        "2024-03-14T08:15:00+08:00",
        port=port,
        mode=mode,
        value_cny=value,
        weight_tonnes=weight,
    )
    return parse_event(encoded(event), "shipment")


def customs(i: int, declaration: str, status: str, ts: str):
    event = valid.customs(f"c-{i}", ts, port="kashgar", declaration_id=declaration, status=status)
    return parse_event(encoded(event), "customs")


def observe(event_type: str, events) -> WorkerMetrics:
    events = list(events)
    metrics = WorkerMetrics(CollectorRegistry())
    metrics.count_applied(events)
    metrics.observe(
        event_type,
        BatchStats(
            records=1, applied_events=len(events), newest_event_s=max(e.ts_seconds for e in events)
        ),
        0.01,
    )
    return metrics


def sample(metrics: WorkerMetrics, name: str, **labels) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_shipment_counters_are_the_batch_sums_per_label_set():
    values = ["0.10", "1234.56", "0.07", "99999999.99"]
    events = [
        shipment(i, "khorgos", ("rail", "road")[i % 2], v, "1.001") for i, v in enumerate(values)
    ]
    metrics = observe("shipment", events)
    rail = {"port": "khorgos", "mode": "rail", "direction": "export"}
    road = dict(rail, mode="road")
    assert sample(metrics, "portflow_trade_value_yuan_total", **rail) == (10 + 7) / 100
    assert sample(metrics, "portflow_trade_value_yuan_total", **road) == (123456 + 9999999999) / 100
    assert sample(metrics, "portflow_cargo_weight_tonnes_total", **rail) == 2002 / 1000
    assert sample(metrics, "portflow_shipments_total", **road) == 2
    assert sample(metrics, "portflow_event_time_lag_seconds", type="shipment") > 0


def test_ports_past_the_limit_count_as_other_in_order_of_first_sight():
    ports = [f"p{i}" for i in range(MAX_PORTS + 3)]
    events = [shipment(i, port, "rail", "1", "1") for i, port in enumerate(ports + ports[:2])]
    metrics = observe("shipment", events)
    labels = {"mode": "rail", "direction": "export"}
    assert sample(metrics, "portflow_shipments_total", port="p0", **labels) == 2
    assert sample(metrics, "portflow_shipments_total", port=ports[MAX_PORTS - 1], **labels) == 1
    assert sample(metrics, "portflow_shipments_total", port=ports[MAX_PORTS], **labels) is None
    assert sample(metrics, "portflow_shipments_total", port="_other", **labels) == 3


def test_clearance_time_is_release_minus_filing_by_event_time():
    metrics = observe(
        "customs",
        [
            customs(1, "D-1", "filed", "2024-03-14T08:00:00+08:00"),
            customs(2, "D-1", "released", "2024-03-14T01:00:00Z"),
            customs(3, "D-2", "released", "2024-03-14T01:00:00Z"),  # never filed here
        ],
    )
    assert sample(metrics, "portflow_customs_clearance_seconds_sum", port="kashgar") == 3600
    assert sample(metrics, "portflow_customs_clearance_seconds_count", port="kashgar") == 1
    assert (
        sample(metrics, "portflow_customs_declarations_total", port="kashgar", status="released")
        == 2
    )


def test_the_oldest_unapplied_record_ages_until_its_partition_is_applied(monkeypatch):
    now = [100.0]
    monkeypatch.setattr("streams.metrics.time.monotonic", lambda: now[0])
    metrics = WorkerMetrics(CollectorRegistry())
    metrics.set_partitions(["t.shipments:0", "t.shipments:1"])
    age = "portflow_oldest_unapplied_record_age_seconds"
    metrics.records_pending(["t.shipments:1"])
    now[0] = 110.0
    metrics.records_pending(["t.shipments:1"])  # a batch still waiting: the older time stays
    now[0] = 130.0
    assert sample(metrics, age, topic="t.shipments", partition="1") == 30.0
    metrics.records_done(["t.shipments:1"])
    assert sample(metrics, age, topic="t.shipments", partition="1") == 0.0
    assert sample(metrics, age, topic="t.shipments", partition="0") == 0.0


def test_batches_retrying_are_counted_per_type():
    metrics = WorkerMetrics(CollectorRegistry())
    assert sample(metrics, "portflow_batches_retrying", type="train") == 0
    metrics.batch_retrying("train", True)
    assert sample(metrics, "portflow_batches_retrying", type="train") == 1
    metrics.batch_retrying("train", False)
    assert sample(metrics, "portflow_batches_retrying", type="train") == 0


class LostIn:
    def __init__(self, lost):
        self.lost = lost

    def lost_offsets(self):
        return self.lost


def test_lost_offsets_are_exported_per_type_as_redis_records_them():
    from streams.metrics import LostOffsetsCollector

    registry = CollectorRegistry()
    lost = LostOffsetsCollector(
        LostIn(
            {
                "t.shipments:1": [[0, 9], [20, 24]],
                "t.trains:0": [[5, 5]],
                "other.topic:0": [[0, 99]],
            }
        ),
        {"t.shipments": "shipment", "t.trains": "train"},
    )
    registry.register(lost)
    name = "portflow_offsets_lost_recorded"
    assert registry.get_sample_value(name, {"type": "shipment"}) is None  # not read yet
    lost.refresh()
    assert [
        registry.get_sample_value(name, {"type": t}) for t in ("shipment", "train", "customs")
    ] == [15, 1, 0]


def test_the_event_time_lag_is_never_negative_however_far_ahead_an_event_lies():
    metrics = WorkerMetrics(CollectorRegistry())
    for newest in (4_102_444_800.0, 32_485_190_400.0):  # 2100, 2999 (the guard off)
        metrics.observe(
            "shipment", BatchStats(records=1, applied_events=1, newest_event_s=newest), 0.01
        )
        assert sample(metrics, "portflow_event_time_lag_seconds", type="shipment") == 0


def test_consumer_lag_counts_from_the_inclusive_mark_to_the_exclusive_end_offset():
    registry = CollectorRegistry()
    metrics = WorkerMetrics(registry)
    labels = {"topic": "t.shipments", "partition": "0"}
    metrics.set_progress("t.shipments:0", 9, 10)  # offset 9 applied; the next record is 10
    assert registry.get_sample_value("portflow_applied_offset", labels) == 9
    assert registry.get_sample_value("portflow_consumer_lag_records", labels) == 0
    metrics.set_progress("t.shipments:0", 9, 15)
    assert registry.get_sample_value("portflow_consumer_lag_records", labels) == 5
    metrics.set_progress("t.shipments:0", None, 15)  # nothing applied yet: all 15 wait
    assert registry.get_sample_value("portflow_consumer_lag_records", labels) == 15
