"""What each event adds: one cell per event, per granule and stored measure; sums are exact."""

import json
from zoneinfo import ZoneInfo

from portflow.domain.aggregates import Increments
from portflow.domain.events import parse_event
from portflow.domain.periods import LocalCalendar


def event(**fields):
    base = {"type": "shipment", "event_id": "e", "ts": "2024-06-30T23:30:00Z", "port": "khorgos",
            "mode": "rail", "direction": "export", "value_cny": "0.10", "weight_tonnes": 1,
            "partner": "KZ", "trade_mode": "general", "zones": ["ftz-b", "ftz-a", "ftz-a"]}
    return parse_event(json.dumps({**base, **fields}).encode(), "shipment")


def increments(zone: str, *events):
    inc = Increments(LocalCalendar(ZoneInfo(zone)))
    for e in events:
        inc.add(e)
    return {(t, m, g): cells for t, m, g, cells in inc.per_measure()}


def test_increments_per_granule_and_measure():
    totals = increments("Asia/Shanghai", event(), event(), event())
    cell = "khorgos|rail|export|KZ|general|ftz-a,ftz-b"
    for granule in ("2024-07-01", "2024-07"):
        assert totals[("shipment", "value", granule)] == {cell: 30}
        assert totals[("shipment", "weight", granule)] == {cell: 3000}
        assert totals[("shipment", "count", granule)] == {cell: 3}
    assert len(totals) == 6


def test_different_cells_stay_apart():
    totals = increments("UTC", event(), event(partner="KG", value_cny=1))
    assert totals[("shipment", "value", "2024-06")] == {
        "khorgos|rail|export|KZ|general|ftz-a,ftz-b": 10,
        "khorgos|rail|export|KG|general|ftz-a,ftz-b": 100}


def test_zero_amounts_touch_nothing():
    totals = increments("UTC", event(value_cny=0, weight_tonnes="0.000"))
    assert {m for (_, m, _) in totals} == {"count"}


def test_trains_and_customs_cells():
    train = parse_event(json.dumps({"type": "train", "event_id": "t", "ts": "2024-01-01T00:00:00Z",
                                    "port": "khorgos", "service": "china-asia",
                                    "direction": "inbound", "teu": 80}).encode(), "train")
    customs = parse_event(json.dumps({"type": "customs", "event_id": "c",
                                      "ts": "2024-01-01T00:00:00Z", "port": "khorgos",
                                      "declaration_id": "d", "status": "held"}).encode(), "customs")
    totals = increments("UTC", train, customs)
    assert totals[("train", "teu", "2024-01")] == {"khorgos|china-asia|inbound": 80}
    assert totals[("train", "count", "2024-01-01")] == {"khorgos|china-asia|inbound": 1}
    assert totals[("customs", "count", "2024-01-01")] == {"khorgos|held": 1}
