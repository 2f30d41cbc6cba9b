"""Retrying: one schedule of waits (``Backoff``) and the loops that follow it, for every place
that waits out a server (Kafka, Redis) instead of failing at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """Waits that double from ``first_s`` up to ``cap_s`` (equal: a fixed pace); with
    ``give_up_after_s``, the retrying stops once that long has passed since the first try."""

    first_s: float
    cap_s: float
    give_up_after_s: float | None = None

    def delays(self) -> Iterator[float]:
        delay = self.first_s
        while True:
            yield delay
            delay = min(delay * 2, self.cap_s)


def retry(
    attempt: Callable[[], T],
    retry_on: tuple[type[BaseException], ...],
    backoff: Backoff,
    give_up: Callable[[BaseException], BaseException],
) -> T:
    """``attempt()`` until it returns, waiting ``backoff`` between failures of ``retry_on``; past
    ``backoff.give_up_after_s`` raise ``give_up(the last failure)`` instead."""
    started = time.monotonic()
    for delay in backoff.delays():
        try:
            return attempt()
        except retry_on as exc:
            if (
                backoff.give_up_after_s is not None
                and time.monotonic() - started > backoff.give_up_after_s
            ):
                raise give_up(exc) from None
        time.sleep(delay)
    raise AssertionError("unreachable: delays() never ends")


async def retry_async(
    attempt: Callable[[], Awaitable[T]],
    retry_on: tuple[type[BaseException], ...],
    backoff: Backoff,
    on_retry: Callable[[BaseException, float], None],
) -> T:
    """``await attempt()`` until it returns, telling ``on_retry(failure, delay)`` before each
    wait (no giving up: the caller's records stay unacknowledged meanwhile)."""
    for delay in backoff.delays():
        try:
            return await attempt()
        except retry_on as exc:
            on_retry(exc, delay)
        await asyncio.sleep(delay)
    raise AssertionError("unreachable: delays() never ends")
