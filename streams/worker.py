"""``portflow worker``: prepare topics and Redis, then run the Faust worker until stopped."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import sys

import redis
import uvloop
from faust import Worker

from portflow.adapters.kafka import ensure_topics
from portflow.adapters.redis import RedisStore
from portflow.config import Settings
from portflow.errors import PortflowError
from portflow.retry import Backoff, retry
from streams.app import create_app
from streams.metrics import WorkerMetrics


def run_worker(settings: Settings, loglevel: str = "info") -> None:
    use_uvloop()
    logging.basicConfig(
        level=loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    ensure_topics(settings)
    _wait_for_redis(settings)
    store = RedisStore.from_url(settings.redis_url, settings.topic_prefix)
    store.check_layout()
    store.claim_time_zone(settings.tz_name)
    metrics = WorkerMetrics()
    host, port = settings.metrics_addr
    try:
        metrics.serve(host, port)
    except OSError as exc:
        raise PortflowError(
            f"cannot serve metrics on {host}:{port} ({exc}); "
            "set PORTFLOW_METRICS_ADDR to a free host:port"
        ) from None
    parts = create_app(settings, store, metrics)
    _quiet_garbage_collector()
    try:
        Worker(parts.app, loglevel=loglevel, quiet=True).execute_from_commandline()
    except SystemExit:
        if parts.positioner.restart_reason is None:
            raise
    logging.getLogger(__name__).warning("restarting: %s", parts.positioner.restart_reason)
    os.execv(  # noqa: S606  the worker again: this interpreter, fixed arguments, no shell
        sys.executable, [sys.executable, "-m", "entrypoints.cli", "worker", "--loglevel", loglevel]
    )


def use_uvloop() -> None:
    """Run Faust's event loops (the worker's and its consumer thread's) on uvloop. Faust spends
    most of a single-event record's time in event-loop work (a task and a wait per message,
    queue hand-offs), which uvloop does with less CPU than asyncio's own loop. Set before
    anything makes a loop."""
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def _quiet_garbage_collector() -> None:
    """Fewer and cheaper cyclic collections. The worker allocates tens of thousands of
    short-lived containers a second (decoded records, sums, lines) and makes no reference cycles
    of its own; Python's defaults (a young collection every 700 allocations, full ones over every
    long-lived object) would spend a real share of its CPU finding no garbage. What start-up made
    is frozen out of the collections."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def _wait_for_redis(settings: Settings, timeout_s: float = 30.0) -> None:
    """Give Redis a moment to come up (stacks start together); then fail clearly."""
    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=5)
    try:
        retry(
            client.ping,
            (redis.RedisError,),
            Backoff(0.5, 0.5, timeout_s),
            lambda exc: PortflowError(
                f"cannot reach Redis at {settings.redacted_redis_url}: {exc}"
            ),
        )
    finally:
        client.close()
