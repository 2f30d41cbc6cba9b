"""``portflow``: the command line. Configuration comes from the environment (see README)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from entrypoints.embedded import BROKERS
from portflow.config import ConfigError, Settings
from portflow.domain.detection import DEFAULT_MIN_DROP_PCT
from portflow.errors import EXIT_FAILURE, PortflowError, UsageError
from producers.scenarios import SCENARIOS


def _settings() -> Settings:
    return Settings.from_env()


def _home() -> Path:
    return Path(os.environ.get("PORTFLOW_HOME", Path.home() / ".portflow")).expanduser()


def _say(message: str) -> None:
    click.echo(message, err=True)


def _warn(message: str | None) -> None:
    if message:
        click.secho(f"portflow: warning: {message}", fg="yellow", err=True)


def _fail(message: str) -> "click.exceptions.Exit":
    click.secho(f"portflow: {message}", fg="red", err=True)
    return click.exceptions.Exit(EXIT_FAILURE)


class PortflowGroup(click.Group):
    """The one place where errors become messages and exit codes: a bad setting or option is a
    usage error (exit 2), any other ``PortflowError`` says what to do (exit 1, or its own), and
    Redis or Kafka failing says which server (exit 1). Anything else is a bug: a traceback."""

    def invoke(self, ctx: click.Context):
        from kafka.errors import KafkaError
        from redis import RedisError

        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            raise click.UsageError(f"configuration error: {exc}") from None
        except UsageError as exc:
            raise click.UsageError(str(exc)) from None
        except PortflowError as exc:
            click.secho(f"portflow: {exc}", fg="red", err=True)
            raise click.exceptions.Exit(exc.exit_code) from None
        except RedisError as exc:
            url = _settings().redacted_redis_url
            raise _fail(f"cannot read Redis at {url}: {exc}") from None
        except KafkaError as exc:
            raise _fail(f"Kafka at {_settings().kafka_bootstrap}: {exc}") from None


@click.group(cls=PortflowGroup,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="portflow")
def cli() -> None:
    """Streaming monitor for port and trade throughput.

    Producers publish shipment, train and customs events to Kafka; `portflow worker` aggregates
    them exactly once into Redis; `portflow report` answers year-over-year questions.
    Configure with PORTFLOW_* environment variables (PORTFLOW_KAFKA_BOOTSTRAP,
    PORTFLOW_REDIS_URL, PORTFLOW_TZ, ...); the defaults serve the embedded stack of `portflow up`.
    """


@cli.command()
@click.option("--loglevel", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
def worker(loglevel: str) -> None:
    """Run the stream processor (a Faust worker) until SIGTERM or Ctrl-C.

    Creates missing topics with PORTFLOW_PARTITIONS partitions, then consumes the shipments,
    trains and customs topics, sends rejected events to the DLQ topic with their reason, and
    applies every event's effect to Redis exactly once. Run several for more throughput: they
    share the partitions of one consumer group (PORTFLOW_GROUP_ID).
    """
    from streams.worker import run_worker

    run_worker(_settings(), loglevel)


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--speed", type=float, help="Pace by event time, sped up X times.")
@click.option("--rate", type=float, help="Publish N events per second.")
@click.option("--max", "as_fast", is_flag=True, help="As fast as possible (the default).")
@click.option("--batch", type=int, default=500, show_default=True,
              help="Events per Kafka record (1 to 1000); 1 sends single-event records.")
@click.option("--wait", is_flag=True,
              help="Return only once the worker has handled every published record.")
@click.option("--timeout", type=float, default=600, show_default=True,
              help="Seconds --wait waits before failing.")
@click.option("--progress/--no-progress", default=None,
              help="Progress bars (default: only on a terminal).")
def replay(files, speed, rate, as_fast, batch, wait, timeout, progress) -> None:
    """Publish JSON Lines event files (.jsonl or .jsonl.gz) in file order.

    Events go to their type's topic, packed into batch records; any other line is published
    unchanged to the shipments topic, where the worker rejects it to the DLQ. With --wait, exits 0
    once every record is applied, skipped as a duplicate or rejected, or 1 after --timeout.
    """
    if sum(x is not None and x is not False for x in (speed, rate, as_fast or None)) > 1:
        raise click.UsageError("choose one of --speed, --rate and --max")
    from portflow.adapters.redis_store import RedisStore
    from portflow.services.progress import current_topic_ids, wait_until_applied
    from producers.replay import Pace, publish

    settings = _settings()
    result = publish(settings, lambda replayer: replayer.run(list(files)), batch=batch,
                     pace=Pace(rate=rate, speed=speed), progress=progress)
    _say(result.summary())
    if wait:
        store = RedisStore.from_url(settings.redis_url, settings.topic_prefix)
        waited = wait_until_applied(store, result.offsets, timeout, progress,
                                    topic_ids=current_topic_ids(settings))
        _say(f"all records handled by the worker ({waited:.1f}s after publishing)")


@cli.command()
@click.option("--rate", type=float, default=200, show_default=True, help="Events per second.")
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--events", "max_events", type=int, help="Stop after this many events.")
@click.option("--duration", type=float, help="Stop after this many seconds.")
@click.option("--batch", type=int, default=500, show_default=True,
              help="Largest batch record (records also go out whenever the pace waits).")
def simulate(rate, seed, max_events, duration, batch) -> None:
    """Publish a live, seeded stream of shipments, trains and customs declarations.

    Events carry the current time and Xinjiang-like ports, modes, zones, partners and customs
    lifecycles. Runs until Ctrl-C, --events or --duration; works against any Kafka
    (PORTFLOW_KAFKA_BOOTSTRAP), the embedded stack's or production's.
    """
    from producers.replay import Pace, publish
    from producers.simulate import Simulator

    settings = _settings()
    _say(f"simulating {rate:g} events/s to {settings.kafka_bootstrap} (Ctrl-C stops)")
    result = publish(settings, lambda replayer: replayer.run_stream(
        Simulator(seed).events(), max_events, duration), batch=batch, pace=Pace(rate=rate),
        progress=False)
    _say(result.summary())


@cli.command()
@click.option("--period", required=True,
              help="2024, 2024-H1, 2024-Q2, 2024-06 or 2024-06-15; compared with a year earlier.")
@click.option("--measure", default="value_cny", show_default=True,
              help="value_cny, weight_tonnes, shipments, trains, teu or declarations.")
@click.option("--by", "by", default="", help="One or two dimensions, comma-separated "
              "(port, mode, direction, partner, trade_mode, zone, zone_group; service; status).")
@click.option("--json", "as_json", is_flag=True, help="Print the contract's JSON object.")
@click.option("--allow-incomplete", is_flag=True,
              help="Report even though Kafka deleted events before they were applied (the JSON "
                   "then has an \"incomplete\" member naming the lost offsets).")
def report(period, measure, by, as_json, allow_incomplete) -> None:
    """Totals of a period against the same period a year earlier, by up to two dimensions."""
    from portflow.domain.report import to_json, to_table
    from portflow.services.reports import read_report
    from portflow.services.state import check_complete, open_store

    store = open_store(_settings())
    result = read_report(store, period, measure, _dimensions(by))
    _warn(check_complete(store, result, allow_incomplete, "report"))
    click.echo(to_json(result) if as_json else to_table(result))


def _dimensions(by: str) -> list[str]:
    return [d.strip() for d in by.split(",") if d.strip()]


@cli.command()
@click.option("--period", required=True,
              help="2024, 2024-H1, 2024-Q2, 2024-06 or 2024-06-15: its complete days are judged.")
@click.option("--measure", default="value_cny", show_default=True,
              help="As in report: value_cny, weight_tonnes, shipments, trains, teu or "
                   "declarations.")
@click.option("--by", "by", default="port", show_default=True,
              help="One or two dimensions, comma-separated: port, port,mode, port,service…")
@click.option("--min-drop", "min_drop", type=float, default=DEFAULT_MIN_DROP_PCT,
              show_default=True, help="Report days at least this many per cent below what "
                                      "was expected.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--allow-incomplete", is_flag=True,
              help="Judge even though Kafka deleted events before they were applied.")
def anomalies(period, measure, by, min_drop, as_json, allow_incomplete) -> None:
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

    request = AnomaliesRequest.parse(period, measure, _dimensions(by), min_drop)
    settings = _settings()
    store = open_store(settings)
    result = read_anomalies(store, settings.tz, request)
    _warn(check_complete(store, result, allow_incomplete, "anomalies"))
    click.echo(to_json(result) if as_json else anomalies_table(result))


@cli.command()
@click.option("--wait", is_flag=True,
              help="Return once the workers have re-applied at least everything applied before.")
@click.option("--timeout", type=float, default=3600, show_default=True,
              help="Seconds --wait may take before failing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def rebuild(wait, timeout, yes) -> None:
    """Recompute every aggregate from Kafka: drop portflow's state in Redis (aggregates, marks,
    dedupe ids) so that running workers re-read their topics from the start.

    Reports undercount until the workers have caught up again (`--wait` shows the progress).
    Kafka must still hold the events: offsets already deleted by retention are reported as lost.
    """
    from portflow.services.state import rebuild as rebuild_state

    def confirm(question: str) -> None:
        if not yes:
            click.confirm(question, abort=True)

    seconds = rebuild_state(_settings(), confirm, _say, timeout if wait else None)
    if seconds is not None:
        _say(f"rebuilt in {seconds:.1f}s")


@cli.command()
@click.option("--out", "tsdb_dir", required=True, type=click.Path(file_okay=False),
              help="Directory for the TSDB blocks (then move them into Prometheus' data dir).")
@click.option("--from", "first", help="First local day, YYYY-MM-DD (default: 1 January of "
              "the year before the newest event).")
@click.option("--to", "last", help="Last local day (default: the newest event's day).")
@click.option("--openmetrics", type=click.Path(dir_okay=False),
              help="Also keep the OpenMetrics text here.")
@click.option("--promtool", default="promtool", show_default=True)
def backfill(tsdb_dir, first, last, openmetrics, promtool) -> None:
    """Write the aggregates as Prometheus history (TSDB blocks), by event time.

    Counters portflow_trade_value_yuan_total, portflow_cargo_weight_tonnes_total,
    portflow_shipments_total, portflow_trains_total, portflow_train_teu_total and
    portflow_customs_declarations_total with source="backfill", sampled every 6 h, so Grafana can
    chart this year against last year (offset 52w) right after a replay. Start Prometheus with
    --storage.tsdb.retention.time=10y or it drops old blocks at once.
    """
    from portflow.services.backfill import backfill as write_backfill
    from portflow.services.state import open_store

    settings = _settings()
    done = write_backfill(open_store(settings), settings.tz, Path(tsdb_dir), first, last,
                          Path(openmetrics) if openmetrics else None, promtool)
    _say(done.summary(tsdb_dir))


@cli.group()
def dlq() -> None:
    """Inspect and re-drive the dead-letter topic (PORTFLOW_TOPIC_PREFIX + dlq)."""


@dlq.command("list")
@click.option("--code", help="Only this rejection code (e.g. bad_number, invalid_field).")
@click.option("--limit", type=int, help="At most this many.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per dead letter.")
def dlq_list(code, limit, as_json) -> None:
    """List dead letters: where each came from, why it was rejected, and its start."""
    import json

    from producers.dead_letters import select_dead_letters

    letters = select_dead_letters(_settings(), code, limit)
    for letter in letters:
        click.echo(json.dumps(letter.as_json()) if as_json else letter.summary())
    _say(f"{len(letters):,} dead letter(s)")


@dlq.command("replay")
@click.option("--code", help="Only this rejection code.")
@click.option("--limit", type=int, help="At most this many.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def dlq_replay(code, limit, yes) -> None:
    """Send dead letters back to their source topics, to be validated again.

    For events rejected under an old rule or a since-fixed bug. An event that is still invalid
    lands on the dead-letter topic again; one that was applied meanwhile is a duplicate.
    """
    from producers.dead_letters import redrive_letters, select_dead_letters

    settings = _settings()
    letters = select_dead_letters(settings, code, limit)
    if not letters:
        _say("no dead letters to replay")
        return
    if not yes:
        click.confirm(f"re-drive {len(letters):,} dead letter(s)?", abort=True, err=True)
    sent = redrive_letters(settings, letters)
    _say(", ".join(f"{n:,} to {topic}" for topic, n in sent.items()))


@cli.command()
@click.argument("name", type=click.Choice(SCENARIOS))
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Replay file to write (.jsonl, or .jsonl.gz to compress).")
@click.option("--seed", type=int, default=2024, show_default=True)
@click.option("--scale", type=float, default=1.0, show_default=True,
              help="xinjiang-2024h1: multiplies the number of events (totals stay exact).")
@click.option("--events", type=int, default=20000, show_default=True, help="sample: events.")
def scenario(name, out, seed, scale, events) -> None:
    """Write the replay file of a built-in scenario (the same seed gives the same bytes).

    \b
    xinjiang-2024h1: H1 2023 and H1 2024 shipments, trains and customs declarations whose totals
        reproduce every figure of the seed article (about 700k events at --scale 1).
    sample: two years of varied events over eight ports, with time-zone edges, re-sent events
        and a few invalid lines.
    disruption-drill: 2023 and 2024 of daily shipments and trains at four ports (weekdays,
        seasons, growth, the Spring Festival) with five known disruptions, to drill drop
        detection (about 100k events); the anomalies a detector should report are written
        beside it, to <out without .jsonl/.jsonl.gz>.expected.json.
    """
    from producers.scenarios import write_scenario

    for line in write_scenario(name, out, seed, scale, events):
        _say(line)


@cli.command()
@click.argument("name", type=click.Choice(SCENARIOS[:1]))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per figure.")
def verify(name, as_json) -> None:
    """Check the aggregates in Redis against a scenario's published figures.

    Prints each published figure beside the one portflow computes. Exits 1 if any figure
    differs; a published share that disagrees with the published totals is flagged, not failed.
    """
    from portflow.domain.reconcile import checks_table
    from portflow.domain.report import to_json
    from portflow.services.reports import read_report
    from portflow.services.state import open_store
    from producers.scenarios.xinjiang import acceptance_checks

    store = open_store(_settings())
    checks = acceptance_checks(lambda p, m, b: read_report(store, p, m, b))
    click.echo("\n".join(to_json(c.as_json()) for c in checks) if as_json
               else checks_table(checks))
    failed = [c for c in checks if c.failed]
    if failed:
        raise _fail(f"{len(failed)} figure(s) differ from the published ones")


BROKER_OPTION = click.option(
    "--broker", type=click.Choice(BROKERS), default=BROKERS[0], show_default=True,
    help="The embedded Kafka broker: tansu (in memory, no Java) or Apache Kafka 3.9 (needs Java "
         "17 and its jars: bash scripts/fetch-kafka.sh).")


@cli.command()
@BROKER_OPTION
def up(broker) -> None:
    """Run the embedded stack here: a Kafka broker, redis-server and one worker; Ctrl-C stops it.

    Listens on PORTFLOW_KAFKA_BOOTSTRAP and PORTFLOW_REDIS_URL (127.0.0.1:19092 and :16379 by
    default). Nothing is kept from one run to the next: tansu is in memory, Apache Kafka's log is
    made anew, and so is Redis.
    """
    from entrypoints.session import serve

    serve(_settings(), _home() / "run", broker, _say)


@cli.command()
@click.option("--once", is_flag=True, help="Print the final view and exit (for scripts).")
@click.option("--scale", type=float, default=0.2, show_default=True,
              help="Events of the scenario replayed (1 = about 700k); the totals are the same.")
@click.option("--seed", type=int, default=2024, show_default=True)
@BROKER_OPTION
def demo(once, scale, seed, broker) -> None:
    """The Xinjiang H1 2024 trade scenario, live: start the embedded stack, replay, watch.

    Generates the xinjiang-2024h1 scenario, replays it with a progress bar, then shows H1 2024
    against H1 2023 by port, mode, zone group, partner, trade mode and train service, with YoY,
    shares, the article's published figures checked against portflow's, and the pipeline's rate
    and lag. Ctrl-C stops the view and the stack.
    """
    from entrypoints.session import demo as run_demo

    run_demo(_settings(), _home() / "run", broker, _say, once, scale, seed)


def main() -> None:
    try:
        cli.main(prog_name="portflow", standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
