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

from collections.abc import Iterable, Iterator
from operator import add
from typing import Final, Literal

from portflow.domain.events import Customs, Event, Shipment, Train
from portflow.domain.periods import LocalCalendar

# The order of the values in a cell key, per event type.
CELL_LAYOUT: Final[dict[str, tuple[str, ...]]] = {
    "shipment": ("port", "mode", "direction", "partner", "trade_mode", "zones"),
    "train": ("port", "service", "direction"),
    "customs": ("port", "status"),
}

# Stored measures per event type, and which report measure reads which stored one.
STORED_MEASURES: Final[dict[str, tuple[str, ...]]] = {
    "shipment": ("value", "weight", "count"),
    "train": ("count", "teu"),
    "customs": ("count",),
}

# An event's type and its dimension values in ``CELL_LAYOUT`` order (a shipment's zones last, as
# a tuple).
ShipmentCell = tuple[Literal["shipment"], str, str, str, str, str, tuple[str, ...]]
TrainCell = tuple[Literal["train"], str, str, str]
CustomsCell = tuple[Literal["customs"], str, str]
CellValues = ShipmentCell | TrainCell | CustomsCell

# One month's cells while ``Increments.lines`` sums them: cell → (its line, its amounts) while
# one day-and-cell sum makes it (that day's line serves), then the list of summed amounts.
_MonthCells = dict[str, tuple[str, tuple[int, ...]] | list[int]]


def _cell_of(values: CellValues) -> str:
    """The cell key of an event type and its dimension values (a shipment's zones last, as a
    tuple)."""
    if values[0] == "shipment":  # (one f-string: the bulk of the cells, and the fastest way)
        return f"{values[1]}|{values[2]}|{values[3]}|{values[4]}|{values[5]}|" + ",".join(values[6])
    return "|".join(values[1:])


def cell_values_and_amounts(event: Event) -> tuple[CellValues, tuple[int, ...]]:
    """The event type and the event's dimension values in ``CELL_LAYOUT`` order (a tuple
    hashes faster than the cell key is joined), and its amounts in ``STORED_MEASURES`` order
    (also what the worker's business metrics count)."""
    if isinstance(event, Shipment):
        return (
            (
                "shipment",
                event.port,
                event.mode,
                event.direction,
                event.partner,
                event.trade_mode,
                event.zones,
            ),
            (event.value_fen, event.weight_kg, 1),
        )
    if isinstance(event, Train):
        return ("train", event.port, event.service, event.direction), (1, event.teu)
    if isinstance(event, Customs):
        return ("customs", event.port, event.status), (1,)
    raise TypeError(f"not an event: {event!r}")


class Increments:
    """The summed increments of a set of events, per (type, granule) and cell.

    Summing before writing lets a batch of thousands of events touch each Redis field once.
    Events are summed per day and cell values only; the month granules and the cell keys are
    made from those sums in ``lines``, once per distinct day and cell rather than per event.
    """

    def __init__(self, calendar: LocalCalendar) -> None:
        self._calendar = calendar
        # (day, cell values) -> amounts
        self._sums: dict[tuple[str, CellValues], tuple[int, ...]] = {}

    def add(self, events: Iterable[Event]) -> None:
        sums_of, day = self._sums, self._calendar.day  # (a loop of tens of thousands)
        for event in events:
            values, amounts = cell_values_and_amounts(event)
            key = (day(event.ts, event.ts_seconds), values)
            sums = sums_of.get(key)
            # (a cell's first amounts are kept as they come: most cells of a chunk get one event)
            sums_of[key] = amounts if sums is None else tuple(map(add, sums, amounts))

    def lines(self) -> Iterator[tuple[str, str, str]]:
        """(type, granule, lines) for every granule touched: one line per cell, the cell key
        and its increments of ``STORED_MEASURES[type]`` in order, tab-separated
        (``khorgos|rail|export|KZ|general|\t1050\t2000\t1``), lines joined by newlines.

        One line carries all measures of a cell (neither cells nor integers hold a tab or a
        newline), so the Redis script finds the cell once per granule, not once per measure.
        Zero increments are written as they are; the script skips them.
        """
        # (type, day) -> its lines, and its month's cells; (type, month) -> its cells
        granules: dict[tuple[str, str], tuple[list[str], _MonthCells]] = {}
        months: dict[tuple[str, str], _MonthCells] = {}
        for (day, values), amounts in self._sums.items():
            event_type: str = values[0]
            granule = granules.get((event_type, day))
            if granule is None:
                month = months.setdefault((event_type, day[:7]), {})
                granule = granules[event_type, day] = ([], month)
            day_lines, month = granule
            cell = _cell_of(values)
            line = _line(cell, amounts)
            day_lines.append(line)
            entry = month.get(cell)
            if entry is None:
                month[cell] = (line, amounts)
            elif isinstance(entry, tuple):  # (as fast as type() when it is one)
                month[cell] = list(map(add, entry[1], amounts))
            else:
                entry[:] = map(add, entry, amounts)
        for (event_type, day), (day_lines, _) in granules.items():
            yield event_type, day, "\n".join(day_lines)
        for (event_type, month_name), cells in months.items():
            yield event_type, month_name, _month_lines(cells)


def _month_lines(cells: _MonthCells) -> str:
    """A month's lines: a cell touched on one day only keeps that day's line."""
    return "\n".join(
        [
            entry[0] if isinstance(entry, tuple) else _line(cell, entry)
            for cell, entry in cells.items()
        ]
    )


def _line(cell: str, amounts: tuple[int, ...] | list[int]) -> str:
    if len(amounts) == 3:  # shipments: the bulk of the lines
        value, weight, count = amounts
        return f"{cell}\t{value}\t{weight}\t{count}"
    return cell + "".join([f"\t{amount}" for amount in amounts])
