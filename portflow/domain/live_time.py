"""The live view's "now" in event time, and how far behind it the worker is.

The live gauges (YoY, throughput drops) take the newest event time applied as "now", so that a
replay of history shows what live traffic would have. One event must not carry them off: the
reference time is the newest event time applied, but never later than the worker's clock plus
``PORTFLOW_MAX_EVENT_AHEAD`` (a day when the guard is ``off``). An event further ahead than that
(accepted while the guard was off, or by a worker whose clock ran ahead) leaves the live view at
the clock's day; a far-past one does not move it at all (only the newest counts).
"""

from __future__ import annotations

# How far ahead of the clock the live view may run when PORTFLOW_MAX_EVENT_AHEAD is off.
AHEAD_WHEN_OFF_S = 86400


def reference_time(newest_s: int | None, now_s: float, max_ahead_s: int | None) -> int | None:
    """The event time the live view takes as now (Unix seconds): ``newest_s`` (the newest event
    time applied; None before any), at most ``now_s`` + ``max_ahead_s`` (None: the guard is
    off, ``AHEAD_WHEN_OFF_S``)."""
    if newest_s is None:
        return None
    ahead = AHEAD_WHEN_OFF_S if max_ahead_s is None else max_ahead_s
    return min(newest_s, int(now_s) + ahead)


def lag_seconds(now_s: float, newest_s: float) -> float:
    """How far the newest event time lies behind ``now_s``; 0 for an event ahead of the clock
    (which the guard lets through up to ``PORTFLOW_MAX_EVENT_AHEAD``): a lag is never negative."""
    return max(0.0, now_s - newest_s)
