"""What each event adds: one cell per event, per granule and stored measure; sums are exact."""

import json
from zoneinfo import ZoneInfo

from portflow.domain.aggregates import Increments
from portflow.domain.events import parse_event


def event(**fields):
    base = {"type": "shipment", "event_id": "e", "ts": "2024-06-30T23:30:00Z", "port": "khorgos",
            "mode": "rail", "direction": "export", "value_cny": "0.10", "weight_tonnes": 1,
            "partner": "KZ", "trade_mode": "general", "zones": ["ftz-b", "ftz-a", "ftz-a"]}
    return parse_event(json.dumps({**base, **fields}).encode(), "shipment")


def test_increments_per_granule_and_measure():
    inc = Increments(ZoneInfo("Asia/Shanghai"))
    for _ in range(3):
        inc.add(event())
    cell = "khorgos|rail|export|KZ|general|ftz-a,ftz-b"
    for granule in ("2024-07-01", "2024-07", "2024"):
        assert inc.totals[("shipment", "value", granule)] == {cell: 30}
        assert inc.totals[("shipment", "weight", granule)] == {cell: 3000}
        assert inc.totals[("shipment", "count", granule)] == {cell: 3}
    assert len(inc) == 9


def test_zero_amounts_touch_nothing():
    inc = Increments(ZoneInfo("UTC"))
    inc.add(event(value_cny=0, weight_tonnes="0.000"))
    assert {m for (_, m, _) in inc.totals} == {"count"}


def test_trains_and_customs_cells():
    inc = Increments(ZoneInfo("UTC"))
    inc.add(parse_event(json.dumps({"type": "train", "event_id": "t", "ts": "2024-01-01T00:00:00Z",
                                    "port": "khorgos", "service": "china-asia",
                                    "direction": "inbound", "teu": 80}).encode(), "train"))
    inc.add(parse_event(json.dumps({"type": "customs", "event_id": "c", "ts": "2024-01-01T00:00:00Z",
                                    "port": "khorgos", "declaration_id": "d",
                                    "status": "held"}).encode(), "customs"))
    assert inc.totals[("train", "teu", "2024")] == {"khorgos|china-asia|inbound": 80}
    assert inc.totals[("customs", "count", "2024-01-01")] == {"khorgos|held": 1}
