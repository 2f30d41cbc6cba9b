"""Daily traffic for the drop judge's tests, and the most day granules one refresh of the live
judge may read."""

from __future__ import annotations

import math
import random
from datetime import date, timedelta

from portflow.domain.detection import RUN_CONTEXT_DAYS
from portflow.services.anomalies import HISTORY
from producers.scenarios.disruption_drill import festival_factor
from streams.drops import LIVE_VIEWS, MAX_DAYS_PER_REFRESH, RERUN_DAYS

START, END = date(2023, 1, 1), date(2024, 12, 31)
WEEKLY = (1.05, 1.1, 1.1, 1.05, 1.0, 0.8, 0.7)

# A history and the days judged, each view.
MAX_GRANULES_PER_REFRESH = len(LIVE_VIEWS) * (
    HISTORY.days + MAX_DAYS_PER_REFRESH + RERUN_DAYS + RUN_CONTEXT_DAYS + 1
)


def traffic(seed: int, base: float = 200, noise: float = 0.06) -> dict[date, int]:
    """Two years of daily totals: weekly rhythm, season, growth, the festival, some noise."""
    rng = random.Random(seed)
    totals, day = {}, START
    while day <= END:
        t = (day - START).days
        level = (
            base
            * WEEKLY[day.weekday()]
            * festival_factor(day)
            * (1 + 0.1 * math.sin(2 * math.pi * t / 365))
            * 1.08 ** (t / 365)
        )
        totals[day] = max(0, round(level * rng.gauss(1, noise) * 1000))
        day += timedelta(days=1)
    return totals
