"""``portflow``: the command line. Configuration comes from the environment (see README)."""

from __future__ import annotations

import os
import signal
import sys
import time
from contextlib import closing
from pathlib import Path

import click

from portflow.config import ConfigError, Settings
from portflow.domain.detection import DEFAULT_MIN_DROP_PCT
from portflow.domain.partitions import partition_name, split_partition_name
from entrypoints.embedded import BROKERS
from portflow.errors import EXIT_FAILURE, PortflowError, UsageError


def _settings() -> Settings:
    return Settings.from_env()


def _home() -> Path:
    return Path(os.environ.get("PORTFLOW_HOME", Path.home() / ".portflow")).expanduser()


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
    settings = _settings()
    from portflow.adapters.kafka import ensure_topics
    from portflow.adapters.redis_store import RedisStore
    from producers.replay import Pace, Replayer, make_producer, wait_until_applied

    try:
        pace = Pace(rate=rate, speed=speed)
        replayer = Replayer(settings, None, batch=batch, pace=pace, progress=progress)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    ensure_topics(settings)
    with closing(make_producer(settings)) as replayer.producer:
        result = replayer.run(list(files))
    click.echo(
        f"published {result.events:,} events in {result.records:,} records "
        f"({result.other_lines:,} other lines) in {result.seconds:.1f}s "
        f"({result.events_per_s:,.0f} events/s)", err=True,
    )
    if wait:
        store = RedisStore.from_url(settings.redis_url, settings.topic_prefix)
        waited = wait_until_applied(store, result.offsets, timeout, progress,
                                    topic_ids=_topic_ids(settings))
        click.echo(f"all records handled by the worker ({waited:.1f}s after publishing)",
                   err=True)


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
    settings = _settings()
    from portflow.adapters.kafka import ensure_topics
    from producers.replay import Pace, Replayer, make_producer
    from producers.simulate import Simulator

    try:
        replayer = Replayer(settings, None, batch=batch, pace=Pace(rate=rate), progress=False)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    ensure_topics(settings)
    with closing(make_producer(settings)) as replayer.producer:
        click.echo(f"simulating {rate:g} events/s to {settings.kafka_bootstrap} "
                   "(Ctrl-C stops)", err=True)
        result = replayer.run_stream(Simulator(seed).events(), max_events, duration)
    click.echo(f"published {result.events:,} events in {result.records:,} records in "
               f"{result.seconds:.1f}s ({result.events_per_s:,.0f} events/s)", err=True)


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

    store = _store(_settings())
    result = read_report(store, period, measure, _dimensions(by))
    _mark_incomplete(store, result, allow_incomplete, "report")
    click.echo(to_json(result) if as_json else to_table(result))


def _dimensions(by: str) -> list[str]:
    return [d.strip() for d in by.split(",") if d.strip()]


