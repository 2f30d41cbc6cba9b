"""Every rejection rule of the contract, and exact integer amounts for valid events."""

import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portflow.domain.events import (
    MAX_EVENT_BYTES,
    REJECTION_CODES,
    Customs,
    InvalidEvent,
    Shipment,
    Train,
    parse_event,
    parse_record,
    scaled_decimal,
)
from tests.support import events as valid

# Each type with values that exercise the parser (an amount as a JSON number, a fractional
# weight, two zones), built by the one event factory.
SHIPMENT = valid.shipment(
    ts="2024-03-14T08:15:00+08:00",
    value_cny=1234.56,
    weight_tonnes="12.345",
    zones=["ftz-urumqi", "cbz-urumqi"],
)
TRAIN = valid.train(port="alashankou")
CUSTOMS = valid.customs(port="kashgar", declaration_id="D-9", status="released")


def encode(event: dict) -> bytes:
    return json.dumps(event).encode()


def with_(base: dict, **changes) -> bytes:
    event = {**base, **changes}
    return encode({k: v for k, v in event.items() if v is not ...})


def rejected(raw: bytes, expected_type: str = "shipment") -> str:
    with pytest.raises(InvalidEvent) as info:
        parse_event(raw, expected_type)
    assert info.value.code in REJECTION_CODES
    return str(info.value)


def test_valid_shipment_has_exact_integer_amounts():
    event = parse_event(encode(SHIPMENT), "shipment")
    assert isinstance(event, Shipment)
    assert event.value_fen == 123456
    assert event.weight_kg == 12345
    assert event.zones == ("cbz-urumqi", "ftz-urumqi")


@pytest.mark.parametrize(
    ("text", "fen"),
    [
        ('"0"', 0),
        ("0", 0),
        ("-0", 0),
        ('"1234.5"', 123450),
        ("1e3", 100000),
        ("1.5E1", 1500),
        ("0.07", 7),
        ("999999999999.99", 99999999999999),
    ],
)
def test_value_forms(text, fen):
    raw = encode(SHIPMENT).replace(b"1234.56", text.encode())
    assert parse_event(raw, "shipment").value_fen == fen


def test_big_values_are_exact_not_floats():
    raw = encode(SHIPMENT).replace(b"1234.56", b"987654321012.34")
    assert parse_event(raw, "shipment").value_fen == 98765432101234


def test_valid_train_and_customs():
    train = parse_event(encode(TRAIN), "train")
    assert isinstance(train, Train)
    assert train.teu == 110
    assert train.train_id is None
    customs = parse_event(encode(CUSTOMS), "customs")
    assert isinstance(customs, Customs)
    assert customs.value_fen is None
    valued = parse_event(with_(CUSTOMS, value_cny="10.50", trade_mode="general"), "customs")
    assert valued.value_fen == 1050
    assert valued.trade_mode == "general"


def test_unknown_extra_fields_are_ignored():
    assert parse_event(with_(SHIPMENT, colour="blue", nested={"a": [1]}), "shipment")


@pytest.mark.parametrize("field", [k for k in SHIPMENT if k != "type"])
def test_missing_shipment_field_is_rejected(field):
    assert field in rejected(with_(SHIPMENT, **{field: ...}))


@pytest.mark.parametrize("field", ["event_id", "ts", "port", "service", "direction", "teu"])
def test_missing_train_field_is_rejected(field):
    assert field in rejected(with_(TRAIN, **{field: ...}), "train")


@pytest.mark.parametrize("field", ["event_id", "ts", "port", "declaration_id", "status"])
def test_missing_customs_field_is_rejected(field):
    assert field in rejected(with_(CUSTOMS, **{field: ...}), "customs")


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"type": "spaceship"}, "type"),
        ({"event_id": ""}, "event_id"),
        ({"event_id": "x" * 129}, "event_id"),
        ({"event_id": 17}, "event_id"),
        ({"ts": "2024-03-14T08:15:00"}, "offset"),
        ({"ts": "14/03/2024"}, "ts"),
        ({"ts": 1710400000}, "ts"),
        ({"ts": "0001-01-01T00:00:00+08:00"}, "1900"),
        ({"ts": "9999-12-31T23:59:59-08:00"}, "2999"),
        ({"port": "Khorgos"}, "port"),
        ({"port": "-khorgos"}, "port"),
        ({"port": "k" * 41}, "port"),
        ({"mode": "teleport"}, "mode"),
        ({"direction": "sideways"}, "direction"),
        ({"value_cny": -1}, "negative"),
        ({"value_cny": "-1.00"}, "value_cny"),
        ({"value_cny": 1.234}, "fraction digits"),
        ({"value_cny": "1.234"}, "fraction digits"),
        ({"value_cny": "NaN"}, "value_cny"),
        ({"value_cny": "Infinity"}, "value_cny"),
        ({"value_cny": "1e400"}, "value_cny"),
        ({"value_cny": True}, "value_cny"),
        ({"value_cny": None}, "value_cny"),
        ({"value_cny": [1]}, "value_cny"),
        ({"value_cny": " 12"}, "value_cny"),
        ({"value_cny": 10**13}, "exceeds"),
        ({"weight_tonnes": 1.2345}, "fraction digits"),
        ({"weight_tonnes": -0.001}, "negative"),
        ({"partner": "kz"}, "partner"),
        ({"partner": "KAZ"}, "partner"),
        ({"partner": "ZZ"}, "ISO 3166"),
        ({"trade_mode": "smuggling"}, "trade_mode"),
        ({"zones": "ftz-urumqi"}, "zones"),
        ({"zones": ["FTZ-Urumqi"]}, "zones"),
        ({"zones": ["ftz--urumqi"]}, "zones"),
        ({"zones": [f"z{i}" for i in range(33)]}, "zones"),
        # a final newline: Python's "$" would accept it (and put it in the aggregates' cell names)
        ({"port": "khorgos\n"}, "port"),
        ({"zones": ["ftz-urumqi\n"]}, "zones"),
        ({"partner": "KZ\n"}, "partner"),
        ({"value_cny": "12.50\n"}, "value_cny"),
    ],
)
def test_shipment_rule_violations_are_rejected_with_reason(changes, reason):
    assert reason in rejected(with_(SHIPMENT, **changes))


