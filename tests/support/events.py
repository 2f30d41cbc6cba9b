"""Valid events of each type, for tests: the contract's fields with plain values, any of them
overridden (``shipment("s-7", port="kashgar", value_cny="300.00")``). Tests that spell out a
wire payload on purpose (the contract's examples, hand-written bytes) keep it literal."""

from __future__ import annotations

import json
from typing import Any

# One instant (2024-03-14 08:15 in Shanghai) for every type unless a test says otherwise.
TS = "2024-03-14T00:15:00Z"


def shipment(event_id: str = "s-1", ts: str = TS, **fields: Any) -> dict[str, Any]:
    """A shipment of 100 yuan and one tonne by rail from Khorgos to Kazakhstan, in no zone."""
    return {
        "type": "shipment",
        "event_id": event_id,
        "ts": ts,
        "port": "khorgos",
        "mode": "rail",
        "direction": "export",
        "value_cny": "100.00",
        "weight_tonnes": "1",
        "partner": "KZ",
        "trade_mode": "general",
        "zones": [],
        **fields,
    }


def train(event_id: str = "t-1", ts: str = TS, **fields: Any) -> dict[str, Any]:
    """An outbound China-Europe train of 110 TEU through Khorgos."""
    return {
        "type": "train",
        "event_id": event_id,
        "ts": ts,
        "port": "khorgos",
        "service": "china-europe",
        "direction": "outbound",
        "teu": 110,
        **fields,
    }


def customs(event_id: str = "c-1", ts: str = TS, **fields: Any) -> dict[str, Any]:
    """A customs declaration filed at Khorgos."""
    return {
        "type": "customs",
        "event_id": event_id,
        "ts": ts,
        "port": "khorgos",
        "declaration_id": "D-1",
        "status": "filed",
        **fields,
    }


def encoded(event: Any) -> bytes:
    """An event (or a batch of them) as a record's value: JSON, UTF-8."""
    return json.dumps(event).encode()
