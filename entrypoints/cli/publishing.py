"""Commands that publish events: replay, simulate, and scenario (the files replay reads)."""

from __future__ import annotations

import signal
from types import FrameType
from typing import TYPE_CHECKING

import click

from entrypoints.cli.base import POSITIVE, Number, cli, load_settings, say, warn
from portflow.domain.events import MAX_BATCH_EVENTS
from portflow.errors import EXIT_REJECTIONS
from producers.scenarios import MAX_SAMPLE_EVENTS, MAX_SCALE, SCENARIOS

if TYPE_CHECKING:
    from portflow.adapters.redis import Outcomes, RedisStore
    from portflow.config import Settings
    from producers.replay import Pace, Replayer, ReplayResult

SEED_HELP = "Seed of the random choices: the same seed gives the same events."


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--speed", type=POSITIVE, help="Pace by event time, sped up X times.")
@click.option("--rate", type=POSITIVE, help="Publish N events per second.")
@click.option("--max", "as_fast", is_flag=True, help="As fast as possible (the default).")
@click.option(
    "--batch",
    type=click.IntRange(1, MAX_BATCH_EVENTS),
    default=500,
    show_default=True,
    help="Events per Kafka record; 1 sends single-event records.",
)
@click.option(
    "--wait",
    is_flag=True,
    help="Return once the worker has handled every published record, saying what it "
    "did: applied, duplicates, rejected (by file and line).",
)
@click.option(
    "--timeout",
    type=POSITIVE,
    default=600,
    show_default=True,
    help="Seconds --wait waits before failing.",
)
@click.option(
    "--fail-on-rejection",
    is_flag=True,
    help=f"With --wait: exit {EXIT_REJECTIONS} if the worker rejected any line of this replay.",
)
@click.option(
    "--progress/--no-progress", default=None, help="Progress bars (default: only on a terminal)."
)
def replay(
    files: tuple[str, ...],
    speed: float | None,
    rate: float | None,
    as_fast: bool,
    batch: int,
    wait: bool,
    timeout: float,
    fail_on_rejection: bool,
    progress: bool | None,
) -> None:
    """Publish JSON Lines event files (.jsonl or .jsonl.gz) in file order.

    Events go to their type's topic, packed into batch records; any other line is published
    unchanged to the shipments topic, where the worker rejects it to the DLQ. Files are checked
    whole first: one that is not what its name says (gzip or not, text) is refused before
    anything is published. With --wait, says what the worker did to this replay's lines once it
    has handled them all (exit 1 after --timeout). A replay stopped part-way (Ctrl-C: exit 130)
    says up to which line it published; running it again is safe.
    """
    _check_replay_options(speed, rate, as_fast, wait, fail_on_rejection)
    from producers.replay import Pace

    pace = Pace(rate=rate, speed=speed)
    settings = load_settings()
    result, store = _publish_replay(settings, list(files), batch, pace, wait, progress)
    say(result.summary())
    if store is None:  # (no --wait)
        say(
            "rejections are not known yet (the worker validates events as it handles them): "
            "`portflow dlq list` shows rejected lines, `portflow replay --wait` counts them"
        )
        return
    _wait_and_tell(settings, store, result, timeout, progress, fail_on_rejection)


def _check_replay_options(
    speed: float | None, rate: float | None, as_fast: bool, wait: bool, fail_on_rejection: bool
) -> None:
    """Usage errors: more than one pace, or --fail-on-rejection without --wait."""
    if sum(x is not None and x is not False for x in (speed, rate, as_fast or None)) > 1:
        raise click.UsageError("choose one of --speed, --rate and --max")
    if fail_on_rejection and not wait:
        raise click.UsageError(
            "--fail-on-rejection needs --wait: rejections are known only "
            "once the worker has handled the records"
        )


def _publish_replay(
    settings: Settings, files: list[str], batch: int, pace: Pace, wait: bool, progress: bool | None
) -> tuple[ReplayResult, RedisStore | None]:
    """The files checked, then published; with ``wait``, the store to wait on (opened first,
    warning if no worker runs). Ctrl-C says how far the replay got."""
    from portflow.services.progress import store_to_wait_on
    from producers.replay import ReplayInterrupted, publish
    from producers.replay_files import check_replay_files

    running: list[Replayer] = []  # the replayer, once publishing begins
    try:
        check_replay_files(files, progress)
        store: RedisStore | None = None
        if wait:
            store, no_worker = store_to_wait_on(settings)
            warn(no_worker)
        result = publish(
            settings,
            lambda replayer: _publish_files(replayer, files, running),
            batch=batch,
            pace=pace,
            progress=progress,
        )
    except KeyboardInterrupt:
        raise ReplayInterrupted(
            _interrupted_again(running[0])
            if running
            else "replay interrupted (Ctrl-C) before anything was published"
        ) from None
    return result, store