def test_non_finite_json_number_literal_is_rejected():
    raw = encode(SHIPMENT).replace(b"1234.56", b"NaN")
    assert "JSON" in rejected(raw)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"service": "china-africa"}, "service"),
        ({"direction": "export"}, "direction"),
        ({"teu": -1}, "teu"),
        ({"teu": 1.5}, "teu"),
        ({"teu": "10"}, "teu"),
        ({"teu": 10**6}, "teu"),
        ({"train_id": 5}, "train_id"),
    ],
)
def test_train_rule_violations_are_rejected(changes, reason):
    assert reason in rejected(with_(TRAIN, **changes), "train")


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"status": "lost"}, "status"),
        ({"declaration_id": ""}, "declaration_id"),
        ({"trade_mode": "barter"}, "trade_mode"),
        ({"value_cny": "1.001"}, "fraction digits"),
    ],
)
def test_customs_rule_violations_are_rejected(changes, reason):
    assert reason in rejected(with_(CUSTOMS, **changes), "customs")


def test_event_on_the_wrong_topic_is_rejected():
    assert "does not belong on the shipment topic" in rejected(encode(TRAIN), "shipment")


def test_event_over_64_kib_is_rejected():
    raw = with_(SHIPMENT, padding="x" * MAX_EVENT_BYTES)
    assert "bytes" in rejected(raw)


@pytest.mark.parametrize(
    "raw",
    [b"not json", b"\xff\xfe{}", b'{"type": "shipment"', b"", b"42", b'"text"', b"null", b"{}"],
)
def test_garbage_records_are_rejected_whole(raw):
    events, rejections = parse_record(raw, "shipment")
    assert events == []
    assert len(rejections) == 1
    assert rejections[0].raw == raw
    assert rejections[0].reason
    assert rejections[0].code in REJECTION_CODES


def test_batch_rejects_bad_elements_alone_with_their_index():
    batch = (
        b"["
        + b",".join(
            [
                encode(SHIPMENT),
                with_(SHIPMENT, event_id="s-2", mode="x"),
                b"7",
                with_(SHIPMENT, event_id="s-3"),
            ]
        )
        + b"]"
    )
    events, rejections = parse_record(batch, "shipment")
    assert [e.event_id for e in events] == ["s-1", "s-3"]
    assert [(r.batch_index, r.raw) for r in rejections] == [
        (1, with_(SHIPMENT, event_id="s-2", mode="x")),
        (2, b"7"),
    ]


@pytest.mark.parametrize("size", [0, 1001])
def test_batch_size_outside_1_to_1000_is_rejected(size):
    batch = b"[" + b",".join([encode(TRAIN)] * size) + b"]"
    events, rejections = parse_record(batch, "train")
    assert events == []
    assert "1 to 1000" in rejections[0].reason


def test_batch_of_1000_is_accepted():
    batch = b"[" + b",".join([encode(TRAIN)] * 1000) + b"]"
    events, rejections = parse_record(batch, "train")
    assert len(events) == 1000
    assert rejections == []


def test_truncated_batch_is_rejected_whole():
    events, rejections = parse_record(b"[" + encode(TRAIN), "train")
    assert events == []
    assert "not valid JSON" in rejections[0].reason


