"""What a report can count, and by what: the contract's measures and dimensions."""

from __future__ import annotations

from dataclasses import dataclass

from portflow.errors import UsageError


@dataclass(frozen=True)
class Measure:
    name: str
    event_type: str
    stored: str  # the stored measure it reads (see aggregates.STORED_MEASURES)
    places: int  # decimal places of the reported unit: 2 for yuan from fen, 3 for t from kg
    unit: str  # the reported unit's name in responses


MEASURES: dict[str, Measure] = {
    m.name: m
    for m in (
        Measure("value_cny", "shipment", "value", 2, "yuan"),
        Measure("weight_tonnes", "shipment", "weight", 3, "tonnes"),
        Measure("shipments", "shipment", "count", 0, "shipments"),
        Measure("trains", "train", "count", 0, "trains"),
        Measure("teu", "train", "teu", 0, "teu"),
        Measure("declarations", "customs", "count", 0, "declarations"),
    )
}


def unit_scale(event_type: str, stored: str) -> int:
    """Stored units in one reported unit: 100 fen a yuan, 1,000 kg a tonne, 1 for counts."""
    scale: int = next(
        10**m.places for m in MEASURES.values() if (m.event_type, m.stored) == (event_type, stored)
    )
    return scale


DIMENSIONS: dict[str, tuple[str, ...]] = {
    "shipment": ("port", "mode", "direction", "partner", "trade_mode", "zone", "zone_group"),
    "train": ("port", "service", "direction"),
    "customs": ("port", "status"),
}


class InvalidReport(UsageError, ValueError):
    """A report request that the contract does not allow (unknown measure or dimension)."""


def check_request(measure: str, by: list[str]) -> Measure:
    """Validate a measure and its dimensions, with a message that lists what is allowed."""
    if measure not in MEASURES:
        raise InvalidReport(f"unknown measure {measure!r}; choose from {', '.join(MEASURES)}")
    spec = MEASURES[measure]
    allowed = DIMENSIONS[spec.event_type]
    if len(by) > 2:
        raise InvalidReport("--by takes at most two dimensions")
    if len(set(by)) != len(by):
        raise InvalidReport("--by names the same dimension twice")
    for dim in by:
        if dim not in allowed:
            raise InvalidReport(
                f"dimension {dim!r} does not apply to {measure}; choose from {', '.join(allowed)}"
            )
    return spec
