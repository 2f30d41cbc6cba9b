"""False alarms and detection power of the event-time drop detection (``domain.detection``),
and (``--speed``) how long judging a year of the disruption drill takes.

Synthetic keys over two years (2023-2024: weekly rhythm, a season, 8 % growth, both Spring
Festivals with a dip from 0.8 to 0.25 of normal), of several kinds and noise levels:

- ``value-N``: a day's value is the sum of a Poisson(N) count of lognormal (sigma 0.3) shipments;
- ``count-N``: a Poisson(N) count (trains, say);
- ``steady-N``: N a day, +/- 8 % (a scheduled service).

Each kind runs undisrupted (every flagged day is a false alarm, festival days included) and
with closures (factor 0) and partial outages (factor 0.3 and 0.4) at fixed days, two of them
in the 2024 festival's weeks. Prints a table and one JSON line. No timing: the figures are
counts, the same on every machine for the same ``--seeds``.

``--speed``: the disruption drill (``portflow scenario disruption-drill``, seed 2024) applied to
a redis-server of its own (free 127.0.0.1 port, stopped at the end) by the worker's
``BatchProcessor``, then a year (2024) of judging read from Redis, as ``portflow anomalies``
does, per view: ``before`` (``bench.detection_before``, the judge before issue 23) and
``after`` (``services.anomalies.DailyTotals``) taking turns, ``--repeat`` times each, the best
counts (the machine is shared). Both judge every key and day; the run fails unless their
judgements are identical. A table and one JSON line.

    python -m bench.detection [--seeds 4]
    python -m bench.detection --speed [--repeat 5]
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from bench import detection_before
from bench.harness import parser_of
from entrypoints.embedded import start_redis
from entrypoints.processes import free_port
from portflow.adapters.redis import RedisStore
from portflow.config import Settings
from portflow.domain.detection import find_drops
from portflow.domain.measures import check_request
from portflow.domain.periods import Period
from portflow.services.anomalies import DailyTotals
from portflow.services.processing import SourceRecord
from producers.scenarios.disruption_drill import festival_factor, generate_drill
from streams.processor import BatchProcessor

T = TypeVar("T")
START, END = date(2023, 1, 1), date(2024, 12, 31)
WEEKLY = (1.05, 1.1, 1.1, 1.05, 1.0, 0.8, 0.7)
FLAT = (1.0,) * 7
KINDS = (
    ("value", 12, WEEKLY),
    ("value", 40, WEEKLY),
    ("value", 100, WEEKLY),
    ("value", 300, FLAT),
    ("count", 10, FLAT),
    ("count", 20, WEEKLY),
    ("steady", 8, FLAT),
)
# (first day, days, factor)
DISRUPTIONS = (
    (date(2023, 3, 20), 4, 0.0),
    (date(2023, 6, 20), 2, 0.0),
    (date(2023, 10, 9), 7, 0.3),
    (date(2024, 2, 14), 3, 0.0),
    (date(2024, 2, 26), 2, 0.0),
    (date(2024, 5, 14), 4, 0.0),
    (date(2024, 9, 2), 7, 0.3),
    (date(2024, 11, 1), 7, 0.4),
)


def poisson(rng: random.Random, mean: float) -> int:
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def series(rng: random.Random, kind: str, size: int, weekly: tuple[float, ...]) -> dict[date, int]:
    totals: dict[date, int] = {}
    day = START
    while day <= END:
        t = (day - START).days
        mean = (
            size
            * weekly[day.weekday()]
            * festival_factor(day)
            * (1 + 0.1 * math.sin(2 * math.pi * t / 365))
            * 1.08 ** (t / 365)
        )
        if kind == "value":
            totals[day] = sum(int(rng.lognormvariate(15, 0.3)) for _ in range(poisson(rng, mean)))
        elif kind == "count":
            totals[day] = poisson(rng, mean)
        else:
            totals[day] = round(mean * rng.uniform(0.92, 1.08))
        day += timedelta(days=1)
    return totals


@dataclass
class Tally:
    """One kind's days judged: false alarms, and closures and partial days found of all."""

    kind: str
    key_days: int = 0
    false_alarms: int = 0
    closures: list[int] = field(default_factory=lambda: [0, 0])  # found, of
    partial: list[int] = field(default_factory=lambda: [0, 0])

    def count(self, clean: dict[date, int], days: list[date]) -> None:
        """Judge ``clean`` as it is (every flag a false alarm), then with the disruptions."""
        self.key_days += len(days)
        self.false_alarms += len(find_drops({("k",): clean}, days, START))
        disrupted, truth = dict(clean), {}
        for first, length, factor in DISRUPTIONS:
            for i in range(length):
                day = first + timedelta(days=i)
                disrupted[day] = int(disrupted[day] * factor)
                truth[day] = factor
        found = {j.day for j in find_drops({("k",): disrupted}, days, START)}
        self.false_alarms += len(found - set(truth))
        self.key_days += len(days) - len(truth)
        for day, factor in truth.items():
            tally = self.closures if factor == 0 else self.partial
            tally[0] += day in found
            tally[1] += 1


def run(seeds: int) -> list[Tally]:
    days = [START + timedelta(days=i) for i in range((END - START).days + 1)]
    rows = []
    for kind, size, weekly in KINDS:
        row = Tally(f"{kind}-{size}")
        for seed in range(seeds):
            row.count(series(random.Random(seed), kind, size, weekly), days)
        rows.append(row)
    return rows


