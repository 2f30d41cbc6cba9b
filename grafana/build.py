#!/usr/bin/env python
"""portflow's Grafana dashboards, as code (grafana-foundation-sdk 11.6, schemaVersion 41).

    .venv/bin/python grafana/build.py           # (re)write grafana/dashboards/*.json
    .venv/bin/python grafana/build.py --check   # exit 1 if the committed JSON is stale

``dashboards()`` returns the JSON of each board; ``panel_queries()`` returns every Prometheus
query with its template variables replaced by match-everything values, so that a test can run each
one against a real Prometheus; ``api_targets()`` returns every request the Infinity datasource
makes to portflow's API, with test values in its variables, and the fields its parser selects.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple, Protocol, Self, TypeVar
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from grafana_foundation_sdk.builders import barchart, bargauge, prometheus, stat, table, timeseries
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders.common import (
    ReduceDataOptions,
    VizLegendOptions,
    VizTooltipOptions,
)
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

OUT_DIR = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = model.DataSourceRef(type_val="prometheus", uid="prometheus")
# portflow's HTTP API, read by the Infinity plugin (provisioning/datasources/portflow-api.yml)
API = model.DataSourceRef(type_val="yesoreyeram-infinity-datasource", uid="portflow-api")

# Grafana units: built-in ids, or custom ones ("currency:SYM", "count:SUFFIX", "suffix:S").
CNY = "currency:CN¥"  # scaled: CN¥200B (Grafana has no built-in yuan unit; currencyJPY is yen)
CNY_PER_S = "count:CN¥/s"
TONNES = "masst"  # SI-scaled metric tons: 39.3 Mt
TONNES_PER_S = "count:t/s"
RATIO = "suffix:×"  # current ÷ previous: 1.484× is +48.4 %
PERCENT = "percent"  # the API's percentages: 22.73 is 22.73 %
POINTS = "suffix: pp"  # percentage points

# What panel_queries() puts in place of each template variable: values that match everything.
TEST_VALUES = {
    "port": ".*",
    "mode": ".*",
    "span": "half",
    "__rate_interval": "5m",
    "__interval": "1m",
    "__range": "1h",
}
VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")

Query = tuple[str, str]  # a PromQL expression and its legend
Panel = timeseries.Panel | stat.Panel | bargauge.Panel | barchart.Panel | table.Panel
Row = tuple[str, list[Panel]]  # a row's title and its panels
Variable = cogbuilder.Builder[model.VariableModel]


class Targeted(Protocol):
    """What ``_targets`` sets on a panel builder."""

    def description(self, description: str) -> Self: ...
    def with_target(self, target: cogbuilder.Builder[cogvariants.Dataquery]) -> Self: ...
    def datasource(self, datasource: model.DataSourceRef) -> Self: ...


class Thresholded(Protocol):
    """What ``_ratio_colours`` sets on a panel builder."""

    def unit(self, unit: str) -> Self: ...
    def decimals(self, decimals: float) -> Self: ...
    def thresholds(self, thresholds: cogbuilder.Builder[model.ThresholdsConfig]) -> Self: ...


T = TypeVar("T", bound=Targeted)
R = TypeVar("R", bound=Thresholded)

# What api_targets() puts in place of each variable of the event-time board: H1 2024 (the
# Xinjiang scenario's period) and the time range Grafana would send for it, in epoch ms.
_SHANGHAI = ZoneInfo("Asia/Shanghai")
API_TEST_VALUES = {
    "period": "2024-H1",
    "compare": "yoy",
    "currency": "CNY",
    "port": "khorgos",
    "__from": str(int(datetime(2024, 1, 1, tzinfo=_SHANGHAI).timestamp() * 1000)),
    "__to": str(int(datetime(2024, 7, 1, tzinfo=_SHANGHAI).timestamp() * 1000) - 1),
}


# ---------------------------------------------------------------------------------------------
# Panel shapes
# ---------------------------------------------------------------------------------------------


def _targets(
    panel: T,
    queries: Iterable[Query],
    *,
    description: str = "",
    instant: bool = False,
    table: bool = False,
) -> T:
    """Adds (expr, legend) queries to a panel as targets A, B, C, …, and the datasource."""
    if description:
        panel = panel.description(description)
    for i, (expr, legend) in enumerate(queries):
        target = (
            prometheus.Dataquery()
            .ref_id(chr(ord("A") + i))
            .datasource(DATASOURCE)
            .expr(expr)
            .legend_format(legend)
        )
        if instant:
            target = target.instant()
        if table:
            target = target.format(PromQueryFormat.TABLE)
        panel = panel.with_target(target)
    return panel.datasource(DATASOURCE)


def table_legend(calcs: list[str]) -> VizLegendOptions:
    """A legend below the graph, as a table of each series' ``calcs``."""
    return (
        VizLegendOptions()
        .show_legend(True)
        .display_mode(common.LegendDisplayMode.TABLE)
        .placement(common.LegendPlacement.BOTTOM)
        .calcs(calcs)
    )


