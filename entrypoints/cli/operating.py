"""Commands that run or repair the pipeline: worker, rebuild, dlq, up and demo."""

from __future__ import annotations

import click

from entrypoints.cli.base import POSITIVE, Number, cli, home, load_settings, say
from entrypoints.embedded import BROKERS
from producers.scenarios import MAX_SCALE


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

    run_worker(load_settings(), loglevel)


@cli.command()
@click.option("--wait", is_flag=True,
              help="Return once the workers have re-applied at least everything applied before.")
@click.option("--timeout", type=POSITIVE, default=3600, show_default=True,
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

    seconds = rebuild_state(load_settings(), confirm, say, timeout if wait else None)
    if seconds is not None:
        say(f"rebuilt in {seconds:.1f}s")


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

    letters = select_dead_letters(load_settings(), code, limit)
    for letter in letters:
        click.echo(json.dumps(letter.as_json()) if as_json else letter.summary())
    say(f"{len(letters):,} dead letter(s)")


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

    settings = load_settings()
    letters = select_dead_letters(settings, code, limit)
    if not letters:
        say("no dead letters to replay")
        return
    if not yes:
        click.confirm(f"re-drive {len(letters):,} dead letter(s)?", abort=True, err=True)
    sent = redrive_letters(settings, letters)
    say(", ".join(f"{n:,} to {topic}" for topic, n in sent.items()))


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

    serve(load_settings(), home() / "run", broker, say)


@cli.command()
@click.option("--once", is_flag=True, help="Print the final view and exit (for scripts).")
@click.option("--scale", type=Number(min=0, min_open=True, max=MAX_SCALE), default=0.2,
              show_default=True,
              help="Events of the scenario replayed (1 = about 700k); the totals are the same.")
@click.option("--seed", type=int, default=2024, show_default=True,
              help="Seed of the scenario's random choices: the same seed, the same events.")
@BROKER_OPTION
def demo(once, scale, seed, broker) -> None:
    """The Xinjiang H1 2024 trade scenario, live: start the embedded stack, replay, watch.

    Generates the xinjiang-2024h1 scenario, replays it with a progress bar, then shows H1 2024
    against H1 2023 by port, mode, zone group, partner, trade mode and train service, with YoY,
    shares, the article's published figures checked against portflow's, and the pipeline's rate
    and lag. Ctrl-C stops the view and the stack.
    """
    from entrypoints.session import demo as run_demo

    run_demo(load_settings(), home() / "run", broker, say, once, scale, seed)
