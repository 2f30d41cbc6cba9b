"""The Redis store: ``RedisStore`` and its atomic ``apply`` step (key layout:
``portflow.adapters.redis``)."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from importlib import resources
from operator import itemgetter
from typing import Any

import msgspec
import redis
import redis.asyncio
import redis.asyncio.cluster
from redis.cluster import RedisCluster
from redis.commands.core import AsyncScript

from portflow.adapters.redis.aggregates import Aggregates
from portflow.adapters.redis.progress import RUN_OUTCOME_TTL_S, RUN_REJECTIONS_KEPT, Progress
from portflow.adapters.redis.rates import Rates
from portflow.adapters.redis.redrives import Redrives
from portflow.domain.aggregates import STORED_MEASURES


@functools.cache
def lua(name: str) -> str:
    """A Lua program of ``portflow/adapters/redis/lua/`` (package data), read once, when first
    used."""
    return resources.files("portflow.adapters.redis").joinpath("lua", name).read_text()


def _is_cluster_node(client: redis.Redis) -> bool:
    """Whether the server runs in cluster mode (False if it cannot be asked yet: a server that
    is still starting is treated as a plain one, and callers retry their own calls)."""
    try:
        return bool(client.info("cluster").get("cluster_enabled"))
    except redis.RedisError:
        return False


class StateConflict(Exception):
    """A mark moved under us: another worker applied this partition meanwhile."""


class StateLost(Exception):
    """Redis no longer holds the state this worker was adding to (restarted empty, rebuilt)."""


class ApplyReply(IntEnum):
    """The first element of the apply script's reply (``lua/apply.lua`` names its return sites
    the same way; a unit test holds the two together)."""

    APPLIED = 0  # everything written
    MARK_MOVED = 1  # then the partition and its mark in Redis; nothing written
    SEEN_BEFORE = 2  # then the 1-based indexes of the ids seen before; nothing written
    STATE_LOST = 3  # Redis is not at the step's epoch; nothing written


@dataclass
class ApplyOutcome:
    applied: bool
    seen: list[tuple[str, str]] = field(default_factory=list)  # (type, id) seen before


@dataclass(frozen=True)
class DedupeWindow:
    """How ``PORTFLOW_DEDUPE_TTL`` is kept: ids in buckets of ``width`` seconds of Redis time;
    a step checks the current bucket and the ``older`` ones before it, which together cover
    the TTL, and a bucket is freed once all of its ids are past it (by the first step after
    that; else it expires ``keep`` seconds after its end). An id is thus remembered for at
    least the TTL and at most one bucket longer."""

    BUCKETS = 7  # buckets to a window: a check costs BUCKETS + 1 lookups per id

    ttl_s: int

    @property
    def width(self) -> int:
        return max(1, -(-self.ttl_s // self.BUCKETS))

    @property
    def older(self) -> int:
        return -(-self.ttl_s // self.width)

    @property
    def keep(self) -> int:
        return self.ttl_s + self.width  # a bucket's life after its end: the TTL, one spare


# The measures of an event type as the apply script's granule headers list them.
_MEASURE_TABS = {
    event_type: "".join(f"\t{measure}" for measure in measures)
    for event_type, measures in STORED_MEASURES.items()
}

_CLIENT_OPTIONS: dict[str, Any] = {
    "socket_timeout": 30,
    "socket_connect_timeout": 5,
    "health_check_interval": 15,
}


class RedisStore(Aggregates, Progress, Redrives, Rates):
    """Aggregates and progress in Redis, behind names that say what they mean; ``apply`` writes
    both in one atomic step."""

    def __init__(
        self, client: redis.Redis | RedisCluster, topic_prefix: str, url: str | None = None
    ) -> None:
        self.client = client
        self.url = url  # for the asyncio connection of ``apply``
        self._apply_on_loop: tuple[asyncio.AbstractEventLoop, AsyncScript] | None = None
        self.root = f"pf{{{topic_prefix}}}"
        self.marks_key = f"{self.root}:hwm"
        self.meta_key = f"{self.root}:meta"
        self.topic_ids_key = f"{self.root}:topic_ids"
        self.lost_key = f"{self.root}:lost"
        self.outcomes_key = f"{self.root}:outcomes"
        self.redrives_key = f"{self.root}:redriven"  # kept by drop_state
        self.rates_key = f"{self.root}:rates"  # kept by drop_state
        self.aggregate_prefix = f"{self.root}:agg:"
        self.versions_key = f"{self.root}:versions"  # per "type:granule": bumped by each write
        self._adopt_topic = client.register_script(lua("adopt_topic.lua"))

    @classmethod
    def from_url(cls, url: str, topic_prefix: str, **client_options: Any) -> RedisStore:
        """A store on a Redis server, or on a Redis Cluster when the server at ``url`` is a
        cluster node (any node will do: the client learns the others from it).
        ``client_options`` override the clients' defaults (the API's shorter timeouts)."""
        options = {**_CLIENT_OPTIONS, **client_options}
        client = redis.Redis.from_url(url, **options)
        if _is_cluster_node(client):
            client.close()
            return cls(RedisCluster.from_url(url, **options), topic_prefix, url)
        return cls(client, topic_prefix, url)

    @property
    def database(self) -> int:
        """The Redis database number (always 0 on a Redis Cluster)."""
        pool = getattr(self.client, "connection_pool", None)
        return int(pool.connection_kwargs.get("db", 0)) if pool is not None else 0

    def dedupe_prefix(self, event_type: str) -> str:
        """The dedupe buckets' keys of an event type, without the bucket number."""
        return f"{self.root}:dedupe:{event_type}:"

    # writes -----------------------------------------------------------------------------------
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
        """Apply increments, event ids and new marks as one atomic step.

        Asynchronous, on the running event loop: the worker's loop is busy reading Kafka, and a
        thread waiting for Redis beside it spent more CPU on the hand-over than Redis on the step.

        ``marks`` maps ``<topic>:<partition>`` to (expected current mark, new mark); -1 means none.
        ``event_ids`` are the (type, event id) of the events counted, each once.
        ``increments`` yields (type, granule, lines) as ``Increments.lines`` makes them.
        ``outcome_counts`` maps a replay run (None: the whole state) to the ``Outcomes`` fields
        to add (``applied``, ``duplicates``, ``rejected:<code>``); ``run_rejections`` a run to
        its rejections to keep (the first ``RUN_REJECTIONS_KEPT`` of a run are).
        Raises ``StateLost`` when Redis is not at ``epoch`` any more and ``StateConflict`` when a
        mark is not what we expected; returns the (type, id) of the events seen before within
        the dedupe window (and writes nothing) when there are any.
        """
        window = DedupeWindow(dedupe_ttl_seconds)
        by_type = {
            event_type: [i for t, i in event_ids if t == event_type]  # (a step's ids
            for event_type in dict.fromkeys(map(itemgetter(0), event_ids))
        }  # are of 1 type)
        keys = [self.marks_key, self.meta_key, self.versions_key]
        args: list[bytes | str | int] = [
            epoch,
            window.width,
            window.older,
            window.keep,
            "" if latest_event_ts is None else latest_event_ts,
            len(marks),
        ]
        for name, (expected, new) in marks.items():
            args += [name, expected, new]
        args.append(len(by_type))
        for event_type, ids in by_type.items():
            # one MessagePack array, not an argument per id: the client packs each argument in
            # Python, and the script unpacks the array byte for byte
            args += [self.dedupe_prefix(event_type), msgspec.msgpack.encode(ids)]
        args.append(self.aggregate_prefix)
        args.append(
            "\n".join(
                [
                    f"\t{event_type}\t{granule}{_MEASURE_TABS[event_type]}\n{lines}"
                    for event_type, granule, lines in increments
                    if lines
                ]
            )
        )
        args.append(1 if isinstance(self.client, RedisCluster) else 0)
        args += self._outcome_args(outcome_counts or {}, run_rejections or {})
        result = await self._apply_script()(keys=keys, args=args)
        reply = result[0]
        if reply == ApplyReply.STATE_LOST:
            raise StateLost(f"Redis no longer holds state epoch {epoch}")
        if reply == ApplyReply.MARK_MOVED:
            raise StateConflict(
                f"the mark of {result[1].decode()} is {result[2].decode()}, "
                f"not {marks[result[1].decode()][0]}"
            )
        if reply == ApplyReply.SEEN_BEFORE:
            in_order = [(t, i) for t, ids in by_type.items() for i in ids]  # as the script saw them
            return ApplyOutcome(applied=False, seen=[in_order[int(i) - 1] for i in result[1:]])
        return ApplyOutcome(applied=True)

    def _outcome_args(
        self,
        counts: Mapping[str | None, Mapping[str, int]],
        rejections: Mapping[str, list[dict[str, Any]]],
    ) -> list[bytes | int]:
        """The apply script's last arguments: its outcome counts (a MessagePack array of
        [key, field, n]), the rejections to keep ([list key, JSON]), the runs' keys to expire,
        their time to live and how many rejections a run keeps."""
        increments = [
            [self.outcomes_key if run is None else self.run_key(run), name, n]
            for run, fields in counts.items()
            for name, n in fields.items()
            if n
        ]
        kept = [
            [f"{self.run_key(run)}:rejections", json.dumps(rejection)]
            for run, run_rejections in rejections.items()
            for rejection in run_rejections
        ]
        runs = [self.run_key(run) for run in counts if run is not None]
        expiring = runs + [f"{key}:rejections" for key in runs]
        return [
            msgspec.msgpack.encode(increments),
            msgspec.msgpack.encode(kept),
            msgspec.msgpack.encode(expiring),
            RUN_OUTCOME_TTL_S,
            RUN_REJECTIONS_KEPT,
        ]

    def _apply_script(self) -> AsyncScript:
        """The apply script on an asyncio client of the running event loop (an asyncio
        connection belongs to one loop: a new loop gets a new client)."""
        loop = asyncio.get_running_loop()
        if self._apply_on_loop is None or self._apply_on_loop[0] is not loop:
            if self.url is None:
                raise RuntimeError("apply needs a store made by RedisStore.from_url")
            client: redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster
            if isinstance(self.client, RedisCluster):
                client = redis.asyncio.cluster.RedisCluster.from_url(self.url, **_CLIENT_OPTIONS)
            else:
                client = redis.asyncio.Redis.from_url(self.url, **_CLIENT_OPTIONS)
            self._apply_on_loop = (loop, client.register_script(lua("apply.lua")))
        return self._apply_on_loop[1]


class AsyncRedisStore:
    """A ``RedisStore`` as the worker's processor calls it (``portflow.services.processing.Store``),
    every call a coroutine: ``apply`` on the event loop, the blocking reads in a thread, so the
    loop reading Kafka never waits on them."""

    def __init__(self, store: RedisStore) -> None:
        self.store = store

    async def open_epoch(self, tz_name: str) -> str | None:
        return await asyncio.to_thread(self.store.open_epoch, tz_name)

    async def marks_of(self, names: list[str]) -> dict[str, int]:
        return await asyncio.to_thread(self.store.marks_of, names)

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
        return await self.store.apply(
            marks,
            event_ids,
            increments,
            dedupe_ttl_seconds,
            latest_event_ts,
            epoch,
            outcome_counts,
            run_rejections,
        )
