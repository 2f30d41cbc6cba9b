"""The event-time guard: how far from the worker's clock an event time may lie.

The contract accepts times from 1900 to 2999, but one event far ahead of the clock (a producer's
wrong clock, a typo in the year) would take over everything that follows the newest event time:
the live gauges, the drop judge. So events too far ahead of the clock (``PORTFLOW_MAX_EVENT_AHEAD``)
or, if the operator wants, too far behind it (``PORTFLOW_MAX_EVENT_AGE``) are rejected with codes
of their own. The clock is read by the caller: the judgement depends on when an event is handled
(a rebuild judges again).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

AHEAD = "event_time_ahead"
BEHIND = "event_time_behind"


def describe_seconds(seconds: float) -> str:
    """``3d 4h``, ``5h 12m``, ``40s``: a span as people read it."""
    seconds = int(seconds)
    for unit, size, smaller, smaller_size in (
        ("y", 365 * 86400, "d", 86400),
        ("d", 86400, "h", 3600),
        ("h", 3600, "m", 60),
    ):
        if seconds >= size:
            rest = (seconds % size) // smaller_size
            return f"{seconds // size}{unit}" + (f" {rest}{smaller}" if rest else "")
    return f"{seconds}s" if seconds < 60 else f"{seconds // 60}m"


@dataclass(frozen=True)
class EventTimeGuard:
    """The window of event times accepted around a clock reading; None leaves a side open."""

    max_ahead_s: int | None = 86400
    max_age_s: int | None = None

    def window(self, now: float) -> tuple[float, float]:
        """The lowest and highest event time (unix seconds) accepted at ``now``."""
        low = -math.inf if self.max_age_s is None else now - self.max_age_s
        high = math.inf if self.max_ahead_s is None else now + self.max_ahead_s
        return low, high

    def judge(self, ts_seconds: float, now: float) -> tuple[str, str] | None:
        """None if the time is accepted at ``now``, else the rejection's (code, reason)."""
        low, high = self.window(now)
        # (a bound is finite only with its limit set; the limit is read only past the bound)
        if ts_seconds > high and self.max_ahead_s is not None:
            return AHEAD, (
                f"ts {_iso(ts_seconds)} is {describe_seconds(ts_seconds - now)} ahead "
                f"of the worker's clock ({_iso(now)}); at most "
                f"{describe_seconds(self.max_ahead_s)} ahead is accepted "
                "(PORTFLOW_MAX_EVENT_AHEAD)"
            )
        if ts_seconds < low and self.max_age_s is not None:
            return BEHIND, (
                f"ts {_iso(ts_seconds)} is {describe_seconds(now - ts_seconds)} "
                f"before the worker's clock ({_iso(now)}); at most "
                f"{describe_seconds(self.max_age_s)} back is accepted "
                "(PORTFLOW_MAX_EVENT_AGE)"
            )
        return None


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")
