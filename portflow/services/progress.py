"""Has the worker applied what was published? The barrier behind ``--wait``.

It compares the offsets the broker returned for the records published with the workers'
per-partition marks in Redis (never with ListOffsets, which some brokers answer
wrongly). Kafka's client and tqdm are imported where they are used: reports read their state
through this module too.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from redis import BusyLoadingError, RedisError
from redis import ConnectionError as RedisConnectionError
from redis import TimeoutError as RedisTimeoutError

from portflow.adapters.redis import RedisStore
from portflow.config import Settings
from portflow.domain.partitions import partition_name
from portflow.errors import PortflowError

# Redis failing as a restart does: waiting rides it out (until the timeout).
REDIS_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, BusyLoadingError)


class NotApplied(PortflowError, RuntimeError):
    """The workers did not apply what was published within the time allowed."""


class CannotWait(PortflowError, RuntimeError):
    """Redis, where the workers' progress is, cannot be read."""


def store_to_wait_on(settings: Settings) -> tuple[RedisStore, str | None]:
    """The store that ``--wait`` reads, checked before anything is published: Redis answers and
    the workers' marks can be read. The warning says when no live worker is announced (waiting
    then lasts until one starts, or the timeout)."""
    try:
        store = RedisStore.from_url(settings.redis_url, settings.topic_prefix)
        store.marks()
        workers = store.workers()
    except RedisError as exc:
        raise CannotWait(
            f"--wait reads the workers' progress in Redis, which cannot be read at "
            f"{settings.redacted_redis_url} ({exc}); nothing was published "
            "(see PORTFLOW_REDIS_URL)"
        ) from None
    if workers:
        return store, None
    return store, (
        f"no live worker for topic prefix {settings.topic_prefix!r} in this Redis: "
        "--wait waits for one to handle the records (start `portflow worker`)"
    )


def current_topic_ids(settings: Settings) -> dict[str, str]:
    """The event topics' Kafka ids now (empty where the broker has none to give)."""
    from portflow.adapters.kafka import TopicIds

    ids = TopicIds(settings)
    try:
        return {topic: topic_id for topic, (topic_id, _) in ids().items()}
    finally:
        ids.close()


def progress_bar_disabled(progress: bool | None) -> bool | None:
    """tqdm's ``disable``: None shows bars only on a terminal; True/False force them."""
    return None if progress is None else not progress


def wait_until_applied(
    store: RedisStore,
    offsets: dict[tuple[str, int], tuple[int, int]],
    timeout_s: float,
    progress: bool | None = None,
    topic_ids: Mapping[str, str] | None = None,
) -> float:
    """Block until every partition's mark reaches our last offset; return seconds.

    The mark moves past applied, duplicate and rejected records alike, so this is a barrier
    for everything we published. With ``topic_ids`` (topic → the Kafka id it had when we
    published), marks count only once the workers have tied them to those ids: marks left
    from an earlier topic of the same name (a broker that lost its data) must not pass.
    Redis restarting meanwhile is waited out: the workers re-read what it lost.
    """
    from tqdm import tqdm

    started = time.monotonic()
    targets = {partition_name(*tp): last for tp, (_, last) in offsets.items()}
    firsts = {partition_name(*tp): first for tp, (first, _) in offsets.items()}
    total = sum(targets[n] - firsts[n] + 1 for n in targets)
    with tqdm(
        total=total, unit="rec", desc="applied", disable=progress_bar_disabled(progress)
    ) as bar:
        while True:
            try:
                marks, ids_adopted = _progress(store, targets, topic_ids)
            except REDIS_UNAVAILABLE as exc:  # a restart: the workers re-read, so do we
                if time.monotonic() - started > timeout_s:
                    raise _redis_unreadable(timeout_s, exc) from None
                time.sleep(0.5)
                continue
            bar.update(_applied(marks, firsts, targets) - bar.n)
            behind = {n: (marks[n], targets[n]) for n in targets if marks[n] < targets[n]}
            if not behind and ids_adopted:
                return time.monotonic() - started
            if time.monotonic() - started > timeout_s:
                raise _timed_out(timeout_s, behind, ids_adopted, store.root)
            time.sleep(0.1)


def _progress(
    store: RedisStore, targets: Mapping[str, int], topic_ids: Mapping[str, str] | None
) -> tuple[dict[str, int], bool]:
    """The partitions' marks, and whether the workers have adopted the topics' ids."""
    marks = store.marks_of(sorted(targets))
    ids_adopted = not topic_ids or store.topic_ids_of(sorted(topic_ids)) == dict(topic_ids)
    return marks, ids_adopted


def _applied(
    marks: Mapping[str, int], firsts: Mapping[str, int], targets: Mapping[str, int]
) -> int:
    """How many of the records published the marks have passed."""
    return sum(min(max(marks[n] - firsts[n] + 1, 0), targets[n] - firsts[n] + 1) for n in targets)


def _redis_unreadable(timeout_s: float, exc: Exception) -> NotApplied:
    return NotApplied(
        f"timed out after {timeout_s:g}s: Redis, where the "
        f"workers' progress is, cannot be read ({exc})"
    )


def _timed_out(
    timeout_s: float, behind: Mapping[str, tuple[int, int]], ids_adopted: bool, root: str
) -> NotApplied:
    """What is still awaited (the first four partitions behind) when the time is up."""
    waiting = [f"{n} at {m} of {t}" for n, (m, t) in sorted(behind.items())[:4]]
    if not ids_adopted:
        waiting.insert(0, "the topics' current Kafka ids not yet seen by a worker")
    return NotApplied(
        f"timed out after {timeout_s:g}s: {len(behind)} partition(s) not yet applied "
        f"({', '.join(waiting)}). Is `portflow worker` running against "
        f"this Redis and topic prefix {root!r}?"
    )