def every_series_tooltip() -> VizTooltipOptions:
    """A tooltip listing every series at the hovered time, largest first."""
    return (
        VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI).sort(common.SortOrder.DESCENDING)
    )


def series(
    title: str, unit: str, *queries: Query, description: str = "", w: int = 12, h: int = 8
) -> timeseries.Panel:
    """A time series panel of range queries."""
    panel = (
        timeseries.Panel()
        .title(title)
        .unit(unit)
        .span(w)
        .height(h)
        .min(0)
        .legend(table_legend(["mean", "max"]))
        .tooltip(every_series_tooltip())
    )
    return _targets(panel, queries, description=description)


def big_number(
    title: str, unit: str, *queries: Query, description: str = "", w: int = 5, h: int = 4
) -> stat.Panel:
    """A stat panel showing the latest value of instant queries."""
    panel = (
        stat.Panel()
        .title(title)
        .unit(unit)
        .span(w)
        .height(h)
        .graph_mode(common.BigValueGraphMode.NONE)
        .text_mode(common.BigValueTextMode.VALUE_AND_NAME)
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )
    return _targets(panel, queries, description=description, instant=True)


def _ratio_colours(panel: R) -> R:
    """Red below 1 (fewer than a year earlier), green from 1 up."""
    return (
        panel.unit(RATIO)
        .decimals(3)
        .thresholds(
            dash.ThresholdsConfig()
            .mode(model.ThresholdsMode.ABSOLUTE)
            .steps(
                [model.Threshold(value=None, color="red"), model.Threshold(value=1, color="green")]
            )
        )
    )


def ratio_stat(title: str, expr: str, description: str = "", w: int = 3, h: int = 4) -> stat.Panel:
    panel = (
        stat.Panel()
        .title(title)
        .span(w)
        .height(h)
        .graph_mode(common.BigValueGraphMode.NONE)
        .color_mode(common.BigValueColorMode.VALUE)
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )
    return _targets(_ratio_colours(panel), [(expr, "YoY")], description=description, instant=True)


def ratio_bars(
    title: str, expr: str, legend: str, description: str = "", w: int = 8, h: int = 8
) -> bargauge.Panel:
    """A bar gauge of YoY ratios, one bar per series."""
    panel = (
        bargauge.Panel()
        .title(title)
        .span(w)
        .height(h)
        .orientation(common.VizOrientation.HORIZONTAL)
        .display_mode(common.BarGaugeDisplayMode.BASIC)
        .min(0)
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )
    return _targets(_ratio_colours(panel), [(expr, legend)], description=description, instant=True)


def current_vs_previous_bars(
    title: str,
    unit: str,
    current: str,
    previous: str,
    label: str,
    description: str = "",
    w: int = 16,
    h: int = 8,
) -> barchart.Panel:
    """Grouped bars per label value: this year's window beside the same days a year earlier.

    Both queries are instant tables; "merge" joins them on the label, "organize" names the
    value columns.
    """
    panel = (
        barchart.Panel()
        .title(title)
        .unit(unit)
        .span(w)
        .height(h)
        .x_field(label)
        .show_value(common.VisibilityMode.AUTO)
        .legend(
            VizLegendOptions()
            .show_legend(True)
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
        )
        .with_transformation(model.DataTransformerConfig(id_val="merge", options={}))
        .with_transformation(
            model.DataTransformerConfig(
                id_val="organize",
                options={
                    "excludeByName": {"Time": True},
                    "renameByName": {"Value #A": "current", "Value #B": "previous year"},
                },
            )
        )
    )
    return _targets(
        panel,
        [(current, "current"), (previous, "previous year")],
        description=description,
        instant=True,
        table=True,
    )


