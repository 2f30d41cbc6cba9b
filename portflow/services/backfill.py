"""``portflow backfill``: the Redis aggregates as Prometheus history, by event time.

Live counters start when a worker starts, so right after replaying last year Prometheus holds no
"last year" to put beside this year. Backfill writes the day aggregates as counters that grow
at each local midnight by the day's amount, timestamped by event time, in OpenMetrics;
``promtool tsdb create-blocks-from openmetrics`` turns them into TSDB blocks that Prometheus
loads from its data directory. The series carry ``source="backfill"`` so they never
collide with the live, processing-time counters of the same name.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import IO
from zoneinfo import ZoneInfo

from portflow.adapters.redis import RedisStore
from portflow.config import Settings
from portflow.domain.live_time import reference_time
from portflow.domain.measures import unit_scale
from portflow.domain.rollup import sum_by
from portflow.errors import PortflowError, UsageError

# (metric, help, event type, stored measure, labels). Labels are the dashboards' (port,
# mode, service, status), not every dimension: history is for charts, and each label multiplies
# the series.
SERIES = (
    (
        "portflow_trade_value_yuan",
        "Trade value in yuan (backfilled by event time).",
        "shipment",
        "value",
        ("port", "mode"),
    ),
    (
        "portflow_cargo_weight_tonnes",
        "Cargo weight in tonnes (backfilled by event time).",
        "shipment",
        "weight",
        ("port", "mode"),
    ),
    (
        "portflow_shipments",
        "Shipments (backfilled by event time).",
        "shipment",
        "count",
        ("port", "mode"),
    ),
    (
        "portflow_trains",
        "Trains (backfilled by event time).",
        "train",
        "count",
        ("port", "service"),
    ),
    ("portflow_train_teu", "TEU (backfilled by event time).", "train", "teu", ("port", "service")),
    (
        "portflow_customs_declarations",
        "Customs status changes (backfilled by event time).",
        "customs",
        "count",
        ("port", "status"),
    ),
)


class BackfillError(PortflowError, RuntimeError):
    """Nothing to backfill, or promtool failed; the message says which."""


@dataclass
class BackfillResult:
    days: int
    series: int
    samples: int


def _days(first: date, last: date) -> Iterable[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def write_openmetrics(
    store: RedisStore, tz: ZoneInfo, first: date, last: date, out: IO[str]
) -> BackfillResult:
    """Write counters for the days ``first``..``last`` (local) as OpenMetrics text.

    One sample per series at each local midnight that ends a day with data: ``promtool`` cuts
    blocks of two hours, so every sampled instant costs a block; days without any event are
    skipped (the counters simply do not move then).
    """
    days = list(_days(first, last))
    if not days:
        raise BackfillError(f"no days between {first} and {last}")
    day_names = [d.isoformat() for d in days]
    nexts = [d + timedelta(days=1) for d in days]
    ends = [int(datetime(n.year, n.month, n.day, tzinfo=tz).timestamp()) for n in nexts]
    tables = []
    for _, _, event_type, stored, dims in SERIES:
        per_day = store.cells_per_granule(event_type, stored, day_names)
        tables.append({day: sum_by(event_type, list(dims), per_day[day]) for day in day_names})
    active = [i for i, day in enumerate(day_names) if any(t[day] for t in tables)]
    samples = series_count = 0
    for (name, help_text, event_type, stored, dims), daily in zip(SERIES, tables, strict=True):
        scale = unit_scale(event_type, stored)
        keys = sorted({key for sums in daily.values() for key in sums})
        if not keys:
            continue
        out.write(f"# HELP {name} {help_text}\n# TYPE {name} counter\n")
        for key in keys:
            labels = ",".join(f'{d}="{v}"' for d, v in zip(dims, key, strict=True))
            labels += ',source="backfill"'
            running = 0
            for i in active:
                running += daily[day_names[i]].get(key, 0)
                out.write(f"{name}_total{{{labels}}} {running / scale} {ends[i]}\n")
            samples += len(active)
            series_count += 1
    out.write("# EOF\n")
    return BackfillResult(len(active), series_count, samples)


def create_blocks(openmetrics: Path, tsdb_dir: Path, promtool: str = "promtool") -> None:
    tsdb_dir.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(
            [
                promtool,
                "tsdb",
                "create-blocks-from",
                "openmetrics",
                str(openmetrics),
                str(tsdb_dir),
            ],
            capture_output=True,
            text=True,
            timeout=3600,
        )
    except FileNotFoundError:
        raise BackfillError(
            "promtool not found: install Prometheus (Debian: apt-get install "
            "prometheus) or pass --promtool PATH"
        ) from None
    if done.returncode != 0:
        raise BackfillError(f"promtool failed:\n{done.stderr.strip()[-2000:]}")


class InvalidDays(UsageError, ValueError):
    """A --from/--to that is not a day."""


@dataclass
class Backfilled(BackfillResult):
    first: date
    last: date

    def summary(self, tsdb_dir: str | Path) -> str:
        return (
            f"backfilled {self.series:,} series ({self.samples:,} samples) over "
            f"{self.days} days, {self.first} to {self.last}, into {tsdb_dir}"
        )


def backfill(
    store: RedisStore,
    tz: ZoneInfo,
    tsdb_dir: Path,
    first: str | None = None,
    last: str | None = None,
    max_ahead_s: int | None = Settings.max_event_ahead_s,
    openmetrics: Path | None = None,
    promtool: str = "promtool",
) -> Backfilled:
    """TSDB blocks of the days ``first``..``last`` (defaults: 1 January of the year before the
    live view's now, and its day: the newest event's, at most ``max_ahead_s`` past the clock),
    keeping the OpenMetrics text if asked."""
    latest = reference_time(store.latest_event_time(), time.time(), max_ahead_s)
    if latest is None and not (first and last):
        raise BackfillError("nothing to backfill: no event has been applied yet")
    try:
        last_day = (  # (latest is known where last is not: checked above)
            date.fromisoformat(last) if last else datetime.fromtimestamp(latest or 0, tz).date()
        )
        first_day = date.fromisoformat(first) if first else date(last_day.year - 1, 1, 1)
    except ValueError as exc:
        raise InvalidDays(f"--from/--to: {exc}") from None
    with tempfile.TemporaryDirectory(prefix="portflow-backfill-") as scratch:
        text_path = openmetrics or Path(scratch) / "backfill.om.txt"
        with open(text_path, "w") as out:
            result = write_openmetrics(store, tz, first_day, last_day, out)
        create_blocks(text_path, tsdb_dir, promtool)
    return Backfilled(result.days, result.series, result.samples, first_day, last_day)
