"""Year-over-year gauges from the Redis aggregates (event time), for Grafana's YoY panels.

For the month, quarter, half and year to date containing the reference time (the newest event
time applied, at most the worker's clock plus ``PORTFLOW_MAX_EVENT_AHEAD``: ``domain.live_time``)
it exports the current value, the value of the same days a year earlier, and their ratio, by
port, mode, zone group and train service. The figures come from Redis, which every worker
shares, so exactly one process may export them or ``sum()`` would count them once per worker:
the worker that owns partition 0 of the shipments topic (see ``YoyCollector.active``). After a
rebalance the new owner takes over within one refresh.

A refresh reads every cell of the granules it compares, so its cost grows with the cells of two
years: it reads a few granules at a time (memory stays bounded by the largest granules), sums
each granule once per dimension, and ``refresh_if_due`` spaces refreshes so that they take at
most ``MAX_SHARE`` of the time (15 s apart while cheap), and wait while the worker is behind
(at most ``MAX_DEFER_S``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from datetime import datetime, tzinfo

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from portflow.adapters.redis import RedisStore
from portflow.config import Settings
from portflow.domain.live_time import reference_time
from portflow.domain.measures import unit_scale
from portflow.domain.periods import SPANS, span_to_date
from portflow.domain.rollup import sum_by
from streams.pacing import MAX_DEFER_S, MAX_SHARE, RefreshPacer

log = logging.getLogger(__name__)

# (metric name, help, measure label, event type, stored measure, dimensions)
YOY_MEASURES = (
    (
        "portflow_yoy_trade_value_yuan",
        "Trade value in yuan, by event time.",
        "trade_value",
        "shipment",
        "value",
        ("port", "mode", "zone_group"),
    ),
    (
        "portflow_yoy_cargo_weight_tonnes",
        "Cargo weight in tonnes, by event time.",
        "cargo_weight",
        "shipment",
        "weight",
        ("port", "mode"),
    ),
    (
        "portflow_yoy_trains",
        "Trains, by event time.",
        "trains",
        "train",
        "count",
        ("port", "service"),
    ),
)


READ_GRANULES = 2  # granules read from Redis (and held in memory) at a time

RowKey = tuple[str, ...]  # a row's values of the dimension summed by (empty for the total)
Rollups = dict[str, dict[str, dict[RowKey, int]]]  # granule -> dimension -> {row key: total}


class YoyCollector(Collector):
    """Serves the last computed YoY figures; ``refresh`` recomputes them from Redis."""

    def __init__(
        self,
        store: RedisStore,
        tz: tzinfo,
        clock: Callable[[], float] = time.monotonic,
        max_ahead_s: int | None = Settings.max_event_ahead_s,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.tz = tz
        self.max_ahead_s, self._wall_clock = max_ahead_s, wall_clock
        self.active = False  # this process owns the export (see module docstring)
        self._families: list[Metric] = []
        self._pacer = RefreshPacer(MAX_SHARE, MAX_DEFER_S, clock)

    def collect(self) -> Iterable[Metric]:
        return list(self._families) if self.active else []

    def refresh(self) -> None:
        latest_ts = reference_time(
            self.store.latest_event_time(), self._wall_clock(), self.max_ahead_s
        )
        self._families = [] if latest_ts is None else self._compute(latest_ts)

    def refresh_if_due(self, behind: bool = False) -> None:
        """Refresh unless the last refresh ended too recently for its cost (``MAX_SHARE``), or
        the worker is ``behind`` and the last refresh is less than ``MAX_DEFER_S`` old."""
        self._pacer.run(self.refresh, behind)

    def _compute(self, latest_ts: int) -> list[Metric]:
        latest_day = datetime.fromtimestamp(latest_ts, self.tz).date()
        spans = {span: span_to_date(span, latest_day) for span in SPANS}
        info = GaugeMetricFamily(
            "portflow_yoy_period_info",
            "The periods the YoY gauges compare (value always 1).",
            labels=["span", "current", "previous"],
        )
        latest = GaugeMetricFamily(
            "portflow_latest_event_timestamp_seconds",
            "Newest event time applied (Unix seconds), at most the worker's clock plus "
            "PORTFLOW_MAX_EVENT_AHEAD (a day if off): the YoY and drop gauges' now.",
            value=latest_ts,
        )
        families: list[Metric] = [info, latest]
        for span, (period, _, _) in spans.items():
            info.add_metric([span, str(period), str(period.previous())], 1)
        ratio = GaugeMetricFamily(
            "portflow_yoy_ratio",
            "Current over previous-year value (absent where that is 0).",
            labels=["measure", "span", "dimension", "port", "mode", "zone_group", "service"],
        )
        for name, help_text, measure, event_type, stored, dims in YOY_MEASURES:
            scale = unit_scale(event_type, stored)
            needed = sorted({g for _, now, before in spans.values() for g in now + before})
            dimensions = ("total", *dims)
            rollups = self._rollups(event_type, stored, needed, dimensions)
            gauge = GaugeMetricFamily(
                name,
                help_text,
                labels=["span", "window", "dimension", "port", "mode", "zone_group", "service"],
            )
            for span, (_, now, before) in spans.items():
                for dimension in dimensions:
                    current = _summed(rollups, now, dimension)
                    previous = _summed(rollups, before, dimension)
                    for key in sorted(set(current) | set(previous)):
                        labels = _labels(dimension, key)
                        cur, prev = current.get(key, 0), previous.get(key, 0)
                        gauge.add_metric([span, "current", dimension, *labels], cur / scale)
                        gauge.add_metric([span, "previous", dimension, *labels], prev / scale)
                        if prev:
                            ratio.add_metric([measure, span, dimension, *labels], cur / prev)
            families.append(gauge)
        families.append(ratio)
        return families

    def _rollups(
        self, event_type: str, stored: str, granules: list[str], dimensions: tuple[str, ...]
    ) -> Rollups:
        """granule -> dimension -> {row key: total}, each granule's cells read and summed once."""
        rollups: Rollups = {}
        for i in range(0, len(granules), READ_GRANULES):
            batch = granules[i : i + READ_GRANULES]
            for granule, cells in self.store.cells_per_granule(event_type, stored, batch).items():
                rollups[granule] = {
                    dimension: sum_by(
                        event_type, [] if dimension == "total" else [dimension], cells
                    )
                    for dimension in dimensions
                }
        return rollups


def _summed(rollups: Rollups, granules: list[str], dimension: str) -> dict[RowKey, int]:
    totals: dict[RowKey, int] = {}
    for granule in granules:
        for key, amount in rollups[granule][dimension].items():
            totals[key] = totals.get(key, 0) + amount
    return totals


def _labels(dimension: str, key: RowKey) -> list[str]:
    """Values for the port, mode, zone_group and service labels (empty where not this one)."""
    value = key[0] if key else ""
    return [value if dimension == d else "" for d in ("port", "mode", "zone_group", "service")]