# ---------------------------------------------------------------------------------------------
# Template variables and boards
# ---------------------------------------------------------------------------------------------


def label_variable(name: str, label: str) -> dash.QueryVariable:
    """A multi-value variable over one label of the trade-value counter, "All" matching `.*`."""
    return (
        dash.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(f"label_values(portflow_trade_value_yuan_total, {name})")
        .refresh(model.VariableRefresh.ON_DASHBOARD_LOAD)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(model.VariableOption(selected=True, text="All", value="$__all"))
    )


def span_variable() -> dash.CustomVariable:
    spans = ["month", "quarter", "half", "ytd"]
    return (
        dash.CustomVariable("span")
        .label("YoY span")
        .values(",".join(spans))
        .current(model.VariableOption(selected=True, text="half", value="half"))
        .options([model.VariableOption(selected=s == "half", text=s, value=s) for s in spans])
    )


def board(
    uid: str,
    title: str,
    description: str,
    time_from: str,
    variables: list[Variable],
    rows: list[Row],
) -> dash.Dashboard:
    """A dashboard of rows, each (row title, [panel builders]); panel ids numbered in order.
    Each board links to the others (a "portflow" menu of the boards with that tag)."""
    builder = (
        dash.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["portflow"])
        .time(time_from, "now")
        .refresh("1m")
        .timezone("browser")
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .variables(variables)
        .links(
            [
                dash.DashboardLink("portflow")
                .type(model.DashboardLinkType.DASHBOARDS)
                .tags(["portflow"])
                .as_dropdown(True)
            ]
        )
    )
    panel_id = 0
    for row_title, panels in rows:
        panel_id += 1
        builder = builder.with_row(dash.Row(row_title).id(panel_id))
        for panel in panels:
            panel_id += 1
            builder = builder.with_panel(panel.id(panel_id))
    return builder


# ---------------------------------------------------------------------------------------------
# portflow — trade throughput, year over year
# ---------------------------------------------------------------------------------------------

# measure label of portflow_yoy_ratio → (gauge, unit, display name)
YOY_MEASURES = {
    "trade_value": ("portflow_yoy_trade_value_yuan", CNY, "Trade value"),
    "cargo_weight": ("portflow_yoy_cargo_weight_tonnes", TONNES, "Cargo weight"),
    "trains": ("portflow_yoy_trains", "short", "Trains"),
}
YOY_NOTE = (
    "From the worker's YoY gauges (Redis aggregates, by event time): the $span containing "
    "the newest event against the same days a year earlier."
)


def yoy_totals(measure: str) -> list[Panel]:
    gauge, unit, name = YOY_MEASURES[measure]
    total = 'span="$span", dimension="total"'
    note = YOY_NOTE + " All ports and modes: the port and mode filters do not apply."
    return [
        big_number(
            f"{name}: $span vs a year earlier",
            unit,
            (f'sum({gauge}{{{total}, window="current"}})', "current"),
            (f'sum({gauge}{{{total}, window="previous"}})', "previous year"),
            description=note,
        ),
        ratio_stat(
            f"{name} YoY",
            f'sum(portflow_yoy_ratio{{measure="{measure}", {total}}})',
            description="Current over previous-year value. " + note,
        ),
    ]


def yoy_by(measure: str, label: str, title: str, filtered: bool = False) -> list[Panel]:
    """Current vs previous bars and the YoY ratio per value of one dimension."""
    gauge, unit, name = YOY_MEASURES[measure]
    match = f'span="$span", dimension="{label}"' + (f', {label}=~"${label}"' if filtered else "")

    def window(w: str) -> str:
        return f'sum by ({label}) ({gauge}{{{match}, window="{w}"}})'

    return [
        current_vs_previous_bars(
            f"{name} by {title}: $span vs a year earlier",
            unit,
            window("current"),
            window("previous"),
            label,
            description=YOY_NOTE,
        ),
        ratio_bars(
            f"{name} YoY by {title}",
            f'portflow_yoy_ratio{{measure="{measure}", {match}}}',
            f"{{{{{label}}}}}",
            description="Current over previous-year value (absent where that was 0).",
        ),
    ]


