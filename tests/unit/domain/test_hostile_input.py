"""Hostile input never breaks parsing: every record yields events or rejections with reasons,
valid neighbours in a batch are unaffected, and no input reaches the ``internal_error``
catch-all (that code is for faults nobody foresaw: the fuzz target in fuzz/ hunts for them)."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portflow.domain import events as events_module
from portflow.domain.events import MAX_BATCH_EVENTS, MAX_EVENT_BYTES, REJECTION_CODES, parse_record
from tests.support.events import train

VALID = train("t-1", teu=110)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5)
    ),
    max_leaves=30,
)


def check(raw: bytes, expected_type: str = "train"):
    events, rejections = parse_record(raw, expected_type)
    for rejection in rejections:
        assert rejection.reason
        assert rejection.code in REJECTION_CODES
        assert rejection.code != "internal_error", rejection.reason
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


def nested(depth: int, kind: str) -> bytes:
    opener, closer = (b"[", b"]") if kind == "array" else (b'{"a":', b"}")
    return opener * depth + b"1" + closer * depth


@settings(max_examples=60, deadline=None)
@given(
    depth=st.integers(1, 300_000),
    kind=st.sampled_from(["array", "object"]),
    where=st.sampled_from(["record", "field", "batch element", "batch field"]),
)
def test_nesting_of_any_depth_anywhere(depth, kind, where):
    deep = nested(depth, kind)
    raw = {
        "record": deep,
        "field": b'{"type":"train","x":' + deep + b"}",
        "batch element": b"[" + json.dumps(VALID).encode() + b"," + deep + b"]",
        "batch field": b'[{"type":"train","x":' + deep + b"}]",
    }[where]
    events, rejections = check(raw)
    assert events or rejections


@settings(max_examples=40, deadline=None)
@given(keys=st.integers(0, 5000), extra=st.integers(0, 2 * MAX_EVENT_BYTES))
def test_wide_objects_and_long_strings(keys, extra):
    wide = {**VALID, **{f"k{i}": i for i in range(keys)}, "note": "x" * extra}
    events, rejections = check(json.dumps(wide).encode())
    assert len(events) + len(rejections) == 1
    if len(json.dumps(wide)) > MAX_EVENT_BYTES:
        assert rejections[0].code == "too_large"


@pytest.mark.parametrize("count", [0, 1, MAX_BATCH_EVENTS, MAX_BATCH_EVENTS + 1, 20_000])
def test_batches_of_any_size(count):
    batch = [{**VALID, "event_id": f"t-{i}"} for i in range(count)]
    events, rejections = check(json.dumps(batch).encode())
    if 1 <= count <= MAX_BATCH_EVENTS:
        assert len(events) == count
        assert not rejections
    else:
        assert not events
        assert [r.code for r in rejections] == ["bad_batch"]


ENCODINGS = [
    "utf-16",
    "utf-16-le",
    "utf-16-be",
    "utf-32",
    "utf-8-sig",
    "latin-1",
    "cp1252",
    "gb18030",
    "shift_jis",
    "utf-7",
]


@settings(max_examples=200, deadline=None)
@given(
    encoding=st.sampled_from(ENCODINGS),
    text=st.text(max_size=20),
    field=st.sampled_from(sorted(VALID)),
    batch=st.booleans(),
)
def test_records_in_other_encodings(encoding, text, field, batch):
    value = {**VALID, field: text} if field not in ("type",) else VALID
    document = [value, VALID] if batch else value
    try:
        raw = json.dumps(document, ensure_ascii=False).encode(encoding)
    except UnicodeEncodeError:
        return
    events, rejections = check(raw)
    assert events or rejections


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_bytes_broken_anywhere_in_a_valid_batch(data):
    raw = bytearray(json.dumps([VALID, {**VALID, "event_id": "t-2", "teu": "12"}]).encode())
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(raw) - 1))
        raw[position] = data.draw(st.integers(0x80, 0xFF))  # never valid alone in UTF-8
    check(bytes(raw))


def test_an_unforeseen_fault_rejects_only_its_own_element(monkeypatch):
    real = events_module._event_of  # the batch fast path's and each event's last step

    def faulty(wire):
        if wire.event_id == "t-2":
            raise MemoryError("nobody foresaw this")
        return real(wire)

    monkeypatch.setattr(events_module, "_event_of", faulty)
    batch = [VALID, {**VALID, "event_id": "t-2"}, {**VALID, "event_id": "t-3"}]
    events, rejections = parse_record(json.dumps(batch).encode(), "train")
    assert [e.event_id for e in events] == ["t-1", "t-3"]
    assert [(r.code, r.batch_index) for r in rejections] == [("internal_error", 1)]
    assert rejections[0].reason == "internal error: MemoryError: nobody foresaw this"
    single = parse_record(json.dumps({**VALID, "event_id": "t-2"}).encode(), "train")
    assert single[0] == []
    assert [r.code for r in single[1]] == ["internal_error"]
