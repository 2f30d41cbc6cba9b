"""Kafka's end offsets for ``/v1/status``, read by a thread of their own, never by a request.

A request that asked Kafka could hang on an unreachable broker; instead, from the first status
request on, a background thread reads the event topics' end offsets every few seconds (after a
failure, less often), and a request takes the last reading with its age, or the last error.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

EVERY_S = 5.0
AFTER_FAILURE_S = 30.0

Ends = dict[tuple[str, int], int]  # (topic, partition) -> end offset
Reader = Callable[[], Ends]


class OffsetsWatch:
    def __init__(self, read: Reader, close: Callable[[], None]) -> None:
        self._read, self._close = read, close
        # (end offsets or None, monotonic time of that reading or None, last error or None)
        self._last: tuple[Ends | None, float | None, str | None] = (None, None, None)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def latest(self) -> tuple[Ends | None, float | None, str | None]:
        """The last end offsets read, how many seconds ago, and the error of the last reading
        if it failed (starting the thread on the first call: nothing is read until asked)."""
        with self._lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(
                    target=self._run, daemon=True, name="portflow-api-offsets"
                )
                self._thread.start()
        ends, at, error = self._last
        return ends, None if at is None else round(time.monotonic() - at, 1), error

    def _run(self) -> None:
        while not self._stop.is_set():
            ends, at, _ = self._last
            try:
                self._last = (self._read(), time.monotonic(), None)
                wait = EVERY_S
            except Exception as exc:  # any failure is reported, and tried again later
                self._last = (ends, at, str(exc) or type(exc).__name__)
                wait = AFTER_FAILURE_S
            self._stop.wait(wait)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(0.5)  # at once unless it is reading (then it dies with us)
        if self._thread is None or not self._thread.is_alive():
            self._close()
