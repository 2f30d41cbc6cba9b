"""portflow's state in Redis as a whole: opening it for reading, whether it is complete, and
dropping it to be rebuilt from Kafka."""

from __future__ import annotations

import difflib
from collections.abc import Callable

from portflow.adapters.redis import DROPPING, RedisStore, TimeZoneConflict
from portflow.config import Settings
from portflow.domain.documents import JsonObject
from portflow.domain.partitions import split_partition_name
from portflow.errors import PortflowError
from portflow.services.progress import wait_until_applied


class Incomplete(PortflowError):
    """Kafka deleted records before they were applied: totals would be short."""


class NoWorker(PortflowError):
    """A rebuild that waits needs a live worker to do the re-reading."""


SHOWN_PREFIXES = 5  # of the other prefixes with a state, named when the configured one has none


class NoState(PortflowError):
    """No state under the topic prefix in this Redis database, or one being dropped: reading it
    would show no trade at all."""


def open_state(settings: Settings) -> RedisStore:
    """The Redis store of the topic prefix, refusing one where no worker ever opened a state
    (a wrong PORTFLOW_TOPIC_PREFIX or Redis database would otherwise read as a collapse of
    trade)."""
    store = RedisStore.from_url(settings.redis_url, settings.topic_prefix)
    check_state(store, settings)
    return store


def check_state(store: RedisStore, settings: Settings) -> None:
    """Raise ``NoState`` where no worker ever opened a state under the topic prefix."""
    if store.epoch() is None:
        raise no_state(settings, store)


def no_state(settings: Settings, store: RedisStore) -> NoState:
    """The error for a prefix without state, naming the prefixes that have one in that
    database, the likeliest typo first."""
    others = sorted(
        (p for p in store.prefixes_with_state() if p != settings.topic_prefix),
        key=lambda p: -difflib.SequenceMatcher(None, settings.topic_prefix, p).ratio(),
    )
    named = ", ".join(map(repr, others[:SHOWN_PREFIXES])) + (
        f" and {len(others) - SHOWN_PREFIXES} more" if len(others) > SHOWN_PREFIXES else ""
    )
    found = f"; topic prefixes with a state there: {named}" if others else ""
    return NoState(
        f"no state for topic prefix {settings.topic_prefix!r} in Redis database "
        f"{store.database} ({settings.redacted_redis_url}): no worker has opened one "
        f"there{found}. Check PORTFLOW_TOPIC_PREFIX and PORTFLOW_REDIS_URL (host and "
        "database), or start `portflow worker`"
    )


def open_store(settings: Settings) -> RedisStore:
    """The Redis store for reading the aggregates: a state exists, is not being dropped, and
    was aggregated in PORTFLOW_TZ."""
    store = RedisStore.from_url(settings.redis_url, settings.topic_prefix)
    check_readable(store, settings)
    return store


def check_readable(store: RedisStore, settings: Settings) -> bool:
    """Raise ``NoState`` unless a state exists and is not being dropped, ``TimeZoneConflict``
    unless it was aggregated in PORTFLOW_TZ; whether Kafka deleted offsets before they were
    applied (``check_complete`` says which)."""
    epoch, stored_tz, lost = store.reading_state()
    if epoch is None:
        raise no_state(settings, store)
    if epoch == DROPPING:
        raise NoState(
            f"the state of topic prefix {settings.topic_prefix!r} is being dropped "
            "(`portflow rebuild`); try again once the workers re-read the topics"
        )
    if stored_tz and stored_tz != settings.tz_name:
        raise TimeZoneConflict(
            f"the aggregates were built with PORTFLOW_TZ={stored_tz}, "
            f"not {settings.tz_name}; set PORTFLOW_TZ={stored_tz}"
        )
    return lost


def check_complete(
    store: RedisStore,
    result: JsonObject,
    allow_incomplete: bool,
    command: str,
    allowing: str = "--allow-incomplete",
) -> str | None:
    """Where Kafka deleted records before they were applied: raise ``Incomplete``, or (when
    allowed) name the lost offsets in ``result`` and return the warning to show. (``command``
    and ``allowing`` complete the advice: "then report with --allow-incomplete".)"""
    lost = store.lost_offsets()
    if not lost:
        return None
    ranges = "; ".join(
        f"{name} offsets " + ", ".join(f"{a}-{b}" for a, b in spans)
        for name, spans in sorted(lost.items())
    )
    message = (
        f"the totals are incomplete: Kafka deleted records before they were applied "
        f"(retention): {ranges}"
    )
    if not allow_incomplete:
        raise Incomplete(
            f"{message}. Re-publish those events from their source (portflow "
            f"replay; duplicates are counted once), then {command} with "
            f"{allowing}."
        )
    result["incomplete"] = {"lost_offsets": lost}
    return message


def rebuild(
    settings: Settings,
    confirm: Callable[[str], None],
    say: Callable[[str], None],
    wait_s: float | None = None,
) -> float | None:
    """Drop the topic prefix's state so that the running workers recompute it from Kafka;
    with ``wait_s``, wait until they re-applied at least what was applied before (seconds)."""
    store = RedisStore.from_url(settings.redis_url, settings.topic_prefix)  # any time zone
    workers = store.workers()
    before = store.marks()
    if wait_s is not None and not workers:
        raise NoWorker(
            "no live worker: start `portflow worker` first (the workers do the re-reading)"
        )
    confirm(
        f"drop portflow's state for topic prefix {settings.topic_prefix!r} in "
        f"{settings.redacted_redis_url} and recompute it from Kafka?"
    )
    deleted = store.drop_state()
    say(f"dropped {deleted:,} keys; {len(workers)} live worker(s) re-read from the start")
    if wait_s is None:
        return None
    applied_before = {
        split_partition_name(name): (0, mark) for name, mark in before.items() if mark >= 0
    }
    return wait_until_applied(store, applied_before, wait_s)