# (measure, by) judged by --speed: the live gauges' views
SPEED_VIEWS = (
    ("value_cny", ("port",)),
    ("value_cny", ("port", "mode")),
    ("trains", ("port", "service")),
)
SPEED_PERIOD = "2024"
LOAD_BATCH = 500  # events per record, as replay sends them


def load_drill(store: RedisStore, settings: Settings, path: Path) -> int:
    """Apply a replay file's events to ``store`` as a worker would (one partition per event
    type, batch records of ``LOAD_BATCH``); return how many."""
    by_type: dict[str, list[bytes]] = {}
    for line in path.read_bytes().splitlines():
        by_type.setdefault(json.loads(line)["type"], []).append(line)

    async def apply() -> None:
        async def no_letters(letters: list[Any]) -> None:
            raise AssertionError(f"the drill's events are all valid: {letters[0].reason}")

        processor = BatchProcessor(settings, store, no_letters)
        await processor.open_epoch()
        for event_type, lines in by_type.items():
            topic = settings.topic(event_type)
            await processor.load_marks([f"{topic}:0"])
            records = [
                SourceRecord(
                    topic, 0, offset, None, b"[" + b",".join(lines[i : i + LOAD_BATCH]) + b"]"
                )
                for offset, i in enumerate(range(0, len(lines), LOAD_BATCH))
            ]
            for i in range(0, len(records), 50):
                await processor.process(records[i : i + 50])

    asyncio.run(apply())
    return sum(map(len, by_type.values()))


def judge_year(
    totals_type: Callable[..., Any], store: RedisStore, measure: str, by: tuple[str, ...]
) -> list[Any]:
    """Every key's judgement of every day of ``SPEED_PERIOD``, read afresh from Redis."""
    spec = check_request(measure, list(by))
    judged: list[Any] = totals_type(store, spec, list(by)).judge(
        Period.parse(SPEED_PERIOD).days(), 50, drops_only=False
    )
    return judged


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


@dataclass(frozen=True)
class SpeedRow:
    """A view of the drill judged for a year, by the judge before issue 23 and by today's."""

    measure: str
    by: str
    events: int
    key_days: int
    drops: int
    before_s: float
    after_s: float
    speedup: float

    def line(self) -> str:
        return (
            f"{self.measure + ' by ' + self.by:<22} {self.key_days:>8,} {self.drops:>6} "
            f"{self.before_s:>9.3f} {self.after_s:>8.3f} {self.speedup:>8.1f}x"
        )


def run_speed(repeat: int) -> list[SpeedRow]:
    with tempfile.TemporaryDirectory(prefix="portflow-bench-") as name:
        work = Path(name)
        drill = work / "drill.jsonl"
        events = generate_drill(str(drill))
        port = free_port()
        redis = start_redis(port, work / "redis", work / "logs")
        try:
            settings = Settings(redis_url=f"redis://127.0.0.1:{port}/0")
            store = RedisStore.from_url(settings.redis_url, settings.topic_prefix)
            load_drill(store, settings, drill)
            return [speed_of(store, measure, by, events, repeat) for measure, by in SPEED_VIEWS]
        finally:
            redis.stop()


def speed_of(
    store: RedisStore, measure: str, by: tuple[str, ...], events: int, repeat: int
) -> SpeedRow:
    """Both judges taking turns ``repeat`` times, the best of each; fails unless they agree."""
    best = {"before": float("inf"), "after": float("inf")}
    judged: dict[str, list[Any]] = {}
    for _ in range(repeat):
        for name, totals_type in (
            ("before", detection_before.DailyTotals),
            ("after", DailyTotals),
        ):
            seconds, judged[name] = timed(partial(judge_year, totals_type, store, measure, by))
            best[name] = min(best[name], seconds)
    if judged["before"] != judged["after"]:
        raise SystemExit(f"{measure} by {','.join(by)}: the judgements differ")
    return SpeedRow(
        measure=measure,
        by=",".join(by),
        events=events,
        key_days=len(judged["after"]),
        drops=sum(j.anomalous for j in judged["after"]),
        before_s=round(best["before"], 3),
        after_s=round(best["after"], 3),
        speedup=round(best["before"] / best["after"], 1),
    )


def print_speed(rows: list[SpeedRow], repeat: int) -> None:
    print(f"a year ({SPEED_PERIOD}) of the drill judged, best of {repeat}; identical judgements")
    print(
        f"{'view':<22} {'key-days':>8} {'drops':>6} {'before s':>9} {'after s':>8} {'speed-up':>9}"
    )
    for row in rows:
        print(row.line())
    print(json.dumps({"detection_speed": [asdict(row) for row in rows]}))


def main(argv: list[str] | None = None) -> int:
    parser = parser_of("bench.detection", __doc__)
    parser.add_argument("--seeds", type=int, default=4, help="series per kind (default 4)")
    parser.add_argument(
        "--speed",
        action="store_true",
        help="time a year of judging the disruption drill, before and after",
    )
    parser.add_argument(
        "--repeat", type=int, default=5, help="--speed: runs of each, the best counts (default 5)"
    )
    args = parser.parse_args(argv)
    if args.speed:
        print_speed(run_speed(args.repeat), args.repeat)
        return 0
    rows = run(args.seeds)
    print(
        f"{'kind':<11} {'key-days':>9} {'false alarms':>13} {'closures found':>15} "
        f"{'partial found':>14}"
    )
    for r in rows:
        print(
            f"{r.kind:<11} {r.key_days:>9,} {r.false_alarms:>13} "
            f"{'/'.join(map(str, r.closures)):>15} {'/'.join(map(str, r.partial)):>14}"
        )
    print(json.dumps({"detection": [asdict(r) for r in rows]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
