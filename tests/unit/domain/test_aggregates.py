"""What each event adds: one cell per event, per granule and stored measure; sums are exact."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from portflow.domain.aggregates import STORED_MEASURES, Increments
from portflow.domain.events import parse_event
from portflow.domain.periods import LocalCalendar
from tests.support import events as valid
from tests.support.events import encoded


def event(**fields):
    shipment = valid.shipment(
        **{
            "event_id": "e",
            "ts": "2024-06-30T23:30:00Z",
            "value_cny": "0.10",
            "weight_tonnes": 1,
            "zones": ["ftz-b", "ftz-a", "ftz-a"],
            **fields,
        }
    )
    return parse_event(encoded(shipment), "shipment")


def per_measure(inc: Increments) -> dict:
    """``inc.lines()`` read back as the Redis script reads them: (type, measure, granule) ->
    {cell: increment}, zero increments left out."""
    totals = {}
    for event_type, granule, lines in inc.lines():
        assert (event_type, granule) not in {(t, g) for t, _, g in totals}, "granule twice"
        for line in lines.split("\n"):
            cell, *deltas = line.split("\t")
            assert len(deltas) == len(STORED_MEASURES[event_type])
            for measure, delta in zip(STORED_MEASURES[event_type], deltas, strict=True):
                if delta != "0":
                    cells = totals.setdefault((event_type, measure, granule), {})
                    assert cell not in cells, "cell twice in a granule"
                    cells[cell] = int(delta)
    return totals


def increments(zone: str, *events):
    inc = Increments(LocalCalendar(ZoneInfo(zone)))
    inc.add(events)
    return per_measure(inc)


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
        "khorgos|rail|export|KG|general|ftz-a,ftz-b": 100,
    }


def test_zero_amounts_touch_nothing():
    totals = increments("UTC", event(value_cny=0, weight_tonnes="0.000"))
    assert {m for (_, m, _) in totals} == {"count"}


def test_trains_and_customs_cells():
    train = parse_event(
        encoded(
            valid.train(
                "t", "2024-01-01T00:00:00Z", service="china-asia", direction="inbound", teu=80
            )
        ),
        "train",
    )
    customs = parse_event(
        encoded(valid.customs("c", "2024-01-01T00:00:00Z", declaration_id="d", status="held")),
        "customs",
    )
    totals = increments("UTC", train, customs)
    assert totals[("train", "teu", "2024-01")] == {"khorgos|china-asia|inbound": 80}
    assert totals[("train", "count", "2024-01-01")] == {"khorgos|china-asia|inbound": 1}
    assert totals[("customs", "count", "2024-01-01")] == {"khorgos|held": 1}


def naive_sums(zone: str, events):
    """The plain way: every event's cell key and both granules, summed per event (how
    ``Increments`` worked before it summed per day and cell values)."""
    calendar, sums = LocalCalendar(ZoneInfo(zone)), {}
    for e in events:
        if e.type == "shipment":
            cell = "|".join(
                (e.port, e.mode, e.direction, e.partner, e.trade_mode, ",".join(e.zones))
            )
            amounts = (e.value_fen, e.weight_kg, 1)
        elif e.type == "train":
            cell, amounts = f"{e.port}|{e.service}|{e.direction}", (1, e.teu)
        else:
            cell, amounts = f"{e.port}|{e.status}", (1,)
        for granule in calendar.granules(e.ts):
            cells = sums.setdefault((e.type, granule), {})
            cells[cell] = [
                a + b for a, b in zip(cells.get(cell, [0] * len(amounts)), amounts, strict=True)
            ]
    return {
        (t, m, g): increments
        for (t, g), cells in sums.items()
        for i, m in enumerate(STORED_MEASURES[t])
        if (increments := {c: s[i] for c, s in cells.items() if s[i]})
    }


EPOCH_2024 = datetime(2024, 3, 30, tzinfo=UTC)
any_event = st.one_of(
    st.builds(
        lambda port, value, zones, s: event(
            port=port,
            value_cny=value,
            zones=zones,
            event_id="e",
            ts=(EPOCH_2024 + timedelta(seconds=s)).isoformat(),
        ),
        st.sampled_from(["khorgos", "kashgar"]),
        st.sampled_from([0, 1, "0.10", 5]),
        st.sampled_from([[], ["ftz-a"], ["ftz-b", "ftz-a"]]),
        st.integers(0, 3 * 86400),
    ),
    st.builds(
        lambda teu, s: parse_event(
            encoded(
                valid.train(
                    "t",
                    (EPOCH_2024 + timedelta(seconds=s)).isoformat(),
                    service="china-asia",
                    direction="inbound",
                    teu=teu,
                )
            ),
            "train",
        ),
        st.sampled_from([0, 80]),
        st.integers(0, 3 * 86400),
    ),
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(any_event, max_size=40),
    st.sampled_from(["UTC", "Asia/Shanghai", "Europe/Berlin", "Asia/Kathmandu"]),
)
def test_increments_equal_the_plain_sums(events, zone):
    assert increments(zone, *events) == naive_sums(zone, events)


def test_lines_can_be_read_twice():
    inc = Increments(LocalCalendar(ZoneInfo("UTC")))
    inc.add([event(), event(ts="2024-06-29T23:30:00Z"), event(value_cny=2)])
    assert list(inc.lines()) == list(inc.lines())