def rate_by(metric: str, by: str, extra: str = "") -> str:
    selector = f'port=~"$port", mode=~"$mode"{extra}'
    return f"sum by ({by}) (rate({metric}{{{selector}}}[$__rate_interval]))"


def clearance(q: str) -> str:
    return (
        f"histogram_quantile({q}, sum by (le) (rate(portflow_customs_clearance_seconds_bucket"
        '{port=~"$port"}[$__rate_interval])))'
    )


def overview() -> dash.Dashboard:
    rate1h = 'portflow:trade_value_yuan:rate1h{port=~"$port", mode=~"$mode"}'
    return board(
        "portflow-overview",
        "portflow — trade throughput, year over year",
        "Trade value, cargo and trains through the border ports, against a year earlier.",
        "now-7d",
        [label_variable("port", "Port"), label_variable("mode", "Transport mode"), span_variable()],
        [
            (
                "Year over year ($span)",
                [*yoy_totals("trade_value"), *yoy_totals("cargo_weight"), *yoy_totals("trains")],
            ),
            (
                "Year over year by dimension ($span)",
                [
                    *yoy_by("trade_value", "port", "port", filtered=True),
                    *yoy_by("trade_value", "mode", "transport mode", filtered=True),
                    *yoy_by("trade_value", "zone_group", "zone group"),
                    *yoy_by("trains", "service", "train service"),
                ],
            ),
            (
                "Throughput drops (event time)",
                [
                    ratio_bars(
                        "Latest complete day against expectation, by port",
                        'portflow_event_time_ratio{by="port", port=~"$port"}',
                        "{{port}}",
                        description="Observed over expected for the latest complete day "
                        "(event time), as `portflow anomalies` judges it: the "
                        "lower of the trailing weeks' and the year-earlier "
                        "baseline, or the Spring Festival a year earlier.",
                    ),
                    ratio_bars(
                        "… by port and mode",
                        'portflow_event_time_ratio{by="port,mode", port=~"$port", mode=~"$mode"}',
                        "{{port}} {{mode}}",
                    ),
                    ratio_bars(
                        "… trains by port and service",
                        'portflow_event_time_ratio{by="port,service", port=~"$port"}',
                        "{{port}} {{service}}",
                    ),
                    series(
                        "Days judged a drop (held while alerting)",
                        RATIO,
                        (
                            'portflow_event_time_drop_ratio{port=~"$port"}',
                            "{{day}} {{port}} {{mode}}{{service}}",
                        ),
                        description="1 - observed/expected of each day judged a drop "
                        "(PortflowThroughputDropEventTime).",
                        w=24,
                    ),
                ],
            ),
            (
                "Live throughput",
                [
                    series(
                        "Trade value per second by port",
                        CNY_PER_S,
                        (rate_by("portflow_trade_value_yuan_total", "port"), "{{port}}"),
                    ),
                    series(
                        "Cargo weight per second by port",
                        TONNES_PER_S,
                        (rate_by("portflow_cargo_weight_tonnes_total", "port"), "{{port}}"),
                    ),
                    series(
                        "Shipments per second by port",
                        "cps",
                        (rate_by("portflow_shipments_total", "port"), "{{port}}"),
                    ),
                    series(
                        "Trade value this week vs 52 weeks earlier",
                        CNY_PER_S,
                        (f"sum({rate1h})", "this year"),
                        # Not `offset 1y`: PromQL's 1y is exactly 365 days, so across a leap
                        # year it lands a day off; 52w (364 days) also keeps weekdays aligned.
                        (f"sum({rate1h} offset 52w)", "52 weeks earlier"),
                        description="Hourly trade-value rate (recording rule "
                        "portflow:trade_value_yuan:rate1h) beside the same weekday "
                        "and hour 52 weeks earlier.",
                    ).time_from("7d"),
                    series(
                        "Trains per hour by service",
                        "short",
                        (
                            'sum by (service) (increase(portflow_trains_total{port=~"$port"}[1h]))',
                            "{{service}}",
                        ),
                    ),
                    series(
                        "TEU per hour by service",
                        "short",
                        (
                            "sum by (service) "
                            '(increase(portflow_train_teu_total{port=~"$port"}[1h]))',
                            "{{service}}",
                        ),
                    ),
                ],
            ),
            (
                "Customs",
                [
                    series(
                        "Customs declarations per second by status",
                        "cps",
                        (
                            "sum by (status) (rate(portflow_customs_declarations_total"
                            '{port=~"$port"}[$__rate_interval]))',
                            "{{status}}",
                        ),
                    ),
                    series(
                        "Customs clearance time",
                        "s",
                        (clearance("0.5"), "p50"),
                        (clearance("0.9"), "p90"),
                    ),
                ],
            ),
        ],
    )


