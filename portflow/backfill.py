"""``portflow backfill``: the Redis aggregates as Prometheus history, by event time.

Live counters start when a worker starts, so right after replaying last year Prometheus holds no
"last year" to put beside this year. Backfill writes the day aggregates as counters that grow
at each local midnight by the day's amount, sampled hourly and timestamped by event time, in
OpenMetrics; ``promtool tsdb create-blocks-from openmetrics`` turns them into TSDB blocks that
Prometheus loads from its data directory. The series carry ``source="backfill"`` so they never
collide with the live, processing-time counters of the same name.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import IO, Iterable
from zoneinfo import ZoneInfo

from portflow.adapters.redis_store import RedisStore
from portflow.domain.report import sum_by

# (metric, help, event type, stored measure, scale, label names = cell dimensions)
SERIES = (
    ("portflow_trade_value_yuan", "Trade value in yuan (backfilled by event time).",
     "shipment", "value", 100, ("port", "mode", "direction")),
    ("portflow_cargo_weight_tonnes", "Cargo weight in tonnes (backfilled by event time).",
     "shipment", "weight", 1000, ("port", "mode", "direction")),
    ("portflow_shipments", "Shipments (backfilled by event time).", "shipment", "count", 1,
     ("port", "mode", "direction")),
    ("portflow_trains", "Trains (backfilled by event time).", "train", "count", 1,
     ("port", "service", "direction")),
    ("portflow_train_teu", "TEU (backfilled by event time).", "train", "teu", 1,
     ("port", "service", "direction")),
    ("portflow_customs_declarations", "Customs status changes (backfilled by event time).",
     "customs", "count", 1, ("port", "status")),
)
SAMPLE_EVERY_S = 3600


class BackfillError(RuntimeError):
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


def write_openmetrics(store: RedisStore, tz: ZoneInfo, first: date, last: date,
                      out: IO[str]) -> BackfillResult:
    """Write counters for the days ``first``..``last`` (local) as OpenMetrics text."""
    days = list(_days(first, last))
    if not days:
        raise BackfillError(f"no days between {first} and {last}")
    day_names = [d.isoformat() for d in days]
    # each local day as [start, end) in Unix seconds: DST days are 23 or 25 hours long
    edges = [int(datetime(d.year, d.month, d.day, tzinfo=tz).timestamp())
             for d in [*days, last + timedelta(days=1)]]
    bounds = list(zip(edges, edges[1:], day_names))
    samples = series_count = 0
    for name, help_text, event_type, stored, scale, dims in SERIES:
        per_day = store.cells_per_granule(event_type, stored, day_names)
        daily = {day: sum_by(event_type, list(dims), per_day[day]) for day in day_names}
        keys = sorted({key for sums in daily.values() for key in sums})
        if not keys:
            continue
        out.write(f"# HELP {name} {help_text}\n# TYPE {name} counter\n")
        for key in keys:
            labels = ",".join(f'{d}="{v}"' for d, v in zip(dims, key)) + ',source="backfill"'
            running = 0
            for start, end, day_name in bounds:
                for moment in range(start, end, SAMPLE_EVERY_S):
                    out.write(f"{name}_total{{{labels}}} {running / scale} {moment}\n")
                running += daily[day_name].get(key, 0)
                samples += (end - start) // SAMPLE_EVERY_S
            out.write(f"{name}_total{{{labels}}} {running / scale} {bounds[-1][1]}\n")
            samples += 1
            series_count += 1
    out.write("# EOF\n")
    return BackfillResult(len(days), series_count, samples)


def create_blocks(openmetrics: Path, tsdb_dir: Path, promtool: str = "promtool") -> None:
    tsdb_dir.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(
            [promtool, "tsdb", "create-blocks-from", "openmetrics", str(openmetrics),
             str(tsdb_dir)], capture_output=True, text=True, timeout=3600)
    except FileNotFoundError:
        raise BackfillError("promtool not found: install Prometheus (Debian: apt-get install "
                            "prometheus) or pass --promtool PATH") from None
    if done.returncode != 0:
        raise BackfillError(f"promtool failed:\n{done.stderr.strip()[-2000:]}")
