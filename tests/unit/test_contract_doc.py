"""docs/contract.md, the users' contract, against the code: its examples get the results it
states, and it names every rejection code and every dead-letter header."""

import json
import re
from pathlib import Path

import pytest

from portflow.adapters import dead_letter_headers
from portflow.domain.events import REJECTION_CODES, parse_record

DOC = (Path(__file__).resolve().parents[2] / "docs" / "contract.md").read_text()

SHIPMENT = {
    "type": "shipment",
    "event_id": "s1",
    "ts": "2024-03-14T08:15:00+08:00",
    "port": "khorgos",
    "mode": "road",
    "direction": "export",
    "value_cny": "1234.56",
    "weight_tonnes": 12.5,
    "partner": "KZ",
    "trade_mode": "general",
    "zones": [],
}
TRAIN = {
    "type": "train",
    "event_id": "t1",
    "ts": "2024-03-14T08:15:00+08:00",
    "port": "khorgos",
    "service": "china-europe",
    "direction": "outbound",
    "teu": 50,
}
CUSTOMS = {
    "type": "customs",
    "event_id": "c1",
    "ts": "2024-03-14T08:15:00+08:00",
    "port": "khorgos",
    "declaration_id": "D1",
    "status": "filed",
}
BASES = {"shipment": SHIPMENT, "train": TRAIN, "customs": CUSTOMS}
MISSING = object()


def record(event_type: str, **fields) -> bytes:
    """The event's JSON with these fields changed (MISSING: left out); a str value that starts
    with "=" is raw JSON text (numbers written as the doc writes them)."""
    event = {k: v for k, v in {**BASES[event_type], **fields}.items() if v is not MISSING}
    text = json.dumps(
        {
            k: "\0" + v[1:] if isinstance(v, str) and v.startswith("=") else v
            for k, v in event.items()
        }
    )
    return re.sub(r'"\\u0000([^"]*)"', r"\1", text).encode()


def code_of(value: bytes, topic: str) -> str:
    events, rejections = parse_record(value, topic)
    return "accepted" if events and not rejections else rejections[0].code


ACCEPTED = (
    [
        ("shipment", {"ts": ts})
        for ts in (
            "2024-03-14T00:15:00Z",
            "2024-03-14T08:15:00.123456+08:00",
            "2024-03-14 08:15:00+08:00",
            "2024-03-14t00:15:00z",
            "2024-03-14T08:15:00+0800",
            "2024-03-14T08:15:00-00:00",
        )
    ]
    + [
        ("shipment", {"value_cny": v})
        for v in ("=1234.56", "1234.56", "=0", "0", "=12", "-0", "=1e3", "=1.5E-1")
    ]
    + [("shipment", {"partner": p}) for p in ("CN", "HK", "TW", "GB")]
    + [
        ("shipment", {"event_id": "x" * 128}),
        ("shipment", {"port": "port-2"}),
        ("shipment", {"zones": ["ftz-urumqi", "cbz-urumqi", "urumqi", "urumqi"]}),
        ("shipment", {"comment": None}),
        ("train", {"teu": 100_000}),
        ("train", {"train_id": None}),
        ("customs", {"trade_mode": None, "value_cny": None}),
    ]
)

