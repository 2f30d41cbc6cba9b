"""What each event adds to which aggregate.

Every event lands in one *cell*: the tuple of its dimension values, joined with ``|`` (no
dimension value may contain ``|``, ``,`` or whitespace: the event rules forbid it). For each
granule it falls in (day, month) and each measure of its type, the cell's integer total grows
by the event's amount. Reports over any one or two dimensions are sums over cells, so adding a
dimension to a report never needs a new aggregate, and an event touches few fields:
``2 granules x measures`` of its type.

Amounts are integers: fen, kilograms, counts, TEU.
"""

from __future__ import annotations

from typing import Iterator
from zoneinfo import ZoneInfo

from portflow.domain.events import Customs, Event, Shipment, Train
from portflow.domain.periods import LocalCalendar

# The order of the values in a cell key, per event type.
CELL_LAYOUT: dict[str, tuple[str, ...]] = {
    "shipment": ("port", "mode", "direction", "partner", "trade_mode", "zones"),
    "train": ("port", "service", "direction"),
    "customs": ("port", "status"),
}

# Stored measures per event type, and which report measure reads which stored one.
STORED_MEASURES: dict[str, tuple[str, ...]] = {
    "shipment": ("value", "weight", "count"),
    "train": ("count", "teu"),
    "customs": ("count",),
}


def cell_and_amounts(event: Event) -> tuple[str, tuple[int, ...]]:
    """The cell an event lands in, and its amounts in the order of ``STORED_MEASURES``."""
    if isinstance(event, Shipment):
        cell = "|".join(
            (event.port, event.mode, event.direction, event.partner, event.trade_mode,
             ",".join(event.zones))
        )
        return cell, (event.value_fen, event.weight_kg, 1)
    if isinstance(event, Train):
        return f"{event.port}|{event.service}|{event.direction}", (1, event.teu)
    if isinstance(event, Customs):
        return f"{event.port}|{event.status}", (1,)
    raise TypeError(f"not an event: {event!r}")


class Increments:
    """The summed increments of a set of events, per (type, granule) and cell.

    Summing before writing lets a batch of thousands of events touch each Redis field once.
    """

    def __init__(self, calendar: LocalCalendar) -> None:
        self._calendar = calendar
        self._sums: dict[tuple[str, str], dict[str, list[int]]] = {}

    def add(self, event: Event) -> None:
        cell, amounts = cell_and_amounts(event)
        for granule in self._calendar.granules(event.ts):
            cells = self._sums.setdefault((event.type, granule), {})
            sums = cells.get(cell)
            if sums is None:
                cells[cell] = list(amounts)
            else:
                for i, amount in enumerate(amounts):
                    sums[i] += amount

    def per_measure(self) -> Iterator[tuple[str, str, str, dict[str, int]]]:
        """(type, measure, granule, {cell: increment}) for every non-zero increment."""
        for (event_type, granule), cells in self._sums.items():
            for i, measure in enumerate(STORED_MEASURES[event_type]):
                increments = {cell: sums[i] for cell, sums in cells.items() if sums[i]}
                if increments:
                    yield event_type, measure, granule, increments