def _publish_files(replayer: Replayer, files: list[str], running: list[Replayer]) -> ReplayResult:
    """``replayer.run(files)``: the first Ctrl-C stops it after the current line, sending what
    it holds and saying what it published; a second one stops at once."""
    running.append(replayer)

    def first_interrupt(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        replayer.interrupt()

    previous = signal.signal(signal.SIGINT, first_interrupt)
    try:
        return replayer.run(files)
    finally:
        signal.signal(signal.SIGINT, previous)


def _interrupted_again(replayer: Replayer) -> str:
    from producers.replay import RERUN_IS_SAFE

    return f"replay interrupted again (Ctrl-C): {replayer.published_so_far()}; {RERUN_IS_SAFE}"


def _wait_and_tell(
    settings: Settings,
    store: RedisStore,
    result: ReplayResult,
    timeout: float,
    progress: bool | None,
    fail_on_rejection: bool,
) -> None:
    """Wait until the worker handled every record, then say what it did to them (also when
    the wait ends early)."""
    from producers.replay_records import check_no_rejections

    waited = _wait_until_handled(settings, store, result, timeout, progress)
    say(f"all records handled by the worker ({waited:.1f}s after publishing)")
    outcomes = _tell_outcomes(store, result)
    if fail_on_rejection:
        check_no_rejections(outcomes, result.sent)


def _wait_until_handled(
    settings: Settings,
    store: RedisStore,
    result: ReplayResult,
    timeout: float,
    progress: bool | None,
) -> float:
    """Seconds until the worker handled every record of ``result``; a wait that ends early
    says what it did so far."""
    from redis import RedisError

    from portflow.services.progress import (
        CannotWait,
        NotApplied,
        current_topic_ids,
        wait_until_applied,
    )
    from producers.replay import ReplayInterrupted

    try:
        return wait_until_applied(
            store, result.offsets, timeout, progress, topic_ids=current_topic_ids(settings)
        )
    except RedisError as exc:
        raise CannotWait(
            f"everything is published, but --wait cannot read Redis at "
            f"{settings.redacted_redis_url} ({exc}): `portflow status` shows "
            "what the workers did once it answers"
        ) from None
    except NotApplied:
        _tell_outcomes(store, result, "so far ")
        raise
    except KeyboardInterrupt:
        _tell_outcomes(store, result, "so far ")
        raise ReplayInterrupted(
            "stopped waiting (Ctrl-C): everything is published and the "
            "worker goes on handling it (`portflow dlq list` shows "
            "rejections)"
        ) from None


def _tell_outcomes(store: RedisStore, result: ReplayResult, so_far: str = "") -> Outcomes:
    """Says what the worker did to the replay's lines (``so_far``: before it handled all)."""
    from producers.replay_records import describe_outcomes

    outcomes = store.run_outcomes(result.run_id)
    for line in describe_outcomes(outcomes, result.sent, so_far):
        say(line)
    return outcomes


@cli.command()
@click.option("--rate", type=POSITIVE, default=200, show_default=True, help="Events per second.")
@click.option("--seed", type=int, default=7, show_default=True, help=SEED_HELP)
@click.option(
    "--events", "max_events", type=click.IntRange(min=1), help="Stop after this many events."
)
@click.option("--duration", type=POSITIVE, help="Stop after this many seconds.")
@click.option(
    "--batch",
    type=click.IntRange(1, MAX_BATCH_EVENTS),
    default=500,
    show_default=True,
    help="Largest batch record (records also go out whenever the pace waits).",
)
def simulate(
    rate: float, seed: int, max_events: int | None, duration: float | None, batch: int
) -> None:
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
    result = publish(
        settings,
        lambda replayer: replayer.run_stream(Simulator(seed).events(), max_events, duration),
        batch=batch,
        pace=Pace(rate=rate),
        progress=False,
    )
    say(result.summary())


@cli.command()
@click.argument("name", type=click.Choice(SCENARIOS))
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False),
    help="Replay file to write (.jsonl, or .jsonl.gz to compress).",
)
@click.option("--seed", type=int, default=2024, show_default=True, help=SEED_HELP)
@click.option(
    "--scale",
    type=Number(min=0, min_open=True, max=MAX_SCALE),
    default=1.0,
    show_default=True,
    help="xinjiang-2024h1: multiplies the number of events (the totals stay exact).",
)
@click.option(
    "--events",
    type=click.IntRange(1, MAX_SAMPLE_EVENTS),
    default=20000,
    show_default=True,
    help="sample: how many events.",
)
def scenario(name: str, out: str, seed: int, scale: float, events: int) -> None:
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