REJECTED = (
    [
        ("shipment", {"type": "spaceship"}, "invalid_field"),
        ("shipment", {"type": MISSING}, "invalid_field"),
    ]
    + [("shipment", {"event_id": v}, "invalid_field") for v in ("", "x" * 129, 123)]
    + [
        ("shipment", {"port": v}, "invalid_field")
        for v in ("Khorgos", "-khorgos", "khorgos\n", "a" * 41)
    ]
    + [
        ("shipment", {"ts": "2024-03-14T08:15:00"}, "bad_timestamp"),
    ]
    + [
        ("shipment", {"ts": v}, "bad_timestamp")
        for v in ("1899-12-31T23:59:59Z", "1900-01-01T00:00:00+08:00", "3000-01-01T00:00:00Z")
    ]
    + [
        ("shipment", {"ts": v}, "invalid_field")
        for v in (
            "2024-03-14",
            "2024-03-14T08:15:00+08",
            "2024-02-30T08:15:00Z",
            "2024-03-14T24:00:00Z",
            "2016-12-31T23:59:60Z",
            1710375300,
        )
    ]
    + [
        ("shipment", {"value_cny": v}, "bad_number")
        for v in (
            "1e3",
            " 12",
            "+12",
            ".5",
            "5.",
            "1,000.00",
            "",
            "NaN",
            "1.500",
            "=1.500",
            "0.001",
            "=-1",
            "-0.01",
            "=true",
            None,
            [1],
            "=1000000000000.01",
            "=1e400",
        )
    ]
    + [
        ("shipment", {"value_cny": "=NaN"}, "not_json"),
        ("shipment", {"value_cny": "=Infinity"}, "not_json"),
        ("shipment", {"weight_tonnes": "1.2345"}, "bad_number"),
        ("shipment", {"weight_tonnes": "=1000000000.001"}, "bad_number"),
        ("shipment", {"mode": "rocket"}, "invalid_field"),
        ("shipment", {"direction": "outbound"}, "invalid_field"),
        ("shipment", {"partner": "kz"}, "invalid_field"),
        ("shipment", {"partner": "KAZ"}, "invalid_field"),
    ]
    + [("shipment", {"partner": p}, "unknown_partner") for p in ("XK", "EU", "UK")]
    + [
        ("shipment", {"trade_mode": "barter"}, "invalid_field"),
    ]
    + [
        ("shipment", {"zones": v}, "invalid_field")
        for v in (
            MISSING,
            None,
            [f"z{i}" for i in range(33)],
            ["FTZ-urumqi"],
            ["ftz--urumqi"],
            ["a" * 65],
        )
    ]
    + [
        ("train", {"service": "europe"}, "invalid_field"),
        ("train", {"direction": "import"}, "invalid_field"),
    ]
    + [("train", {"teu": v}, "invalid_field") for v in ("=-1", "=100001", "=50.0", "=5e1", "50")]
    + [("train", {"train_id": v}, "invalid_field") for v in ("=5", "x" * 129)]
    + [
        ("customs", {"declaration_id": ""}, "invalid_field"),
        ("customs", {"declaration_id": MISSING}, "invalid_field"),
        ("customs", {"status": "lost"}, "invalid_field"),
        ("customs", {"trade_mode": "barter"}, "invalid_field"),
        ("customs", {"value_cny": "1.234"}, "bad_number"),
    ]
)


@pytest.mark.parametrize(("event_type", "fields"), ACCEPTED)
def test_what_the_contract_says_is_accepted_is_accepted(event_type, fields):
    assert code_of(record(event_type, **fields), event_type) == "accepted"


@pytest.mark.parametrize(("event_type", "fields", "code"), REJECTED)
def test_what_the_contract_says_is_rejected_gets_its_code(event_type, fields, code):
    assert code_of(record(event_type, **fields), event_type) == code


@pytest.mark.parametrize(
    ("value", "topic", "code"),
    [
        (b"this is not json", "shipment", "not_json"),
        (b"\xef\xbb\xbf" + record("shipment"), "shipment", "not_json"),
        (record("shipment") + b"x", "shipment", "not_json"),
        (b"null", "shipment", "not_an_event"),
        (b"42", "shipment", "not_an_event"),
        (b'"text"', "shipment", "not_an_event"),
        (b"[[" + record("shipment") + b"]]", "shipment", "not_an_event"),
        (b"[]", "shipment", "bad_batch"),
        (b"[" + b",".join([record("shipment")] * 1001) + b"]", "shipment", "bad_batch"),
        (record("shipment", note="x" * 70_000), "shipment", "too_large"),
        (record("train"), "shipment", "wrong_topic"),
        (
            record("shipment").replace(b'"event_id": "s1"', b'"event_id": "a", "event_id": "b"'),
            "shipment",
            "duplicate_key",
        ),
        (
            record("shipment", note={"a": 1}).replace(b'{"a": 1}', b'{"a": 1, "a": 2}'),
            "shipment",
            "duplicate_key",
        ),
        (b"  " + record("shipment"), "shipment", "accepted"),
    ],
)
def test_the_records_of_the_contract_get_their_codes(value, topic, code):
    assert code_of(value, topic) == code


def test_the_contracts_examples_of_each_type_are_accepted():
    block = DOC.split("Accepted, one of each type:")[1].split("```json")[1].split("```")[0]
    decoder, rest, events = json.JSONDecoder(), block.strip(), []
    while rest:
        event, end = decoder.raw_decode(rest)
        events.append(event)
        rest = rest[end:].strip()
    assert [e["type"] for e in events] == ["shipment", "train", "customs"]
    for event in events:
        assert code_of(json.dumps(event).encode(), event["type"]) == "accepted"


def test_the_contract_explains_every_rejection_code():
    explained = set(
        re.findall(r"^\| `([a-z_]+)` \|", DOC.split("## Rejection codes")[1], re.MULTILINE)
    )
    assert explained >= set(REJECTION_CODES)


def test_the_contract_names_every_dead_letter_and_replay_header():
    headers = {
        v for k, v in vars(dead_letter_headers).items() if k.isupper() and isinstance(v, str)
    }
    assert headers
    assert {h for h in headers if f"`{h}" not in DOC} == set()