# ---------------------------------------------------------------------------------------------
# portflow — pipeline health
# ---------------------------------------------------------------------------------------------


def per_type(metric: str) -> str:
    return f"sum by (type) (rate({metric}[$__rate_interval]))"


def quantile(q: str, metric: str, by: str = "le, type") -> str:
    return f"histogram_quantile({q}, sum by ({by}) (rate({metric}[$__rate_interval])))"


def pipeline() -> dash.Dashboard:
    return board(
        "portflow-pipeline",
        "portflow — pipeline health",
        "Kafka → Faust worker → Redis: throughput, rejections (DLQ), lag and latency.",
        "now-1h",
        [label_variable("port", "Port"), label_variable("mode", "Transport mode")],
        [
            (
                "Throughput",
                [
                    big_number("Workers up", "none", ('sum(up{job="portflow"})', "workers"), w=4),
                    series(
                        "Events applied",
                        "eps",
                        (per_type("portflow_events_applied_total"), "{{type}}"),
                        w=10,
                    ),
                    series(
                        "Duplicate events skipped",
                        "eps",
                        (per_type("portflow_events_duplicate_total"), "{{type}}"),
                        w=10,
                    ),
                    series(
                        "Rejected to the DLQ, by reason",
                        "eps",
                        (
                            "sum by (type, reason) (rate(portflow_events_rejected_total"
                            "[$__rate_interval]))",
                            "{{type}} {{reason}}",
                        ),
                        description="The dead-letter topic's write rate.",
                    ),
                    series(
                        "Redelivered records skipped",
                        "recps",
                        (per_type("portflow_records_redelivered_total"), "{{type}}"),
                        description="Records at or below their partition's mark (the last offset "
                        "applied), e.g. after a rebalance or a crash.",
                    ),
                ],
            ),
            (
                "Lag",
                [
                    series(
                        "Consumer lag by topic",
                        "short",
                        ("sum by (topic) (portflow_consumer_lag_records)", "{{topic}}"),
                    ),
                    series(
                        "Event-time lag by type",
                        "s",
                        ("max by (type) (portflow_event_time_lag_seconds)", "{{type}}"),
                        description="Wall clock minus the newest applied event time.",
                    ),
                    series("Applied offset", "none", ("portflow_applied_offset", "__auto")),
                    series(
                        "Partitions owned by topic",
                        "none",
                        ("sum by (topic) (portflow_worker_partitions)", "{{topic}}"),
                    ),
                ],
            ),
            (
                "Latency",
                [
                    series(
                        "Batch processing time p99",
                        "s",
                        (quantile("0.99", "portflow_batch_processing_seconds_bucket"), "{{type}}"),
                        w=8,
                    ),
                    series(
                        "Batch size p50",
                        "short",
                        (quantile("0.5", "portflow_batch_events_bucket"), "{{type}}"),
                        w=8,
                    ),
                    series(
                        "Redis write time p99",
                        "s",
                        (quantile("0.99", "portflow_redis_write_seconds_bucket", by="le"), "p99"),
                        w=8,
                    ),
                ],
            ),
        ],
    )


# ---------------------------------------------------------------------------------------------
# portflow — event time, from portflow's API (the Infinity datasource)
# ---------------------------------------------------------------------------------------------


class Column(NamedTuple):
    """A field the Infinity backend parser takes from each row: a dotted path (GJSON syntax,
    kept to plain names so that the tests resolve it the same way), its name and type."""

    selector: str
    text: str
    type: str = "number"  # "string" | "number" | "timestamp"


# RFC 3339 with an offset, as the API writes times (Go's layout, which the plugin parses with).
RFC3339 = "2006-01-02T15:04:05Z07:00"


