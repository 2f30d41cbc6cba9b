"""Commands that read the state in Redis: report, anomalies, verify, backfill and status."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import click

from entrypoints.cli.base import cli, dimensions, fail, load_settings, say, warn
from portflow.domain.detection import DEFAULT_MIN_DROP_PCT
from producers.scenarios import SCENARIOS


@cli.command()
@click.option("--period", required=True, help="2024, 2024-H1, 2024-Q2, 2024-06 or 2024-06-15.")
@click.option(
    "--measure",
    default="value_cny",
    show_default=True,
    help="value_cny, weight_tonnes, shipments, trains, teu or declarations.",
)
@click.option(
    "--by",
    "by",
    default="",
    help="One or two dimensions, comma-separated "
    "(port, mode, direction, partner, trade_mode, zone, zone_group; service; status).",
)
@click.option(
    "--compare",
    type=click.Choice(["yoy", "previous"]),
    default="yoy",
    show_default=True,
    help="yoy: the same days a year earlier; previous: the period "
    "just before (month on month, quarter on quarter …).",
)
@click.option(
    "--ytd",
    is_flag=True,
    help="From 1 January to the end of the period, against the same days a year earlier.",
)
@click.option(
    "--filter",
    "filters",
    multiple=True,
    metavar="DIM:VALUE",
    help="Only events with this dimension value (repeatable; values of one "
    "dimension are alternatives), e.g. --filter mode:rail.",
)
@click.option(
    "--currency",
    type=click.Choice(["CNY", "USD"], case_sensitive=False),
    help="Say value_cny in yuan (default) or US dollars, each month at its rate "
    "(`portflow rates load`).",
)
@click.option(
    "--usd-rate",
    metavar="CNY_PER_USD",
    help="Dollars at this one rate instead of the months' rates (implies USD).",
)
@click.option(
    "--top", type=click.IntRange(min=1), help="Only the N largest rows, and one row for the rest."
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the JSON object (the contract's, and what GET /v1/reports returns).",
)
@click.option(
    "--allow-incomplete",
    is_flag=True,
    help="Report even though Kafka deleted events before they were applied (the JSON "
    'then has an "incomplete" member naming the lost offsets).',
)
def report(
    period: str,
    measure: str,
    by: str,
    compare: str,
    ytd: bool,
    filters: tuple[str, ...],
    currency: str | None,
    usd_rate: str | None,
    top: int | None,
    as_json: bool,
    allow_incomplete: bool,
) -> None:
    """Totals of a period by up to two dimensions, against the same period a year earlier (or
    the period before), with shares, growth and contributions; in yuan or dollars."""
    from portflow.domain.queries import ReportRequest
    from portflow.domain.report import to_json, to_table
    from portflow.services.reports import Reports
    from portflow.services.state import check_complete, open_store

    request = ReportRequest.parse(
        period, measure, dimensions(by), compare, ytd, filters, currency, usd_rate, top
    )
    settings = load_settings()
    store = open_store(settings)
    result = Reports(store, settings.tz).report(request)
    warn(check_complete(store, result, allow_incomplete, "report"))
    click.echo(to_json(result) if as_json else to_table(result))


@cli.command()
@click.option(
    "--period",
    required=True,
    help="2024, 2024-H1, 2024-Q2, 2024-06 or 2024-06-15: its complete days are judged.",
)
@click.option(
    "--measure",
    default="value_cny",
    show_default=True,
    help="As in report: value_cny, weight_tonnes, shipments, trains, teu or declarations.",
)
@click.option(
    "--by",
    "by",
    default="port",
    show_default=True,
    help="One or two dimensions, comma-separated: port, port,mode, port,service…",
)
@click.option(
    "--min-drop",
    "min_drop",
    type=float,
    default=DEFAULT_MIN_DROP_PCT,
    show_default=True,
    help="Report days at least this many per cent below what was expected.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option(
    "--allow-incomplete",
    is_flag=True,
    help="Judge even though Kafka deleted events before they were applied.",
)
def anomalies(
    period: str, measure: str, by: str, min_drop: float, as_json: bool, allow_incomplete: bool
) -> None:
    """Days whose throughput dropped, by event time, against what the calendar led to expect.

    Each complete day (one the newest event is past) and key is compared with the same weekday
    of the trailing weeks and the same weeks a year earlier (the lower of the two), or in the
    Spring Festival's weeks with the same festival day a year earlier; a drop counts when it is
    at least --min-drop per cent and stands out of the key's day-to-day noise. See the README,
    "Throughput drops".
    """
    from portflow.domain.report import to_json
    from portflow.services.anomalies import AnomaliesRequest, anomalies_table, read_anomalies
    from portflow.services.state import check_complete, open_store

    request = AnomaliesRequest.parse(period, measure, dimensions(by), min_drop)
    settings = load_settings()
    store = open_store(settings)
    result = read_anomalies(store, settings.tz, request, settings.max_event_ahead_s)
    warn(check_complete(store, result, allow_incomplete, "anomalies"))
    click.echo(to_json(result) if as_json else anomalies_table(result))


@cli.command()
@click.argument("name", type=click.Choice(SCENARIOS[:1]))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per figure.")
def verify(name: str, as_json: bool) -> None:
    """Check the aggregates in Redis against a scenario's published figures.

    Prints each published figure beside the one portflow computes, the dollar figures at the
    USD rates loaded (`portflow rates load`: the scenario's file is written beside it). Exits 1
    if any figure differs or cannot be computed; a published share that disagrees with the
    published totals is flagged, not failed.
    Meant for the stack the scenario was replayed into (as `portflow demo` does): on other
    data, your own included, the figures differ by design; use `portflow report` there.
    """
    from portflow.domain.reconcile import checks_table
    from portflow.domain.report import to_json
    from portflow.services.reports import Reports
    from portflow.services.state import open_store
    from producers.scenarios.xinjiang import checks_against

    settings = load_settings()
    checks = checks_against(Reports(open_store(settings), settings.tz))
    click.echo("\n".join(to_json(c.as_json()) for c in checks) if as_json else checks_table(checks))
    failed = [c for c in checks if c.failed]
    if failed:
        raise fail(f"{len(failed)} figure(s) differ from the published ones")


def _day(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A --from/--to day, checked before anything is read."""
    if value is not None:
        try:
            date.fromisoformat(value)
        except ValueError:
            raise click.BadParameter(f"{value!r} is not a day like 2024-06-15") from None
    return value


@cli.command()
@click.option(
    "--out",
    "tsdb_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Directory for the TSDB blocks (then move them into Prometheus' data dir).",
)
@click.option(
    "--from",
    "first",
    callback=_day,
    metavar="DAY",
    help="First local day, YYYY-MM-DD (default: 1 January of the year before the newest event).",
)
@click.option(
    "--to",
    "last",
    callback=_day,
    metavar="DAY",
    help="Last local day, YYYY-MM-DD (default: the newest event's day).",
)
@click.option(
    "--openmetrics", type=click.Path(dir_okay=False), help="Also keep the OpenMetrics text here."
)
@click.option(
    "--promtool",
    default="promtool",
    show_default=True,
    help="The promtool program (from Prometheus) that turns the text into blocks.",
)
def backfill(
    tsdb_dir: str, first: str | None, last: str | None, openmetrics: str | None, promtool: str
) -> None:
    """Write the aggregates as Prometheus history (TSDB blocks), by event time.

    Counters portflow_trade_value_yuan_total, portflow_cargo_weight_tonnes_total,
    portflow_shipments_total, portflow_trains_total, portflow_train_teu_total and
    portflow_customs_declarations_total with source="backfill", one sample a day (at the local
    midnight that ends each day with events), so Grafana can chart this year against last year
    (offset 52w) right after a replay. Start Prometheus with --storage.tsdb.retention.time=10y
    or it drops old blocks at once.
    """
    from portflow.services.backfill import backfill as write_backfill
    from portflow.services.state import open_store

    if first and last and first > last:
        raise click.UsageError(f"--from {first} is after --to {last}")
    settings = load_settings()
    done = write_backfill(
        open_store(settings),
        settings.tz,
        Path(tsdb_dir),
        first,
        last,
        settings.max_event_ahead_s,
        Path(openmetrics) if openmetrics else None,
        promtool,
    )
    say(done.summary(tsdb_dir))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def status(as_json: bool) -> None:
    """What portflow's state in Redis holds for PORTFLOW_TOPIC_PREFIX, and what the workers did.

    The state's epoch and time zone, the newest event applied, each partition's last applied
    offset, the live workers, offsets Kafka deleted before they were applied, and the events
    applied, skipped as duplicates or rejected (by code, the event-time guard's named) since the
    state began. Reads Redis only; exits 1 if the prefix has no state in that database.
    """
    from portflow.domain.report import to_json
    from portflow.services.state import open_state
    from portflow.services.status import read_status, status_text

    settings = load_settings()
    result = read_status(open_state(settings), settings)
    click.echo(to_json(result) if as_json else status_text(result))
