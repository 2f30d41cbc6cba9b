"""The embedded stack run from a terminal: ``portflow up`` serves it until Ctrl-C or SIGTERM,
``portflow demo`` also replays the Xinjiang scenario into it and shows the live view. The stack
is stopped on every path."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from entrypoints.embedded import BROKER_NAMES, DataDir, EmbeddedStack, api_url
from entrypoints.processes import StackError
from portflow.config import Settings
from portflow.domain.partitions import partition_name

if TYPE_CHECKING:
    from entrypoints.dashboard import Snapshot
    from portflow.adapters.redis import RedisStore

Say = Callable[[str], None]


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM stops the stack the same way Ctrl-C does."""
    raise KeyboardInterrupt


@contextmanager
def running_stack(
    settings: Settings, run_dir: Path, broker: str, say: Say, data: DataDir | None = None
) -> Iterator[EmbeddedStack]:
    """The started stack; stopped when the block ends, however it ends (Ctrl-C and SIGTERM end
    it quietly; while it starts, ``start`` stops what it started)."""
    stack = EmbeddedStack(settings, run_dir, broker, data)
    signal.signal(signal.SIGTERM, _interrupt)
    say(f"starting the embedded stack ({BROKER_NAMES[broker]}, redis-server, worker, HTTP API)…")
    stack.start()
    try:
        yield stack
    except KeyboardInterrupt:
        say("\nstopping…")
    finally:
        stack.stop()
        if data:
            say(f"stopped; the data is kept in {data.path}")


def _check_children(stack: EmbeddedStack) -> None:
    failed = stack.failed_child()
    if failed:
        raise StackError(f"{failed.name} stopped unexpectedly:\n{failed.tail()}")


def serve(
    settings: Settings, run_dir: Path, broker: str, say: Say, data: DataDir | None = None
) -> None:
    """``portflow up``: the stack until Ctrl-C or SIGTERM. (The banner is printed inside the
    stack's block: a signal right after it still stops everything cleanly.)"""
    with running_stack(settings, run_dir, broker, say, data) as stack:
        say("portflow is up:\n" + stack.describe() + "\nCtrl-C stops everything.")
        while True:
            _check_children(stack)
            time.sleep(0.5)


def demo(
    settings: Settings,
    run_dir: Path,
    broker: str,
    say: Say,
    once: bool,
    scale: float,
    seed: int,
    data: DataDir | None = None,
) -> None:
    """``portflow demo``: the stack, the scenario replayed into it, then the live view. With a
    data directory whose state already holds applied events, the scenario is not replayed again
    (after the dedupe window a second replay would count it twice): the view shows what is kept."""
    from portflow.services.rates import load_rates
    from portflow.services.state import open_store
    from producers.scenarios.xinjiang import RATES_FILE

    with running_stack(settings, run_dir, broker, say, data) as stack:
        store = open_store(settings)
        kept = store.outcomes().applied if data else 0
        if data and kept:
            replay_note, targets = _not_replayed(data, kept, say)
        else:
            replay_note, targets = _replayed(settings, run_dir, say, scale, seed, store)
        say(load_rates(store, RATES_FILE).summary())  # for the article's dollar figures
        _live_view(settings, stack, say, once, _snapshots(settings, store, replay_note, targets))


def _not_replayed(data: DataDir, kept: int, say: Say) -> tuple[str, dict[str, int]]:
    """The view's note on the events kept in ``data``, and no partition to wait for."""
    say(f"{data.path} already holds {kept:,} applied events: the scenario is not replayed again")
    return f"{kept:,} events kept in {data.path}, not replayed", {}


def _replayed(
    settings: Settings, run_dir: Path, say: Say, scale: float, seed: int, store: RedisStore
) -> tuple[str, dict[str, int]]:
    """The scenario generated in ``run_dir`` and replayed until applied: the view's note on how
    fast, and the last offset replayed to each partition (by its name)."""
    from portflow.services.progress import wait_until_applied
    from producers.replay import publish
    from producers.scenarios.xinjiang import generate_xinjiang

    path = str(run_dir / "xinjiang-2024h1.jsonl")
    say(f"generating the xinjiang-2024h1 scenario (scale {scale:g})…")
    events = generate_xinjiang(path, seed=seed, scale=scale)
    say(f"replaying {events:,} events of H1 2023 and H1 2024…")
    result = publish(settings, lambda replayer: replayer.run([path]))
    applied_in = result.seconds + wait_until_applied(store, result.offsets, 600)
    replay_note = (
        f"the replay of {result.events:,} events was applied in "
        f"{applied_in:.1f}s ({result.events / applied_in:,.0f} events/s)"
    )
    return replay_note, {partition_name(t, p): last for (t, p), (_, last) in result.offsets.items()}


def _snapshots(
    settings: Settings, store: RedisStore, replay_note: str, targets: dict[str, int]
) -> Callable[[], Snapshot]:
    """What the view shows each time: the article's figures, the pipeline's rate and lag."""
    from entrypoints.dashboard import MetricsRate, Report, collect
    from portflow.domain.queries import ReportRequest
    from portflow.services.reports import Reports
    from producers.scenarios.xinjiang import checks_against

    reports = Reports(store, settings.tz)
    rate = MetricsRate(settings.metrics_addr)

    def report(period: str, measure: str, by: list[str]) -> Report:
        return reports.report(ReportRequest.parse(period, measure, by))

    def snapshot() -> Snapshot:
        snap = collect(report, "2024-H1", lambda: checks_against(reports))
        rate.read(snap.pipeline)
        snap.pipeline.note = replay_note
        marks = store.marks_of(sorted(targets))
        snap.pipeline.lag_records = sum(max(0, targets[n] - marks[n]) for n in targets)
        return snap

    return snapshot


def _live_view(
    settings: Settings, stack: EmbeddedStack, say: Say, once: bool, snapshot: Callable[[], Snapshot]
) -> None:
    """The view printed once, or refreshed every two seconds until Ctrl-C (or a child dies)."""
    from rich.console import Console
    from rich.live import Live

    from entrypoints.dashboard import render

    console = Console()
    if once:
        console.print(render(snapshot()))
        return
    with Live(render(snapshot()), console=console, refresh_per_second=1) as live:
        say(
            f"Ctrl-C stops the view and the stack; `portflow report` and the HTTP API "
            f"({api_url(settings)}/docs) work meanwhile."
        )
        while True:
            time.sleep(2)
            _check_children(stack)
            live.update(render(snapshot()))