@given(
    units=st.integers(min_value=0, max_value=10**14),
    places=st.integers(0, 4),
    quoted=st.booleans(),
    exponent=st.booleans(),
)
def test_fast_and_exact_decimal_paths_agree(units, places, quoted, exponent):
    """Whatever path scaled_decimal takes, it equals Decimal arithmetic or rejects."""
    number = Decimal(units).scaleb(-places)
    text = f"{number:E}" if exponent and not quoted else f"{number:f}"
    raw = (f'"{text}"' if quoted else text).encode()
    try:
        got = scaled_decimal(raw, 2, 10**14, "value_cny")
    except InvalidEvent:
        assert (
            Decimal(text).as_tuple().exponent < -2
            or Decimal(text) * 100 > 10**14
            or (quoted and "E" in text)
        )
    else:
        assert got == Decimal(text) * 100


@pytest.mark.parametrize(
    ("ts", "accepted"),
    [
        ("1900-01-01T00:00:00Z", True),
        ("1899-12-31T23:59:59.999999Z", False),
        ("1900-01-01T07:59:59.999999+08:00", False),
        ("2999-12-31T23:59:59.999999Z", True),
        ("3000-01-01T00:00:00Z", False),
        ("3000-01-01T07:59:59.999999+08:00", True),
    ],
)
def test_ts_bounds_are_exact_to_the_microsecond(ts, accepted):
    """Float seconds cannot tell these apart from the bounds; the event times still decide."""
    events, rejections = parse_record(with_(TRAIN, ts=ts), "train")
    assert (len(events), len(rejections)) == ((1, 0) if accepted else (0, 1))
    if accepted:
        assert events[0].ts_seconds == events[0].ts.timestamp()


def raw_pairs(*pairs: tuple[str, object], separator: str = ":") -> bytes:
    return (
        "{" + ",".join(json.dumps(k) + separator + json.dumps(v) for k, v in pairs) + "}"
    ).encode()


def test_a_repeated_key_is_rejected_whichever_value_comes_last():
    for first, last in [("khorgos", "kashgar"), ("kashgar", "khorgos"), ("khorgos", "khorgos")]:
        raw = raw_pairs(("port", first), *TRAIN.items(), ("port", last))
        reason = rejected(raw, "train")
        assert reason == "key 'port' appears more than once in an object of the event"
        events, rejections = parse_record(raw, "train")
        assert events == []
        assert rejections[0].code == "duplicate_key"


@pytest.mark.parametrize(
    "extra",
    [
        [("colour", "red"), ("colour", "red")],  # an unknown field, twice
        [("nested", {"a": 1, "b": {"c": 1}})],  # a repeat inside a nested object (below)
        [("type", "train")],
        [("\\u0070ort", "khorgos")],  # the same key, escaped (decoded below)
    ],
)
def test_repeats_are_found_in_unknown_fields_nested_objects_and_escaped_keys(extra):
    raw = raw_pairs(*TRAIN.items(), *extra)
    raw = raw.replace(b'"c": 1', b'"c": 1, "c": 2').replace(b"\\\\u0070", b"\\u0070")
    assert rejected(raw, "train").startswith("key ")


@pytest.mark.parametrize("separator", [":", " : ", "\n:\t"])
def test_repeats_are_found_whatever_the_whitespace(separator):
    raw = raw_pairs(*SHIPMENT.items(), ("mode", "rail"), separator=separator)
    assert "'mode' appears more than once" in rejected(raw)


@pytest.mark.parametrize(
    ("event", "kind"),
    [
        ({**TRAIN, "event_id": '"port":"kashgar","teu":1'}, "train"),  # keys inside a string value
        ({**TRAIN, "note": 'x", "port": "kashgar'}, "train"),
        ({**TRAIN, "port": "teu"}, "train"),  # a value spelled like a key
        (
            {**TRAIN, "a": {"x": 1}, "b": {"x": 2}, "c": [{"x": 1}, {"x": 2}]},
            "train",
        ),  # x per object
        ({**TRAIN, "train_id": None}, "train"),
        ({**CUSTOMS, "trade_mode": None, "value_cny": None}, "customs"),
        ({**CUSTOMS, "value_cny": "10.50", "trade_mode": "general"}, "customs"),
        ({**SHIPMENT, "zones": []}, "shipment"),
    ],
)
def test_keys_spelled_twice_but_not_repeated_are_accepted(event, kind):
    assert parse_event(encode(event), kind).event_id == event["event_id"]


def test_a_field_rule_comes_before_the_repeat():
    """The strict models check every occurrence of a key, so a bad first one is named."""
    raw = raw_pairs(("port", "Khorgos"), *TRAIN.items())
    assert "port" in rejected(raw, "train")
    assert "regex" in rejected(raw, "train")


def test_a_repeat_in_a_batch_rejects_that_element_alone():
    twice = raw_pairs(*SHIPMENT.items(), ("event_id", "s-9"))
    batch = b"[" + b",".join([encode(SHIPMENT), twice, with_(SHIPMENT, event_id="s-3")]) + b"]"
    events, rejections = parse_record(batch, "shipment")
    assert [e.event_id for e in events] == ["s-1", "s-3"]
    assert [(r.batch_index, r.code, r.raw) for r in rejections] == [(1, "duplicate_key", twice)]