class InfinityQuery(cogvariants.Dataquery, cogbuilder.Builder[cogvariants.Dataquery]):
    """A GET of portflow's API read by the Infinity plugin's backend parser (the one alerting can
    use too). grafana-foundation-sdk has no Infinity builder, so this is both builder and model.

    ``params`` are (name, value) pairs; the plugin appends them to the URL, encoded, after
    Grafana has replaced the variables in them. The datasource's URL is prefixed to ``path``.
    """

    def __init__(
        self,
        path: str,
        params: list[tuple[str, str]],
        root_selector: str,
        columns: list[Column],
        ref_id: str = "A",
    ):
        self.path, self.params, self.root_selector = path, params, root_selector
        self.columns, self.ref_id = columns, ref_id

    def build(self) -> InfinityQuery:
        return self

    def to_json(self) -> dict[str, Any]:
        return {
            "refId": self.ref_id,
            "datasource": API.to_json(),
            "type": "json",
            "source": "url",
            "parser": "backend",
            "format": "table",
            "url": self.path,
            "url_options": {
                "method": "GET",
                "data": "",
                "params": [{"key": k, "value": v} for k, v in self.params],
            },
            "root_selector": self.root_selector,
            "columns": [
                {
                    "selector": c.selector,
                    "text": c.text,
                    "type": c.type,
                    **({"timestampFormat": RFC3339} if c.type == "timestamp" else {}),
                }
                for c in self.columns
            ],
            "filters": [],
        }


def report_query(
    root_selector: str, columns: list[Column], *params: tuple[str, str]
) -> InfinityQuery:
    """GET /v1/reports of trade value for $period against $compare, in $currency; ``params``
    add to these or replace them."""
    defaults = {
        "period": "$period",
        "measure": "value_cny",
        "compare": "$compare",
        "currency": "$currency",
    }
    return InfinityQuery(
        "/v1/reports", list((defaults | dict(params)).items()), root_selector, columns
    )


def series_query(
    granularity: str, columns: list[Column], *params: tuple[str, str]
) -> InfinityQuery:
    """GET /v1/series of trade value over the dashboard's time range (epoch ms, which the API
    takes as Grafana sends it), in $currency."""
    return InfinityQuery(
        "/v1/series",
        [
            ("measure", "value_cny"),
            ("granularity", granularity),
            ("from", "${__from}"),
            ("to", "${__to}"),
            ("currency", "$currency"),
            *params,
        ],
        "rows",
        columns,
    )


AMOUNTS = [Column("current", "current"), Column("previous", "previous")]
# The report row's comparison fields, and the unit each is shown in.
ROW_FIELDS = [
    (Column("change", "change"), "short"),
    (Column("growth_pct", "growth %"), PERCENT),
    (Column("share_pct", "share %"), PERCENT),
    (Column("previous_share_pct", "previous share %"), PERCENT),
    (Column("share_change_pp", "share change"), POINTS),
    (Column("contribution_pp", "contribution"), POINTS),
    (Column("contribution_share_pct", "share of the change %"), PERCENT),
    (Column("rank", "rank"), "none"),
    (Column("previous_rank", "previous rank"), "none"),
]
REPORT_NOTE = (
    "From portflow's API (GET /v1/reports), by event time: exact totals of the "
    "period against the same period a year earlier (compare = yoy) or the period "
    "just before (previous). growth % = change over the previous value; contribution "
    "= the row's change over the previous total (percentage points of the total's "
    "growth); share of the change = the row's change over the total's change."
)


def report_table(title: str, dim: str, *params: tuple[str, str], w: int = 24) -> table.Panel:
    """A table of the report's rows by one dimension, each comparison field in its unit."""
    columns = [Column(f"key.{dim}", dim, "string"), *AMOUNTS, *(c for c, _ in ROW_FIELDS)]
    panel = (
        table.Panel()
        .title(title)
        .description(REPORT_NOTE)
        .span(w)
        .height(9)
        .unit("short")
        .with_target(report_query("rows", columns, ("by", dim), *params))
        .datasource(API)
    )
    for column, unit in ROW_FIELDS:
        if unit != "short":
            panel = panel.override_by_name(
                column.text, [model.DynamicConfigValue(id_val="unit", value=unit)]
            )
    return panel


