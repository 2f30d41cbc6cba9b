"""The terminal year-over-year view of ``portflow demo``: reports, reconciliation, pipeline.

``collect`` reads what the view shows (from Redis and the worker's /metrics); ``render`` turns
it into rich tables and is pure, so the view can be tested without a terminal.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from http.client import HTTPException
from typing import Any, Literal

from rich.columns import Columns
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from entrypoints.processes import http_get
from portflow.domain.documents import JsonObject
from portflow.domain.reconcile import Check

Report = JsonObject  # a report object (as ``portflow report --json`` prints it)
Justify = Literal["left", "right"]

BILLION = Decimal(10) ** 9
VIEWS = [  # (title, measure, dimension, rows shown)
    ("Value by port", "value_cny", "port", 10),
    ("Value by transport mode", "value_cny", "mode", 5),
    ("Value by zone group", "value_cny", "zone_group", 4),
    ("Top partners", "value_cny", "partner", 8),
    ("Value by trade mode", "value_cny", "trade_mode", 5),
    ("Trains by service", "trains", "service", 2),
]


@dataclass
class PipelineStatus:
    applied_events: int = 0
    rejected_events: int = 0
    events_per_s: float = 0.0
    lag_records: int | None = None
    note: str = ""  # e.g. how the last replay went


@dataclass
class Snapshot:
    period: str
    reports: dict[str, Report]  # by view title
    total: dict[str, Any]  # the report's ``total`` member
    checks: list[Check] = field(default_factory=list)
    pipeline: PipelineStatus = field(default_factory=PipelineStatus)


class MetricsRate:
    """Applied-events rate from successive scrapes of the worker's /metrics."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        self._last: tuple[float, float] | None = None

    def read(self, status: PipelineStatus) -> None:
        from prometheus_client.parser import text_string_to_metric_families

        try:
            code, body = http_get(*self.address, "/metrics", timeout_s=2)
        except (OSError, HTTPException):
            return
        if code != 200:
            return
        text = body.decode()
        for family in text_string_to_metric_families(text):
            total = sum(s.value for s in family.samples if s.name.endswith("_total"))
            if family.name == "portflow_events_applied":
                status.applied_events = int(total)
            elif family.name == "portflow_events_rejected":
                status.rejected_events = int(total)
        now = time.monotonic()
        if self._last:
            then, applied = self._last
            status.events_per_s = max(0.0, (status.applied_events - applied) / (now - then))
        self._last = (now, status.applied_events)


def collect(
    report: Callable[[str, str, list[str]], Report],
    period: str,
    checks: Callable[[], list[Check]] | None = None,
) -> Snapshot:
    reports = {title: report(period, measure, [dim]) for title, measure, dim, _ in VIEWS}
    return Snapshot(
        period, reports, report(period, "value_cny", [])["total"], checks() if checks else []
    )


def _amount(value: int, measure: str) -> str:
    return f"{value / BILLION:,.2f}" if measure == "value_cny" else f"{value:,}"


def _pct(value: float | None) -> Text:
    if value is None:
        return Text("new", style="cyan")
    return Text(f"{value:+.1f}", style="green" if value >= 0 else "red")


def _table(title: str, measure: str, dim: str, limit: int, result: Report, total: int) -> Table:
    unit = "bn yuan" if measure == "value_cny" else "trains"
    table = Table(title=title, title_justify="left", expand=False, pad_edge=False)
    table.add_column(dim.replace("_", " "))
    table.add_column(f"{result['period']} {unit}", justify="right")
    table.add_column(result["previous_period"], justify="right")
    table.add_column("YoY %", justify="right")
    if measure == "value_cny":
        table.add_column("share %", justify="right")
    for row in result["rows"][:limit]:
        cells: list[str | Text] = [
            row["key"][dim],
            _amount(row["current"], measure),
            _amount(row["previous"], measure),
            _pct(row["yoy_pct"]),
        ]
        if measure == "value_cny":
            cells.append(f"{row['current'] / total * 100:.1f}" if total else "—")
        table.add_row(*cells)
    return table


def _checks_table(checks: list[Check]) -> Table:
    table = Table(title="Published figures (seed article) against portflow", title_justify="left")
    columns: tuple[tuple[str, Justify], ...] = (
        ("figure", "left"),
        ("published", "right"),
        ("portflow", "right"),
        ("", "left"),
    )
    for name, justify in columns:
        table.add_column(name, justify=justify)
    for c in checks:
        if c.matches:
            mark = Text("✓ matches", style="green")
        elif c.flagged:
            mark = Text("⚑ " + c.note.split(": ", 1)[-1], style="yellow")
        else:
            mark = Text("✗ differs", style="bold red")
        table.add_row(
            c.figure, str(c.published), "—" if c.computed is None else str(c.computed), mark
        )
    return table


def render(snapshot: Snapshot) -> Group:
    total = snapshot.total
    p = snapshot.pipeline
    headline = Text.assemble(
        (f"{snapshot.period} trade value ", "bold"),
        (f"{total['current'] / BILLION:,.2f} bn yuan ", "bold"),
        ("(", ""),
        _pct(total["yoy_pct"]),
        (f"% YoY; {total['previous'] / BILLION:,.2f} bn a year earlier)", ""),
    )
    lag = "—" if p.lag_records is None else f"{p.lag_records:,} records"
    pipeline = Text(
        f"pipeline: {p.applied_events:,} events applied, {p.events_per_s:,.0f} events/s, "
        f"lag {lag}, {p.rejected_events:,} rejected to the DLQ" + (f"; {p.note}" if p.note else ""),
        style="dim",
    )
    tables = [
        _table(title, measure, dim, limit, snapshot.reports[title], total["current"])
        for title, measure, dim, limit in VIEWS
    ]
    parts: list[RenderableType] = [headline, pipeline, Columns(tables, padding=(0, 2))]
    if snapshot.checks:
        parts.append(_checks_table(snapshot.checks))
    return Group(*parts)
