"""Cells summed into rows: the per-cell totals of a granule, filtered and summed by one or two
dimensions (see ``aggregates`` for cells).

A shipment in several zones counts once in each of its zones' rows (and once per zone group),
so zone rows may add up to more than the total; the total is always the sum of the cells kept.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from portflow.domain.aggregates import CELL_LAYOUT

REMEMBERED_CELLS = 65536

# A filter: per dimension, the values allowed (values of one dimension are alternatives; every
# dimension filtered must match), sorted, so that equal filters are equal keys.
Filters = tuple[tuple[str, tuple[str, ...]], ...]
NO_FILTERS: Filters = ()


def _values_getter(layout: tuple[str, ...], dim: str) -> Callable[[list[str]], Iterable[str]]:
    """A function from a cell's values to its values of ``dim`` (several for zones)."""
    if dim == "zone":
        i = layout.index("zones")
        return lambda values: values[i].split(",") if values[i] else ()
    if dim == "zone_group":
        i = layout.index("zones")
        return lambda values: (
            sorted({z.split("-", 1)[0] for z in values[i].split(",")}) if values[i] else ()
        )
    i = layout.index(dim)
    return lambda values: (values[i],)


def _row_keys(
    event_type: str, by: Iterable[str], filters: Filters = NO_FILTERS
) -> Callable[[str], tuple[tuple[str, ...], ...] | None]:
    """A function from a cell key to the row keys the cell counts in (several for zones), or
    None for a cell the filters leave out."""
    layout = CELL_LAYOUT[event_type]
    if not filters and not {"zone", "zone_group"} & set(by):
        return _plain_keys(tuple(layout.index(dim) for dim in by))
    getters = [_values_getter(layout, dim) for dim in by]
    tests = [(_values_getter(layout, dim), frozenset(allowed)) for dim, allowed in filters]

    def keys(cell: str) -> tuple[tuple[str, ...], ...] | None:
        values = cell.split("|")
        if any(allowed.isdisjoint(get(values)) for get, allowed in tests):
            return None
        return tuple(itertools.product(*(get(values) for get in getters)))

    return keys


def _plain_keys(positions: tuple[int, ...]) -> Callable[[str], tuple[tuple[str, ...], ...]]:
    """``_row_keys`` without filters or zones: each cell counts in one row."""
    if len(positions) == 1:
        (i,) = positions
        return lambda cell: ((cell.split("|")[i],),)
    if len(positions) == 2:
        i, j = positions

        def keys(cell: str) -> tuple[tuple[str, ...], ...]:
            values = cell.split("|")
            return ((values[i], values[j]),)

        return keys
    return lambda cell: ((),)


def sum_by(event_type: str, by: list[str], cells: Mapping[str, int]) -> dict[tuple[str, ...], int]:
    """Per-cell totals summed into rows keyed by the values of ``by`` (zones may repeat a cell)."""
    return Summer(event_type, tuple(by)).rows(cells)


def granule_summer(
    event_type: str, by: list[str]
) -> Callable[[Mapping[str, int]], dict[tuple[str, ...], int]]:
    """``sum_by`` for granule after granule: the same cells come again in each, so each cell's
    row keys are found once (up to ``REMEMBERED_CELLS`` of them)."""
    return Summer(event_type, tuple(by)).rows


@dataclass(frozen=True)
class Rollup:
    """One granule's totals: per row key, and in all (the cells the filters keep, each once)."""

    rows: dict[tuple[str, ...], int]
    total: int


EMPTY = Rollup({}, 0)


class Summer:
    """Sums granule after granule of one event type by the same dimensions and filters; each
    cell's row keys are found once (the same cells come again in each granule)."""

    def __init__(self, event_type: str, by: tuple[str, ...], filters: Filters = NO_FILTERS):
        self._keys_of = lru_cache(maxsize=REMEMBERED_CELLS)(_row_keys(event_type, by, filters))

    def rows(self, cells: Mapping[str, int]) -> dict[tuple[str, ...], int]:
        return self.rollup(cells).rows

    def rollup(self, cells: Mapping[str, int]) -> Rollup:
        keys_of = self._keys_of
        sums: dict[tuple[str, ...], int] = {}
        total = 0
        for cell, amount in cells.items():
            keys = keys_of(cell)
            if keys is None:
                continue
            total += amount
            for key in keys:
                sums[key] = sums.get(key, 0) + amount
        return Rollup(sums, total)
