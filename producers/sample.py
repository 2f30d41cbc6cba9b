"""A small, seeded, varied replay file: the ``sample`` scenario, for demos and tests.

Two calendar years of shipments, trains and customs events over eight ports, with the edges a
stream processor must get right: event times near midnight in other offsets, 29 February,
year ends, amounts as JSON numbers and as strings, re-sent events (same ``event_id``) and a few
invalid lines. Same seed, same bytes.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta, timezone

from portflow.domain.events import (
    CUSTOMS_STATUSES,
    MODES,
    SHIPMENT_DIRECTIONS,
    TRADE_MODES,
    TRAIN_DIRECTIONS,
    TRAIN_SERVICES,
)
from producers.scenarios.writing import replay_file_writer

PORTS = ["alashankou", "khorgos", "kashgar", "urumqi", "irkeshtam", "torugart", "baketu", "jimunai"]
PARTNERS = ["KZ", "KG", "UZ", "TJ", "RU", "DE", "PL", "TR", "PK", "MN", "NL", "IT"]
ZONES = [
    [],
    [],
    ["ftz-urumqi"],
    ["cbz-urumqi", "ftz-urumqi"],
    ["cbz-khorgos"],
    ["cbz-kashgar"],
    ["cbz-alashankou"],
    ["ftz-kashgar"],
]
OFFSETS = [
    UTC,
    timezone(timedelta(hours=8)),
    timezone(timedelta(hours=5)),
    timezone(timedelta(hours=-3, minutes=-30)),
]
INVALID_LINES = [
    b"this is not json",
    b'{"type": "shipment"}',
    b"[1, 2, 3]",
    b'{"type": "spaceship", "event_id": "x"}',
]


def _timestamp(rng: random.Random, years: tuple[int, ...]) -> str:
    year = rng.choice(years)
    if rng.random() < 0.15:  # edges: around midnight, year ends and 29 February
        base = rng.choice(
            [
                datetime(year, 1, 1),
                datetime(year, 12, 31, 23),
                datetime(year, 6, 30, 23),
                datetime(year, 3, 1) if year % 4 else datetime(year, 2, 29, 23),
            ]
        )
        moment = base + timedelta(minutes=rng.randint(0, 119))
    else:
        moment = datetime(year, 1, 1) + timedelta(seconds=rng.randint(0, 364 * 86400))
    offset = rng.choice(OFFSETS)
    text = moment.replace(tzinfo=offset).isoformat()
    return text.replace("+00:00", "Z") if offset is UTC and rng.random() < 0.5 else text


def _amount(rng: random.Random, places: int, high: int) -> str | float:
    units = rng.randint(0, high * 10**places)
    text = f"{units // 10**places}.{units % 10**places:0{places}d}"
    return text if rng.random() < 0.3 else float(text)  # JSON number or string


def generate_sample(
    path: str, events: int = 2000, seed: int = 7, years: tuple[int, ...] = (2023, 2024)
) -> None:
    """Write ``events`` event lines (plus re-sends and a few invalid lines) to ``path``
    (gzip-compressed for ``.gz``)."""
    rng = random.Random(seed)
    written: list[bytes] = []
    with replay_file_writer(path) as out:
        for n in range(events):
            event = _event(rng, f"{seed}-{n}", events, years)
            line = json.dumps(event, separators=(",", ":")).encode()
            out.write(line + b"\n")
            written.append(line)
            if rng.random() < 0.02:  # a producer retry: the same event again, later
                out.write(rng.choice(written) + b"\n")
            if rng.random() < 0.002:
                out.write(rng.choice(INVALID_LINES) + b"\n")


def _event(
    rng: random.Random, number: str, events: int, years: tuple[int, ...]
) -> dict[str, object]:
    """A shipment, train or customs declaration (7:1:2), its id ending in ``number``."""
    kind = rng.choices(["shipment", "train", "customs"], [0.7, 0.1, 0.2])[0]
    event: dict[str, object] = {
        "type": kind,
        "event_id": f"{kind[:2]}-{number}",
        "ts": _timestamp(rng, years),
        "port": rng.choice(PORTS),
    }
    if kind == "shipment":
        event.update(_shipment_fields(rng))
    elif kind == "train":
        event.update(_train_fields(rng))
    else:
        event.update(_customs_fields(rng, events))
    return event


def _shipment_fields(rng: random.Random) -> dict[str, object]:
    return {
        "mode": rng.choice(MODES),
        "direction": rng.choice(SHIPMENT_DIRECTIONS),
        "value_cny": _amount(rng, 2, 5_000_000),
        "weight_tonnes": _amount(rng, 3, 2_000),
        "partner": rng.choice(PARTNERS),
        "trade_mode": rng.choice(TRADE_MODES),
        "zones": rng.choice(ZONES),
    }


def _train_fields(rng: random.Random) -> dict[str, object]:
    return {
        "service": rng.choice(TRAIN_SERVICES),
        "direction": rng.choice(TRAIN_DIRECTIONS),
        "teu": rng.randint(40, 110),
        "train_id": f"X{rng.randint(1000, 9999)}",
    }


def _customs_fields(rng: random.Random, events: int) -> dict[str, object]:
    """A declaration among ``events`` ids, with its trade mode and value half of the time."""
    fields: dict[str, object] = {
        "declaration_id": f"D{rng.randint(1, events)}",
        "status": rng.choice(CUSTOMS_STATUSES),
    }
    if rng.random() < 0.5:
        fields.update(trade_mode=rng.choice(TRADE_MODES), value_cny=_amount(rng, 2, 100_000))
    return fields
