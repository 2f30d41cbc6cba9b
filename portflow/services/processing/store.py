"""The store the processor applies steps to, as a typed protocol, and how its calls are retried
while Redis is unreachable."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Protocol, TypeVar

import redis

from portflow.adapters.redis import ApplyOutcome
from portflow.retry import Backoff, retry_async

log = logging.getLogger(__name__)

T = TypeVar("T")

# Redis cannot be reached (or is still loading its data): wait and call again.
REDIS_OUTAGES = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError)
MAX_RETRY_DELAY_S = 10.0


class Store(Protocol):
    """What the processor asks of the state's store, every call a coroutine on the worker's
    event loop (``portflow.adapters.redis.AsyncRedisStore`` puts a ``RedisStore`` behind it)."""

    async def open_epoch(self, tz_name: str) -> str | None:
        """The state's epoch, starting one if there is none; None while the state is dropped."""

    async def marks_of(self, names: list[str]) -> dict[str, int]:
        """The marks of these partitions (-1: none applied)."""

    async def apply(
        self,
        marks: Mapping[str, tuple[int, int]],
        event_ids: list[tuple[str, str]],
        increments: Iterable[tuple[str, str, str]],
        dedupe_ttl_seconds: int,
        latest_event_ts: int | None,
        epoch: str,
        outcome_counts: Mapping[str | None, Mapping[str, int]] | None = None,
        run_rejections: Mapping[str, list[dict[str, Any]]] | None = None,
    ) -> ApplyOutcome:
        """One step, atomically (``RedisStore.apply``)."""


async def retried(call: Callable[[], Awaitable[T]], first_delay_s: float) -> T:
    """``await call()``, called again while Redis is unreachable."""
    return await retry_async(
        call,
        REDIS_OUTAGES,
        Backoff(first_delay_s, MAX_RETRY_DELAY_S),
        lambda exc, delay: log.error("Redis unavailable (%s); retrying in %.1fs", exc, delay),
    )
