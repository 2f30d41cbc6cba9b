"""False alarms and detection power of the event-time drop detection (``domain.detection``).

Synthetic keys over two years (2023-2024: weekly rhythm, a season, 8 % growth, both Spring
Festivals with a dip from 0.8 to 0.25 of normal), of several kinds and noise levels:

- ``value-N``: a day's value is the sum of a Poisson(N) count of lognormal (sigma 0.3) shipments;
- ``count-N``: a Poisson(N) count (trains, say);
- ``steady-N``: N a day, +/- 8 % (a scheduled service).

Each kind runs undisrupted (every flagged day is a false alarm, festival days included) and
with closures (factor 0) and partial outages (factor 0.3 and 0.4) at fixed days, two of them
in the 2024 festival's weeks. Prints a table and one JSON line. No timing: the figures are
counts, the same on every machine for the same ``--seeds``.

    .venv/bin/python bench/detection.py [--seeds 4]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from portflow.domain.detection import find_drops  # noqa: E402
from producers.scenarios.disruption_drill import festival_factor  # noqa: E402

START, END = date(2023, 1, 1), date(2024, 12, 31)
WEEKLY = (1.05, 1.1, 1.1, 1.05, 1.0, 0.8, 0.7)
FLAT = (1.0,) * 7
KINDS = (("value", 12, WEEKLY), ("value", 40, WEEKLY), ("value", 100, WEEKLY),
         ("value", 300, FLAT), ("count", 10, FLAT), ("count", 20, WEEKLY), ("steady", 8, FLAT))
# (first day, days, factor)
DISRUPTIONS = ((date(2023, 3, 20), 4, 0.0), (date(2023, 6, 20), 2, 0.0),
               (date(2023, 10, 9), 7, 0.3), (date(2024, 2, 14), 3, 0.0),
               (date(2024, 2, 26), 2, 0.0), (date(2024, 5, 14), 4, 0.0),
               (date(2024, 9, 2), 7, 0.3), (date(2024, 11, 1), 7, 0.4))


def poisson(rng: random.Random, mean: float) -> int:
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def series(rng: random.Random, kind: str, size: int, weekly) -> dict[date, int]:
    totals, day = {}, START
    while day <= END:
        t = (day - START).days
        mean = size * weekly[day.weekday()] * festival_factor(day) \
            * (1 + 0.1 * math.sin(2 * math.pi * t / 365)) * 1.08 ** (t / 365)
        if kind == "value":
            totals[day] = sum(int(rng.lognormvariate(15, 0.3)) for _ in range(poisson(rng, mean)))
        elif kind == "count":
            totals[day] = poisson(rng, mean)
        else:
            totals[day] = round(mean * rng.uniform(0.92, 1.08))
        day += timedelta(days=1)
    return totals


def run(seeds: int) -> list[dict]:
    days = [START + timedelta(days=i) for i in range((END - START).days + 1)]
    rows = []
    for kind, size, weekly in KINDS:
        row = {"kind": f"{kind}-{size}", "key_days": 0, "false_alarms": 0,
               "closures": [0, 0], "partial": [0, 0]}
        for seed in range(seeds):
            clean = series(random.Random(seed), kind, size, weekly)
            row["key_days"] += len(days)
            row["false_alarms"] += len(find_drops({("k",): clean}, days, START))
            disrupted, truth = dict(clean), {}
            for first, length, factor in DISRUPTIONS:
                for i in range(length):
                    day = first + timedelta(days=i)
                    disrupted[day] = int(disrupted[day] * factor)
                    truth[day] = factor
            found = {j.day for j in find_drops({("k",): disrupted}, days, START)}
            row["false_alarms"] += len(found - set(truth))
            row["key_days"] += len(days) - len(truth)
            for day, factor in truth.items():
                tally = row["closures"] if factor == 0 else row["partial"]
                tally[0] += day in found
                tally[1] += 1
        rows.append(row)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=4, help="series per kind (default 4)")
    rows = run(parser.parse_args(argv).seeds)
    print(f"{'kind':<11} {'key-days':>9} {'false alarms':>13} {'closures found':>15} "
          f"{'partial found':>14}")
    for r in rows:
        print(f"{r['kind']:<11} {r['key_days']:>9,} {r['false_alarms']:>13} "
              f"{'%d/%d' % tuple(r['closures']):>15} {'%d/%d' % tuple(r['partial']):>14}")
    print(json.dumps({"detection": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