def by_dimension(dim: str, title: str, *params: tuple[str, str]) -> table.Panel:
    return report_table(
        f"Trade value by {title}: $period against $compare ($currency)", dim, *params
    )


def totals(
    title: str, *extra: tuple[str, str], description: str = REPORT_NOTE, w: int = 8
) -> stat.Panel:
    """The report's total: current and previous amounts and the growth."""
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .span(w)
        .height(5)
        .unit("short")
        .graph_mode(common.BigValueGraphMode.NONE)
        .text_mode(common.BigValueTextMode.VALUE_AND_NAME)
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .override_by_name("growth %", [model.DynamicConfigValue(id_val="unit", value=PERCENT)])
        .with_target(report_query("total", [*AMOUNTS, Column("growth_pct", "growth %")], *extra))
    )
    return panel.datasource(API)


def data_through() -> table.Panel:
    """How far the data goes: the newest event applied and whether the period is complete."""
    query = report_query(
        "data",
        [
            Column("newest_event", "newest event", "string"),
            Column("period_status", "period", "string"),
        ],
    )
    return (
        table.Panel()
        .title("Data through")
        .span(12)
        .height(5)
        .with_target(query)
        .description(
            "The newest event time applied, and whether $period is complete, "
            "in progress or has no data yet."
        )
        .datasource(API)
    )


def against_earlier(
    title: str,
    granularity: str,
    earlier: str,
    description: str,
    *params: tuple[str, str],
    w: int = 12,
) -> timeseries.Panel:
    """A time series of the API's rows: value beside the same days or month earlier."""
    columns = [
        Column("time", "time", "timestamp"),
        Column("value", "trade value"),
        Column("previous", earlier),
    ]
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .unit("short")
        .span(w)
        .height(9)
        .min(0)
        .legend(table_legend(["sum", "mean"]))
        .tooltip(every_series_tooltip())
        .with_target(series_query(granularity, columns, *params))
    )
    return panel.datasource(API)


def api_port_variable() -> dash.QueryVariable:
    """The ports of $period's report, largest first (a single port: the API's filter)."""
    query = InfinityQuery(
        "/v1/reports",
        [("period", "$period"), ("by", "port")],
        "rows",
        [Column("key.port", "port", "string")],
        ref_id="variable",
    )
    return (
        dash.QueryVariable("port")
        .label("Port")
        .datasource(API)
        .query({"queryType": "infinity", "refId": "variable", "infinityQuery": query.to_json()})
        .refresh(model.VariableRefresh.ON_DASHBOARD_LOAD)
        .sort(model.VariableSort.DISABLED)
        .multi(False)
        .include_all(False)
    )


def choice_variable(name: str, label: str, values: list[str]) -> dash.CustomVariable:
    return (
        dash.CustomVariable(name)
        .label(label)
        .values(",".join(values))
        .current(model.VariableOption(selected=True, text=values[0], value=values[0]))
        .options([model.VariableOption(selected=v == values[0], text=v, value=v) for v in values])
    )


def period_variable() -> dash.TextBoxVariable:
    return (
        dash.TextBoxVariable("period")
        .label("Period (2024, 2024-H1, 2024-Q2, 2024-06, 2024-06-15)")
        .default_value(API_TEST_VALUES["period"])
    )