def _mark_incomplete(store, result: dict, allow_incomplete: bool, command: str) -> None:
    """Fail (or, allowed, warn and say so in ``result``) where Kafka deleted records before
    they were applied: totals, and what is judged from them, would be short."""
    lost = store.lost_offsets()
    if not lost:
        return
    ranges = "; ".join(f"{name} offsets " + ", ".join(f"{a}-{b}" for a, b in spans)
                       for name, spans in sorted(lost.items()))
    message = (f"the totals are incomplete: Kafka deleted records before they were applied "
               f"(retention): {ranges}")
    if not allow_incomplete:
        raise _fail(f"{message}. Re-publish those events from their source (portflow replay; "
                    f"duplicates are counted once), then {command} with --allow-incomplete.")
    click.secho(f"portflow: warning: {message}", fg="yellow", err=True)
    result["incomplete"] = {"lost_offsets": lost}


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
    from portflow.services.anomalies import AnomaliesRequest, anomalies_table, read_anomalies
    from portflow.domain.report import to_json

    request = AnomaliesRequest.parse(period, measure, _dimensions(by), min_drop)
    settings = _settings()
    store = _store(settings)
    result = read_anomalies(store, settings.tz, request)
    _mark_incomplete(store, result, allow_incomplete, "anomalies")
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
    settings = _settings()
    from portflow.adapters.redis_store import RedisStore
    from producers.replay import wait_until_applied

    store = RedisStore.from_url(settings.redis_url, settings.topic_prefix)  # any time zone
    workers = store.workers()
    before = store.high_water_marks()
    if wait and not workers:
        raise _fail("no live worker: start `portflow worker` first (the workers do the re-reading)")
    if not yes:
        click.confirm(f"drop portflow's state for topic prefix {settings.topic_prefix!r} in "
                      f"{settings.redacted_redis_url} and recompute it from Kafka?", abort=True)
    deleted = store.drop_state()
    click.echo(f"dropped {deleted:,} keys; {len(workers)} live worker(s) re-read from the start",
               err=True)
    if not wait:
        return
    applied_before = {split_partition_name(name): (0, mark) for name, mark in before.items()
                      if mark >= 0}
    seconds = wait_until_applied(store, applied_before, timeout)
    click.echo(f"rebuilt in {seconds:.1f}s", err=True)


def _topic_ids(settings: Settings) -> dict[str, str]:
    """The event topics' Kafka ids now (empty where the broker has none to give)."""
    from portflow.adapters.kafka import TopicIds

    ids = TopicIds(settings)
    try:
        return {topic: topic_id for topic, (topic_id, _) in ids().items()}
    finally:
        ids.close()


def _store(settings: Settings):
    """The Redis store, refusing data aggregated in another time zone than PORTFLOW_TZ."""
    from portflow.adapters.redis_store import RedisStore

    store = RedisStore.from_url(settings.redis_url, settings.topic_prefix)
    stored_tz = store.time_zone()
    if stored_tz and stored_tz != settings.tz_name:
        raise _fail(f"the aggregates were built with PORTFLOW_TZ={stored_tz}, "
                    f"not {settings.tz_name}; set PORTFLOW_TZ={stored_tz}")
    return store


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
    import tempfile
    from datetime import date, datetime

    from portflow.services.backfill import create_blocks, write_openmetrics

    settings = _settings()
    store = _store(settings)
    latest = store.latest_event_time()
    if latest is None and not (first and last):
        raise _fail("nothing to backfill: no event has been applied yet")
    newest = datetime.fromtimestamp(latest, settings.tz).date() if latest else None
    try:
        last_day = date.fromisoformat(last) if last else newest
        first_day = date.fromisoformat(first) if first else date(last_day.year - 1, 1, 1)
    except ValueError as exc:
        raise click.UsageError(f"--from/--to: {exc}") from None
    with tempfile.TemporaryDirectory(prefix="portflow-backfill-") as scratch:
        text_path = Path(openmetrics) if openmetrics else Path(scratch) / "backfill.om.txt"
        with open(text_path, "w") as out:
            result = write_openmetrics(store, settings.tz, first_day, last_day, out)
        create_blocks(text_path, Path(tsdb_dir), promtool)
    click.echo(f"backfilled {result.series:,} series ({result.samples:,} samples) over "
               f"{result.days} days, {first_day} to {last_day}, into {tsdb_dir}", err=True)


@cli.group()
def dlq() -> None:
    """Inspect and re-drive the dead-letter topic (PORTFLOW_TOPIC_PREFIX + dlq)."""


def _dead_letters(settings: Settings, code: str | None, limit: int | None):
    from itertools import islice

    from producers.dead_letters import read_dead_letters

    letters = (d for d in read_dead_letters(settings) if not code or d.code == code)
    return list(islice(letters, limit)) if limit else list(letters)


