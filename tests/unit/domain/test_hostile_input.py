"""Hostile input never breaks parsing: every record yields events or rejections with reasons,
and valid neighbours in a batch are unaffected."""

import json

from hypothesis import given, settings, strategies as st

from portflow.domain.events import REJECTION_CODES, parse_record

VALID = {"type": "train", "event_id": "t-1", "ts": "2024-03-14T00:15:00Z", "port": "khorgos",
         "service": "china-europe", "direction": "outbound", "teu": 110}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(), children,
                                                                       max_size=5),
    max_leaves=30)


def check(raw: bytes, expected_type: str = "train"):
    events, rejections = parse_record(raw, expected_type)
    for rejection in rejections:
        assert rejection.reason and rejection.code in REJECTION_CODES
    return events, rejections


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes(raw):
    events, rejections = check(raw)
    assert events or rejections


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_arbitrary_json(value):
    check(json.dumps(value).encode())


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(sorted(VALID)), value=json_values)
def test_any_value_in_any_field(field, value):
    events, rejections = check(json.dumps({**VALID, field: value}).encode())
    assert len(events) + len(rejections) == 1


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(json_values, st.just(VALID)), min_size=1, max_size=20))
def test_valid_neighbours_in_a_batch_still_count(elements):
    events, rejections = check(json.dumps(elements).encode())
    assert len(events) == sum(1 for e in elements if e == VALID)
    assert len(events) + len(rejections) == len(elements)


def test_deep_nesting_huge_numbers_and_control_characters():
    deep = b'{"type":"train","x":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert check(deep)[1]
    huge = json.dumps({**VALID, "teu": 10**400}).encode()
    assert check(huge)[1]
    tiny = json.dumps({**VALID, "teu": 1e-300}).encode()
    assert check(tiny)[1]
    control = json.dumps({**VALID, "port": "khor\x00gos"}).encode()
    assert check(control)[1]
    broken = json.dumps(VALID).encode().replace(b"khorgos", b"kh\xffrgos")
    assert check(broken)[1]
    assert check(b"[" + b",".join([json.dumps(VALID).encode()] * 3) + b"," + b"{" * 5000 + b"]")[1]