def event_time() -> dash.Dashboard:
    ytd = (("ytd", "true"), ("compare", "yoy"))  # the API's year to date is against a year earlier
    return board(
        "portflow-event-time",
        "portflow — event time, from the API",
        "Exact totals by event time from portflow's API: a period against a year earlier by "
        "port, mode, zone group and partner, year to date, and daily and monthly series "
        "against a year earlier over the dashboard's time range.",
        "now-1y",
        [
            period_variable(),
            choice_variable("compare", "Compare with", ["yoy", "previous"]),
            choice_variable("currency", "Currency", ["CNY", "USD"]),
            api_port_variable(),
        ],
        [
            (
                "$period against $compare ($currency)",
                [
                    totals("Trade value: $period against $compare", w=12),
                    data_through(),
                    by_dimension("port", "port"),
                    by_dimension("mode", "transport mode"),
                    by_dimension("zone_group", "zone group"),
                    by_dimension("partner", "partner (top 15)", ("top", "15")),
                ],
            ),
            (
                "Year to date: 1 January to the end of $period against a year earlier",
                [
                    totals(
                        "Trade value year to date",
                        *ytd,
                        description="1 January to the end of $period, in both years (the "
                        "customs releases' cumulative figure). " + REPORT_NOTE,
                    ),
                    report_table(
                        "Trade value year to date by port ($currency)", "port", *ytd, w=16
                    ),
                ],
            ),
            (
                "Series by event time (the dashboard's time range)",
                [
                    against_earlier(
                        "Trade value of $port by day, against 52 weeks earlier",
                        "day",
                        "52 weeks earlier",
                        "Each day's trade value at $port (GET /v1/series) beside the "
                        "same weekday 52 weeks (364 days) earlier.",
                        ("by", "port"),
                        ("filter", "port:$port"),
                    ),
                    against_earlier(
                        "Trade value by month, all ports, against a year earlier",
                        "month",
                        "a year earlier",
                        "Each month's trade value (GET /v1/series) beside the same "
                        "month a year earlier.",
                    ),
                ],
            ),
        ],
    )


# ---------------------------------------------------------------------------------------------


def dashboards() -> dict[str, dict[str, Any]]:
    """File name → dashboard JSON."""
    boards = {
        "portflow-overview.json": overview(),
        "portflow-pipeline.json": pipeline(),
        "portflow-event-time.json": event_time(),
    }
    return {name: json.loads(JSONEncoder().encode(b.build())) for name, b in boards.items()}


def render(board_json: dict[str, Any]) -> str:
    return json.dumps(board_json, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def substitute(text: str, values: dict[str, str] = TEST_VALUES) -> str:
    """Replaces known template variables ($name or ${name}) by ``values``; leaves others."""
    return VARIABLE.sub(lambda m: values.get(m[1] or m[2], m[0]), text)


def _is_api(target: dict[str, Any]) -> bool:
    uid: str | None = target.get("datasource", {}).get("uid")
    return uid == API.uid


def panel_queries() -> list[tuple[str, str, str]]:
    """(dashboard uid, panel title, PromQL with the template variables substituted)."""
    return [
        (board_json["uid"], panel["title"], substitute(target["expr"]))
        for board_json in dashboards().values()
        for panel in board_json["panels"]
        for target in panel.get("targets", [])
        if not _is_api(target)
    ]


class ApiTarget(NamedTuple):
    """One request the Infinity datasource makes to portflow's API, variables substituted."""

    board: str  # dashboard uid
    where: str  # the panel's title, or "variable NAME"
    url: str  # path and query string, relative to the API's base URL
    root_selector: str  # where the rows are in the JSON
    selectors: tuple[str, ...]  # the field each column reads from a row


def infinity_targets(board_json: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(panel title or "variable NAME", Infinity query) of every panel and variable."""
    found = [
        (panel["title"], target)
        for panel in board_json["panels"]
        for target in panel.get("targets", [])
        if _is_api(target)
    ]
    found += [
        (f"variable {v['name']}", v["query"]["infinityQuery"])
        for v in board_json.get("templating", {}).get("list", [])
        if v.get("datasource", {}).get("uid") == API.uid
    ]
    return found


def api_targets(values: dict[str, str] = API_TEST_VALUES) -> list[ApiTarget]:
    """Every Infinity request of every board, its variables replaced by ``values``."""
    targets = []
    for board_json in dashboards().values():
        for where, query in infinity_targets(board_json):
            params = [
                (p["key"], substitute(p["value"], values)) for p in query["url_options"]["params"]
            ]
            targets.append(
                ApiTarget(
                    board_json["uid"],
                    where,
                    f"{substitute(query['url'], values)}?{urlencode(params)}",
                    query["root_selector"],
                    tuple(c["selector"] for c in query["columns"]),
                )
            )
    return targets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 if a committed dashboard differs from the generated one",
    )
    args = parser.parse_args(argv)
    stale = []
    for name, board_json in dashboards().items():
        path = OUT_DIR / name
        text = render(board_json)
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote grafana/dashboards/{name}")
    for path in stale:
        print(
            f"grafana/dashboards/{path.name} differs from what grafana/build.py generates: "
            "run .venv/bin/python grafana/build.py",
            file=sys.stderr,
        )
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
