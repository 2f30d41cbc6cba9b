"""Commands that publish events: replay, simulate, and scenario (the files replay reads)."""

from __future__ import annotations

import click

from entrypoints.cli.base import POSITIVE, Number, cli, load_settings, say
from portflow.domain.events import MAX_BATCH_EVENTS
from producers.scenarios import MAX_SAMPLE_EVENTS, MAX_SCALE, SCENARIOS

SEED_HELP = "Seed of the random choices: the same seed gives the same events."


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
    from portflow.adapters.redis import RedisStore
    from portflow.services.progress import current_topic_ids, wait_until_applied
    from producers.replay import Pace, publish

    settings = load_settings()
    result = publish(settings, lambda replayer: replayer.run(list(files)), batch=batch,
                     pace=Pace(rate=rate, speed=speed), progress=progress)
    say(result.summary())
    if wait:
        store = RedisStore.from_url(settings.redis_url, settings.topic_prefix)
        waited = wait_until_applied(store, result.offsets, timeout, progress,
                                    topic_ids=current_topic_ids(settings))
        say(f"all records handled by the worker ({waited:.1f}s after publishing)")


@cli.command()
@click.option("--rate", type=POSITIVE, default=200, show_default=True, help="Events per second.")
@click.option("--seed", type=int, default=7, show_default=True, help=SEED_HELP)
@click.option("--events", "max_events", type=click.IntRange(min=1),
              help="Stop after this many events.")
@click.option("--duration", type=POSITIVE, help="Stop after this many seconds.")
@click.option("--batch", type=click.IntRange(1, MAX_BATCH_EVENTS), default=500,
              show_default=True,
              help="Largest batch record (records also go out whenever the pace waits).")
def simulate(rate, seed, max_events, duration, batch) -> None:
    """Publish a live, seeded stream of made-up shipments, trains and customs declarations.

    For demos, load and alert drills: events carry the current time and Xinjiang-like ports,
    modes, zones, partners and customs lifecycles, and add to the totals like real ones, so
    publish them only to a test stack (the embedded stack of `portflow up`, by default), never
    to a Kafka whose aggregates people rely on. Runs until Ctrl-C, --events or --duration.
    """
    from producers.replay import Pace, publish
    from producers.simulate import Simulator

    settings = load_settings()
    say(f"simulating {rate:g} events/s to {settings.kafka_bootstrap} (Ctrl-C stops)")
    result = publish(settings, lambda replayer: replayer.run_stream(
        Simulator(seed).events(), max_events, duration), batch=batch, pace=Pace(rate=rate),
        progress=False)
    say(result.summary())


@cli.command()
@click.argument("name", type=click.Choice(SCENARIOS))
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Replay file to write (.jsonl, or .jsonl.gz to compress).")
@click.option("--seed", type=int, default=2024, show_default=True, help=SEED_HELP)
@click.option("--scale", type=Number(min=0, min_open=True, max=MAX_SCALE), default=1.0,
              show_default=True,
              help="xinjiang-2024h1: multiplies the number of events (the totals stay exact).")
@click.option("--events", type=click.IntRange(1, MAX_SAMPLE_EVENTS), default=20000,
              show_default=True, help="sample: how many events.")
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
        say(line)
