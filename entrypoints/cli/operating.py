"""Commands that run or repair the pipeline: worker, rebuild, dlq, up and demo."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from entrypoints.cli.base import (
    POSITIVE,
    Number,
    cli,
    home,
    load_settings,
    open_prefix_store,
    say,
    warn,
)
from entrypoints.embedded import BROKERS
from portflow.domain.events import REJECTION_CODES
from producers.scenarios import MAX_SCALE

if TYPE_CHECKING:
    from entrypoints.embedded import DataDir


@cli.command()
@click.option(
    "--loglevel",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
def worker(loglevel: str) -> None:
    """Run the stream processor (a Faust worker) until SIGTERM or Ctrl-C.

    Creates missing topics with PORTFLOW_PARTITIONS partitions, then consumes the shipments,
    trains and customs topics, sends rejected events to the DLQ topic with their reason, and
    applies every event's effect to Redis exactly once. Run several for more throughput: they
    share the partitions of one consumer group (PORTFLOW_GROUP_ID).
    """
    from streams.worker import run_worker

    run_worker(load_settings(), loglevel)


@cli.command()
@click.option(
    "--wait",
    is_flag=True,
    help="Return once the workers have re-applied at least everything applied before.",
)
@click.option(
    "--timeout",
    type=POSITIVE,
    default=3600,
    show_default=True,
    help="Seconds --wait may take before failing.",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def rebuild(wait: bool, timeout: float, yes: bool) -> None:
    """Recompute every aggregate from Kafka: drop portflow's state in Redis (aggregates, marks,
    dedupe ids) so that running workers re-read their topics from the start.

    Reports undercount until the workers have caught up again (`--wait` shows the progress).
    Kafka must still hold the events: offsets already deleted by retention are reported as lost.
    """
    from portflow.services.state import rebuild as rebuild_state

    def confirm(question: str) -> None:
        if not yes:
            click.confirm(question, abort=True)

    seconds = rebuild_state(load_settings(), confirm, say, timeout if wait else None)
    if seconds is not None:
        say(f"rebuilt in {seconds:.1f}s")


@cli.group()
def dlq() -> None:
    """Inspect and re-drive the dead-letter topic (PORTFLOW_TOPIC_PREFIX + dlq).

    The topic holds one letter per rejection; these commands show one entry per rejected event,
    with its history: its letters (the same event may be rejected again after a re-drive, a
    rebuild or a worker's crash) and its re-drives, kept in Redis.
    """


CODE_OPTION = click.option(
    "--code",
    type=click.Choice(REJECTION_CODES),
    metavar="CODE",
    help="Only events whose latest rejection has this code (README, "
    '"Dead letters": e.g. invalid_field, bad_number).',
)
LIMIT_OPTION = click.option("--limit", type=click.IntRange(min=1), help="At most this many events.")


@dlq.command("list")
@CODE_OPTION
@LIMIT_OPTION
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="One JSON object per event: the latest letter's fields (partition, offset, "
    "code, reason, source_topic, source_partition, source_offset, batch_index, "
    "redriven_from, at, value) and source, status, attempts, letters, history.",
)
def dlq_list(code: str | None, limit: int | None, as_json: bool) -> None:
    """List the rejected events, oldest first, each in three lines:

    \b
    SOURCE  STATUS  ATTEMPTS  CODE: REASON
        its history: each rejection (time, code, its letter's partition@offset)
        and each re-drive (time, the record it became)
        the start of its value

    SOURCE is where the event was first rejected (topic:partition@offset, [index] in a batch);
    STATUS is `rejected` (never re-driven), `redriven` (the workers have not handled the
    re-driven record yet), `accepted` (they handled it without rejecting it) or
    `rejected-again`; ATTEMPTS counts the records rejected for it (the original and each
    re-drive rejected again); CODE and REASON are the latest rejection's.
    """
    import json

    from redis import RedisError

    from producers.dead_letters import read_groups, select_groups

    settings = load_settings()
    try:
        groups = read_groups(settings, open_prefix_store(settings))
    except RedisError as exc:
        warn(
            f"cannot read the re-drive ledger in Redis at {settings.redacted_redis_url} ({exc}); "
            "listing the letters without their re-drives"
        )
        groups = read_groups(settings, None)
    chosen = select_groups(groups, code, limit)
    for group in chosen:
        click.echo(json.dumps(group.as_json()) if as_json else group.summary())
    letters = sum(len(group.letters) for group in chosen)
    say(
        f"{len(chosen):,} rejected event(s) ({letters:,} dead letter(s))"
        + (f" of {len(groups):,}" if len(chosen) < len(groups) else "")
    )


@dlq.command("replay")
@CODE_OPTION
@LIMIT_OPTION
@click.option(
    "--again",
    is_flag=True,
    help="Also re-drive events already re-driven whose re-drive was rejected again.",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def dlq_replay(code: str | None, limit: int | None, again: bool, yes: bool) -> None:
    """Send rejected events back to their source topics, to be validated again.

    For events rejected under an old rule or a since-fixed bug. Each event is re-driven once
    (its latest letter, with the header portflow-redriven-from naming that letter), and the
    re-drive is noted in Redis: a later replay skips it unless --again, and only if it was
    rejected again. One still invalid lands on the dead-letter topic again, as a further
    attempt of the same event in `portflow dlq list`.
    """
    from producers.dead_letters import plan_redrive, read_groups, redrive_groups, select_groups

    settings = load_settings()
    store = open_prefix_store(settings)
    groups = select_groups(read_groups(settings, store), code)
    plan = plan_redrive(groups, settings.event_topics, again, limit)
    skipped = f"; skipped {plan.skipped_text()}" if plan.skipped else ""
    if not plan.chosen:
        say(f"nothing to re-drive{skipped or ': no dead letters'}")
        return
    if not yes:
        click.confirm(f"re-drive {len(plan.chosen):,} rejected event(s)?", abort=True, err=True)
    sent = redrive_groups(settings, store, plan.chosen)
    say(
        f"re-drove {sum(sent.values()):,} dead letter(s) ("
        + ", ".join(f"{n:,} to {topic}" for topic, n in sent.items())
        + f"){skipped}"
    )


BROKER_OPTION = click.option(
    "--broker",
    type=click.Choice(BROKERS),
    default=BROKERS[0],
    show_default=True,
    help="The embedded Kafka broker: Apache Kafka 4.x (needs Java 17 and its jars: bash "
    "scripts/fetch-kafka.sh) or tansu (in memory, no Java; falls behind a steady stream "
    "after about a million events).",
)


DATA_OPTION = click.option(
    "--data",
    type=click.Path(file_okay=False),
    envvar="PORTFLOW_DATA_DIR",
    help="Keep everything in this directory (Kafka's log, Redis' append-only file) and start "
    "from it again next time: for real use on one host. Needs Apache Kafka. "
    "[env: PORTFLOW_DATA_DIR]",
)


def stack_data_of(data: str | None, broker: str) -> DataDir | None:
    """The data directory of a kept stack (``DataDir``), or None for a throw-away one."""
    from pathlib import Path

    from entrypoints.embedded import DataDir

    if data and broker == "tansu":
        raise click.UsageError(
            "--data needs --broker apache-kafka: tansu keeps its records in "
            "memory only, so nothing would survive a restart"
        )
    return DataDir(Path(data).expanduser().resolve()) if data else None


@cli.command()
@BROKER_OPTION
@DATA_OPTION
def up(broker: str, data: str | None) -> None:
    """Run the embedded stack here: a Kafka broker, redis-server, one worker and the HTTP API;
    Ctrl-C or SIGTERM stops it.

    Listens on PORTFLOW_KAFKA_BOOTSTRAP and PORTFLOW_REDIS_URL (127.0.0.1:19092 and :16379 by
    default). Without --data nothing is kept from one run to the next: Apache Kafka's log is made
    anew, tansu is in memory, and Redis is made anew too. With --data DIR, Kafka keeps every
    event under DIR/kafka and Redis the totals under DIR/redis; one `up` at a time per DIR.
    """
    from entrypoints.session import serve

    stack_data = stack_data_of(data, broker)
    serve(
        load_settings(), stack_data.run if stack_data else home() / "run", broker, say, stack_data
    )


@cli.command()
@click.option("--once", is_flag=True, help="Print the final view and exit (for scripts).")
@click.option(
    "--scale",
    type=Number(min=0, min_open=True, max=MAX_SCALE),
    default=0.2,
    show_default=True,
    help="Events of the scenario replayed (1 = about 700k); the totals are the same.",
)
@click.option(
    "--seed",
    type=int,
    default=2024,
    show_default=True,
    help="Seed of the scenario's random choices: the same seed, the same events.",
)
@BROKER_OPTION
@DATA_OPTION
def demo(once: bool, scale: float, seed: int, broker: str, data: str | None) -> None:
    """The Xinjiang H1 2024 trade scenario, live: start the embedded stack, replay, watch.

    Generates the xinjiang-2024h1 scenario, replays it with a progress bar, then shows H1 2024
    against H1 2023 by port, mode, zone group, partner, trade mode and train service, with YoY,
    shares, the article's published figures checked against portflow's, and the pipeline's rate
    and lag. Ctrl-C stops the view and the stack. With --data, the stack keeps its data there
    (as `portflow up --data`) and a later demo on it shows what is kept instead of replaying.
    """
    from entrypoints.session import demo as run_demo

    stack_data = stack_data_of(data, broker)
    run_demo(
        load_settings(),
        stack_data.run if stack_data else home() / "run",
        broker,
        say,
        once,
        scale,
        seed,
        stack_data,
    )
