"""The fast paths of parsing agree with the strict ones on every input: the same events (and
event times) and the same rejections, byte for byte.

The reference is ``parse_record`` with every fast path switched off: the strict wire models
decode every event, every number goes through ``Decimal`` and every event gets the exact
duplicate-key check.
"""

import json
from contextlib import contextmanager
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portflow.domain import event_decoding, events
from portflow.domain.event_decoding import KnownCodes
from portflow.domain.events import parse_record
from tests.support import events as valid


@contextmanager
def fast_paths_off():
    with mock.patch.multiple(
        events,
        loose_event=lambda raw: None,
        plain_scaled=lambda raw, places: None,
        keys_may_repeat=lambda raw, wire: True,
        plain_batch=lambda value, elements, expected_type: None,
    ):
        yield


def outcome(raw: bytes, expected_type: str):
    found, rejections = parse_record(raw, expected_type)
    return [(e, e.ts_seconds) for e in found], rejections


def agree(raw: bytes, expected_type: str) -> None:
    fast = outcome(raw, expected_type)
    with fast_paths_off():
        strict = outcome(raw, expected_type)
    assert fast == strict


PORTS = [
    "khorgos",
    "alashankou",
    "k",
    "a-b",
    "Khorgos",
    "-khorgos",
    "khorgos\n",
    "k" * 40,
    "k" * 41,
    "",
    "khor gos",
    "\u00e9",
    7,
]
ZONES = [
    ["ftz-urumqi"],
    ["cbz", "ftz-a", "cbz"],
    ["FTZ"],
    ["ftz--a"],
    ["ftz-"],
    ["z\n"],
    ["z" * 64],
    ["z" * 65],
    [""],
    ["a-1-b", "a"],
    "ftz",
    [f"z{i}" for i in range(33)],
]
PARTNERS = ["KZ", "DE", "ZZ", "kz", "KAZ", "KZ\n", "", "K"]
DECIMALS = [
    0,
    1,
    1234.56,
    "1234.56",
    "12.345",
    "0.07",
    "1e3",
    "1.5E1",
    "-1",
    -0.5,
    "1.234",
    1.234,
    1.2345,
    "007",
    " 12",
    "12.",
    ".5",
    "1_000",
    "NaN",
    "\u0661",
    10**13,
    "99999999999999.99",
    "999999999999999",
    "1" * 16,
    True,
    None,
    [1],
    {"a": 1},
]
TIMES = [
    "2024-03-14T08:15:00+08:00",
    "2024-03-14T00:15:00Z",
    "2024-03-14T08:15:00",
    "1900-01-01T00:00:00Z",
    "1899-12-31T23:59:59.999999Z",
    "1900-01-01T07:59:59+08:00",
    "2999-12-31T23:59:59.999999Z",
    "3000-01-01T00:00:00Z",
    "3000-01-01T07:59:59+08:00",
    "0001-01-01T00:00:00+08:00",
    "9999-12-31T23:59:59-08:00",
    "2024-06-30T23:30:00Z",
]
VALID = {
    "shipment": valid.shipment(
        "s-1",
        "2024-03-14T08:15:00+08:00",
        value_cny=1234.56,
        weight_tonnes="12.345",
        zones=["ftz-urumqi", "cbz-urumqi"],
    ),
    "train": valid.train("t-1", port="alashankou", teu=110),
    "customs": valid.customs("c-1", port="kashgar", declaration_id="D-9", status="released"),
}
# Values to put into a field of a valid event, valid and invalid.
CHANGES = {
    "type": ["shipment", "train", "customs", "ship"],
    "event_id": ["", '"port":"x"', "x" * 129],
    "ts": TIMES,
    "port": PORTS,
    "mode": ["road", "teleport"],
    "direction": ["import", "inbound"],
    "value_cny": DECIMALS,
    "weight_tonnes": DECIMALS,
    "partner": PARTNERS,
    "trade_mode": ["other", "barter", None],
    "zones": ZONES,
    "teu": [0, -1, 1.5, 10**6, "10"],
    "train_id": [None, "X1", 5, "x" * 129],
    "service": ["china-asia", "x"],
    "declaration_id": ["", "D-1"],
    "status": ["filed", "lost"],
}
EXTRAS = st.dictionaries(
    st.sampled_from(["colour", "nested", "x"]),
    st.recursive(
        st.none() | st.integers() | st.text(max_size=5),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.sampled_from("ab"), c, max_size=2),
        max_leaves=5,
    ),
    max_size=2,
)


def encoded(pairs: list[tuple[str, object]], spaced: bool) -> bytes:
    separator = " : " if spaced else ":"
    return (
        "{" + ",".join(json.dumps(k) + separator + json.dumps(v) for k, v in pairs) + "}"
    ).encode()