@dlq.command("list")
@click.option("--code", help="Only this rejection code (e.g. bad_number, invalid_field).")
@click.option("--limit", type=int, help="At most this many.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per dead letter.")
def dlq_list(code, limit, as_json) -> None:
    """List dead letters: where each came from, why it was rejected, and its start."""
    import json as jsonlib

    letters = _dead_letters(_settings(), code, limit)
    for d in letters:
        if as_json:
            click.echo(jsonlib.dumps({
                "partition": d.partition, "offset": d.offset, "code": d.code,
                "reason": d.reason, "source_topic": d.source_topic,
                "source_partition": d.source_partition, "source_offset": d.source_offset,
                "batch_index": d.batch_index, "value": d.value.decode(errors="replace")}))
        else:
            where = f"{d.source_topic}:{d.source_partition}@{d.source_offset}"
            if d.batch_index is not None:
                where += f"[{d.batch_index}]"
            preview = d.value[:80].decode(errors="replace")
            click.echo(f"{d.partition}@{d.offset}  {where}  {d.code}: {d.reason}\n    {preview}")
    click.echo(f"{len(letters):,} dead letter(s)", err=True)


@dlq.command("replay")
@click.option("--code", help="Only this rejection code.")
@click.option("--limit", type=int, help="At most this many.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def dlq_replay(code, limit, yes) -> None:
    """Send dead letters back to their source topics, to be validated again.

    For events rejected under an old rule or a since-fixed bug. An event that is still invalid
    lands on the dead-letter topic again; one that was applied meanwhile is a duplicate.
    """
    from producers.dead_letters import redrive
    from producers.replay import make_producer

    settings = _settings()
    letters = _dead_letters(settings, code, limit)
    if not letters:
        click.echo("no dead letters to replay", err=True)
        return
    if not yes:
        click.confirm(f"re-drive {len(letters):,} dead letter(s)?", abort=True, err=True)
    with closing(make_producer(settings)) as producer:
        sent = redrive(settings, letters, producer)
    click.echo(", ".join(f"{n:,} to {topic}" for topic, n in sent.items()), err=True)


SCENARIOS = ("xinjiang-2024h1", "sample", "disruption-drill")


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
    if name == "sample":
        from producers.sample import generate_sample

        generate_sample(out, events=events, seed=seed)
    elif name == "disruption-drill":
        from producers.scenarios.disruption_drill import expected_path, generate_drill

        lines = generate_drill(out, seed=seed)
        click.echo(f"{lines:,} events", err=True)
        click.echo(f"wrote {expected_path(out)}", err=True)
    else:
        from producers.scenarios.xinjiang import generate_xinjiang

        try:
            lines = generate_xinjiang(out, seed=seed, scale=scale)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
        click.echo(f"{lines:,} events", err=True)
    click.echo(f"wrote {out}", err=True)


@cli.command()
@click.argument("name", type=click.Choice(SCENARIOS[:1]))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per figure.")
def verify(name, as_json) -> None:
    """Check the aggregates in Redis against a scenario's published figures.

    Prints each published figure beside the one portflow computes. Exits 1 if any figure
    differs; a published share that disagrees with the published totals is flagged, not failed.
    """
    from portflow.services.reports import read_report
    from producers.scenarios.xinjiang import acceptance_checks

    store = _store(_settings())
    checks = acceptance_checks(lambda p, m, b: read_report(store, p, m, b))
    failed = [c for c in checks if not c.matches and not c.note.startswith("published share")]
    if as_json:
        from portflow.domain.report import to_json

        for c in checks:
            click.echo(to_json({"figure": c.figure, "published": c.published,
                                "computed": c.computed, "matches": c.matches, "note": c.note}))
    else:
        width = max(len(c.figure) for c in checks)
        for c in checks:
            mark = "ok" if c.matches else ("FLAG" if c.note.startswith("published share") else "DIFF")
            click.echo(f"{mark:4}  {c.figure:<{width}}  published {c.published}  "
                       f"portflow {c.computed}" + (f"\n      {c.note}" if c.note else ""))
    if failed:
        raise _fail(f"{len(failed)} figure(s) differ from the published ones")


def _run_stack(settings: Settings, broker: str):
    from entrypoints.embedded import BROKER_NAMES, EmbeddedStack

    stack = EmbeddedStack(settings, _home() / "run", broker)
    click.echo(f"starting the embedded stack ({BROKER_NAMES[broker]}, redis-server, worker)…",
               err=True)
    stack.start()
    signal.signal(signal.SIGTERM, _interrupt)
    return stack


def _interrupt(signum, frame) -> None:
    """SIGTERM stops the stack the same way Ctrl-C does."""
    raise KeyboardInterrupt


def _serve_until_interrupted(stack, banner: str) -> None:
    """Print ``banner``, then watch the children until Ctrl-C or SIGTERM; stop the stack on
    every path. (The banner is printed inside: a signal right after it still stops cleanly.)"""
    try:
        click.echo(banner, err=True)
        while True:
            failed = stack.failed_child()
            if failed:
                raise _fail(f"{failed.name} stopped unexpectedly:\n{failed.tail()}")
            time.sleep(0.5)
    except KeyboardInterrupt:
        click.echo("\nstopping…", err=True)
    finally:
        stack.stop()


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
    stack = _run_stack(_settings(), broker)
    _serve_until_interrupted(stack,
                             "portflow is up:\n" + stack.describe() + "\nCtrl-C stops everything.")


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
    settings = _settings()
    stack = _run_stack(settings, broker)
    try:
        from entrypoints.dashboard import MetricsRate, collect, render
        from portflow.services.reports import read_report
        from producers.replay import Replayer, make_producer, wait_until_applied
        from producers.scenarios.xinjiang import acceptance_checks, generate_xinjiang
        from rich.console import Console
        from rich.live import Live

        path = str(_home() / "run" / "xinjiang-2024h1.jsonl")
        click.echo(f"generating the xinjiang-2024h1 scenario (scale {scale:g})…", err=True)
        events = generate_xinjiang(path, seed=seed, scale=scale)
        click.echo(f"replaying {events:,} events of H1 2023 and H1 2024…", err=True)
        with closing(make_producer(settings)) as producer:
            result = Replayer(settings, producer).run([path])
        store = _store(settings)
        waited = wait_until_applied(store, result.offsets, 600)
        applied_in = result.seconds + waited
        replay_note = (f"the replay of {result.events:,} events was applied in {applied_in:.1f}s "
                       f"({result.events / applied_in:,.0f} events/s)")

        rate = MetricsRate(f"{settings.metrics_addr[0]}:{settings.metrics_addr[1]}")
        targets = {partition_name(t, p): last for (t, p), (_, last) in result.offsets.items()}

        def snapshot():
            report = lambda p, m, b: read_report(store, p, m, b)  # noqa: E731
            snap = collect(report, "2024-H1", lambda: acceptance_checks(report))
            rate.read(snap.pipeline)
            snap.pipeline.note = replay_note
            marks = store.high_water_marks_of(sorted(targets))
            snap.pipeline.lag_records = sum(max(0, targets[n] - marks[n]) for n in targets)
            return snap

        console = Console()
        if once:
            console.print(render(snapshot()))
            stack.stop()
            return
        with Live(render(snapshot()), console=console, refresh_per_second=1) as live:
            click.echo("Ctrl-C stops the view and the stack; `portflow report` works meanwhile.",
                       err=True)
            while True:
                time.sleep(2)
                failed = stack.failed_child()
                if failed:
                    raise _fail(f"{failed.name} stopped unexpectedly:\n{failed.tail()}")
                live.update(render(snapshot()))
    except KeyboardInterrupt:
        click.echo("\nstopping…", err=True)
    finally:
        stack.stop()


def main() -> None:
    try:
        cli.main(prog_name="portflow", standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
