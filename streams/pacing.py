"""When the gauges' costly refreshes (YoY, throughput drops) run: they read Redis and compute in
the worker's process, so they may be spaced by their cost (a bounded share of its time) and wait
while the worker is behind, leaving it to applying records."""

from __future__ import annotations

import time
from collections.abc import Callable

MAX_SHARE = 0.1  # of the time, spent in one kind of refresh at most
# While the worker is behind (a backlog, a replay), figures of half-applied periods are not worth
# slowing it down for: refreshes wait, but never longer than this.
MAX_DEFER_S = 300.0


class RefreshPacer:
    """Runs a refresh when it is due: after a refresh that took ``t`` seconds the next waits
    ``t * (1 / max_share - 1)`` (not at all if ``max_share`` is None); while the worker is
    ``behind`` it also waits until the last successful refresh is ``max_defer_s`` old. The first
    refresh runs at once, unless ``hold_first``: then it waits like the others, counted from the
    pacer's start."""

    def __init__(
        self,
        max_share: float | None,
        max_defer_s: float = MAX_DEFER_S,
        clock: Callable[[], float] = time.monotonic,
        hold_first: bool = False,
    ) -> None:
        self.max_share, self.max_defer_s, self._clock = max_share, max_defer_s, clock
        self._next_at = 0.0
        self._refreshed_at: float | None = clock() if hold_first else None

    def run(self, refresh: Callable[[], None], behind: bool = False) -> None:
        started = self._clock()
        if started < self._next_at:
            return
        if (
            behind
            and self._refreshed_at is not None
            and started - self._refreshed_at < self.max_defer_s
        ):
            return
        try:
            refresh()
            self._refreshed_at = self._clock()
        finally:
            if self.max_share is not None:
                ended = self._clock()
                self._next_at = ended + (ended - started) * (1 / self.max_share - 1)