@st.composite
def raw_events(draw):
    """A valid event of some type with up to two fields changed, maybe a field dropped, maybe
    extra fields, maybe some keys written twice (the last value or another one)."""
    kind = draw(st.sampled_from(sorted(VALID)))
    event = dict(VALID[kind])
    for field in draw(st.lists(st.sampled_from(sorted(CHANGES)), max_size=2)):
        event[field] = draw(st.sampled_from(CHANGES[field]))
    if draw(st.integers(0, 9)) == 0:
        del event[draw(st.sampled_from(sorted(event)))]
    pairs = list(event.items())
    if draw(st.integers(0, 3)) == 0:
        pairs += list(draw(EXTRAS).items())
    for key in draw(st.lists(st.sampled_from(sorted(event)), max_size=2)):
        value = event[key] if draw(st.booleans()) else draw(st.sampled_from(CHANGES[key]))
        pairs.insert(draw(st.integers(0, len(pairs))), (key, value))
    return kind, encoded(pairs, draw(st.integers(0, 9)) == 0)


@pytest.mark.parametrize("kind", sorted(VALID))
def test_every_single_change_agrees(kind):
    for field, values in CHANGES.items():
        for value in values:
            event = {**VALID[kind], field: value}
            agree(encoded(list(event.items()), False), kind)
            agree(
                encoded([*list(event.items()), (field, VALID[kind].get(field, value))], True), kind
            )


@settings(max_examples=600, deadline=None)
@given(raw_events())
def test_single_events_agree(case):
    kind, raw = case
    agree(raw, kind)


@settings(max_examples=150, deadline=None)
@given(st.lists(raw_events(), min_size=1, max_size=8))
def test_batches_agree(cases):
    raw = b"[" + b",".join(raw for _, raw in cases) + b"]"
    agree(raw, cases[0][0])


@st.composite
def mostly_valid_events(draw, kind: str):
    """A valid event of ``kind``, plain or spaced, sometimes with extra fields, a repeated key or
    one field changed: batches of them mostly take the one-call way, sometimes not."""
    event = dict(VALID[kind])
    pairs = list(event.items())
    trouble = draw(st.integers(0, 9))
    if trouble == 0:
        field = draw(st.sampled_from(sorted(CHANGES)))
        pairs.append((field, draw(st.sampled_from(CHANGES[field]))))
    elif trouble == 1:
        key = draw(st.sampled_from(sorted(event)))
        pairs.insert(draw(st.integers(0, len(pairs))), (key, event[key]))
    elif trouble == 2:
        pairs += list(draw(EXTRAS).items())
    return encoded(pairs, draw(st.booleans()))


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(sorted(VALID)).flatmap(
        lambda kind: st.tuples(
            st.just(kind), st.lists(mostly_valid_events(kind), min_size=1, max_size=12)
        )
    )
)
def test_mostly_valid_batches_agree(case):
    kind, raws = case
    agree(b"[" + b",".join(raws) + b"]", kind)


def test_plain_batches_are_decoded_in_one_call_and_repeated_keys_are_not():
    plain = [encoded(list(VALID["shipment"].items()), spaced) for spaced in (False, True)]
    value = b"[" + b",".join(plain) + b"]"
    elements = event_decoding.BATCH_DECODER.decode(value)
    assert len(event_decoding.plain_batch(value, elements, "shipment")) == 2
    repeated = encoded([*list(VALID["shipment"].items()), ("port", "khorgos")], False)
    value = b"[" + b",".join([*plain, repeated]) + b"]"
    elements = event_decoding.BATCH_DECODER.decode(value)
    assert event_decoding.plain_batch(value, elements, "shipment") is None
    found, rejections = parse_record(value, "shipment")
    assert len(found) == 2
    assert [(r.code, r.batch_index) for r in rejections] == [("duplicate_key", 2)]


def test_known_codes_match_as_msgspec_does_and_stay_bounded():
    codes = KnownCodes(events.PORT_PATTERN)
    assert codes.admit("khorgos")
    assert codes.admit("khorgos")
    assert not codes.admit("khorgos\n")  # the patterns end in \Z: "$" would let a final newline in
    assert not codes.admit("Khorgos")
    assert "Khorgos" not in codes.known
    for i in range(KnownCodes.MAX_KNOWN + 5):
        assert codes.admit(f"p{i}")
    assert len(codes.known) <= KnownCodes.MAX_KNOWN
    zones = KnownCodes(events.ZONE_PATTERN, events.MAX_ZONE_LENGTH)
    assert zones.admit("z" * 64)
    assert not zones.admit("z" * 65)
