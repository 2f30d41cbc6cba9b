"""The Redis store: aggregates, per-partition offset high-water marks and the dedupe window.

Key layout (``R`` is ``pf{<topic prefix>}``; the braces are a Redis Cluster hash tag, so every
key one atomic step touches lives in one slot):

- ``R:hwm``                               hash ``<topic>:<partition>`` → last applied offset
- ``R:meta``                              hash ``tz`` → the reporting time zone the data uses,
                                          ``latest_event_ts`` → newest event time applied (s),
                                          ``epoch`` → a token made when the state was (re)started
- ``R:topic_ids``                         hash topic → the Kafka topic id the marks refer to
- ``R:lost``                              hash ``<topic>:<partition>`` → JSON list of
                                          [first, last] offset ranges Kafka deleted unread
- ``R:worker:<id>``                       JSON of a live worker's partitions (expires unless renewed)
- ``R:dedupe:<type>:<bucket>``             set of the event ids first applied in that bucket of
                                          Redis time (``DedupeWindow``); dropped once past the window
- ``R:agg:<type>:<measure>:<granule>``    hash cell → integer total (granule: a day or a month)

Effectively-once: ``apply`` runs one Lua script that checks the expected high-water marks (so a
zombie worker after a rebalance cannot apply twice), checks that no event id was seen before,
and only then writes the increments, the event ids and the new marks together. (When an id was
seen before, the script writes nothing and names it, so the caller can drop that event and try
again.) Redis runs a script atomically, so a crash leaves either all of a batch or none of it.

The dedupe window is kept in buckets rather than one key per id: a set per event type and slice
of Redis time, ``DedupeWindow.BUCKETS`` slices to a window. A step checks its ids against the
window's buckets with one ``SMISMEMBER`` each and adds them to the current bucket with one
``SADD``: in the benchmark this cut Redis' dedupe time per event, and an id takes 64 bytes
instead of the 154 of a key with its own TTL. An id is remembered for the window and at most one slice more.

Lost state: every step also checks the ``epoch`` token. Redis restarted empty (or ``portflow
rebuild``) has none, so no worker can add to a state that lost its history; each worker sees the
loss and re-reads its partitions from the start (see ``streams.positioning``).
"""

from __future__ import annotations

import asyncio
import functools
import json
import secrets
import time
from importlib import resources
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Optional

import redis
import redis.asyncio
import redis.asyncio.cluster
from redis.cluster import RedisCluster

from portflow.domain.aggregates import STORED_MEASURES
from portflow.domain.partitions import partition_name
from portflow.errors import PortflowError


@functools.cache
def lua(name: str) -> str:
    """A Lua program of ``portflow/adapters/lua/`` (package data), read once, when first used."""
    return resources.files("portflow.adapters").joinpath("lua", name).read_text()


# The epoch while ``drop_state`` deletes: matches no worker's epoch, and blocks a new one.
DROPPING = "dropping"


def _is_cluster_node(client: redis.Redis) -> bool:
    """Whether the server runs in cluster mode (False if it cannot be asked yet: a server that
    is still starting is treated as a plain one, and callers retry their own calls)."""
    try:
        return bool(client.info("cluster").get("cluster_enabled"))
    except redis.RedisError:
        return False


class StateConflict(Exception):
    """A high-water mark moved under us: another worker applied this partition meanwhile."""


class TimeZoneConflict(PortflowError, ValueError):
    """The aggregates were built in another reporting time zone than the one configured."""


class StateLost(Exception):
    """Redis no longer holds the state this worker was adding to (restarted empty, rebuilt)."""


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
_MEASURE_TABS = {event_type: "".join(f"\t{measure}" for measure in measures)
                 for event_type, measures in STORED_MEASURES.items()}

_CLIENT_OPTIONS = dict(socket_timeout=30, socket_connect_timeout=5, health_check_interval=15)


class RedisStore:
    """Aggregates and progress in Redis, behind names that say what they mean."""

    def __init__(self, client: redis.Redis, topic_prefix: str, url: Optional[str] = None) -> None:
        self.client = client
        self.url = url  # for the asyncio connection of ``apply``
        self._apply_on_loop: Optional[tuple[asyncio.AbstractEventLoop, Any]] = None
        self.root = f"pf{{{topic_prefix}}}"
        self.marks_key = f"{self.root}:hwm"
        self.meta_key = f"{self.root}:meta"
        self.topic_ids_key = f"{self.root}:topic_ids"
        self.lost_key = f"{self.root}:lost"
        self.aggregate_prefix = f"{self.root}:agg:"
        self._adopt_topic = client.register_script(lua("adopt_topic.lua"))

    @classmethod
    def from_url(cls, url: str, topic_prefix: str) -> "RedisStore":
        """A store on a Redis server, or on a Redis Cluster when the server at ``url`` is a
        cluster node (any node will do: the client learns the others from it)."""
        client = redis.Redis.from_url(url, **_CLIENT_OPTIONS)
        if _is_cluster_node(client):
            client.close()
            client = RedisCluster.from_url(url, **_CLIENT_OPTIONS)
        return cls(client, topic_prefix, url)

    def dedupe_prefix(self, event_type: str) -> str:
        """The dedupe buckets' keys of an event type, without the bucket number."""
        return f"{self.root}:dedupe:{event_type}:"

    def aggregate_key(self, event_type: str, measure: str, granule: str) -> str:
        return f"{self.aggregate_prefix}{event_type}:{measure}:{granule}"

    # progress ---------------------------------------------------------------------------------
    def marks(self) -> dict[str, int]:
        """``<topic>:<partition>`` → last applied offset, for every partition ever applied."""
        return {k.decode(): int(v) for k, v in self.client.hgetall(self.marks_key).items()}

    def marks_of(self, fields: list[str]) -> dict[str, int]:
        values = self.client.hmget(self.marks_key, fields) if fields else []
        return {f: (int(v) if v is not None else -1) for f, v in zip(fields, values)}

    def claim_time_zone(self, tz_name: str) -> None:
        """Record the reporting time zone, or refuse one that differs from the data's."""
        self.client.hsetnx(self.meta_key, "tz", tz_name)
        stored = self.client.hget(self.meta_key, "tz")
        if stored is not None and stored.decode() != tz_name:
            raise TimeZoneConflict(
                f"the aggregates in Redis were built with PORTFLOW_TZ={stored.decode()}, not "
                f"{tz_name}; use that zone, or rebuild into an empty Redis database"
            )

    def open_epoch(self, tz_name: str) -> str | None:
        """The current state's epoch token, starting a new state if Redis holds none; None
        while ``drop_state`` runs. Also claims the time zone, which an empty Redis forgot too.
        """
        self.client.hsetnx(self.meta_key, "epoch", secrets.token_hex(8))
        self.claim_time_zone(tz_name)
        epoch = self.epoch()
        return None if epoch == DROPPING else epoch

    def epoch(self) -> str | None:
        value = self.client.hget(self.meta_key, "epoch")
        return value.decode() if value is not None else None

    def adopt_topic_id(self, topic: str, topic_id: str, partitions: int) -> str:
        """Tie the marks of ``topic`` to this incarnation of it: ``same``, ``adopted``, or
        ``recreated`` (the topic was deleted and created again, so its old marks were dropped)."""
        fields = [partition_name(topic, p) for p in range(partitions)]
        result = self._adopt_topic(keys=[self.marks_key, self.topic_ids_key],
                                   args=[topic, topic_id, *fields])
        return ("same", "adopted", "recreated")[int(result)]

    def topic_ids_of(self, topics: list[str]) -> dict[str, str]:
        """The Kafka topic ids the marks of these topics were made on (where known)."""
        values = self.client.hmget(self.topic_ids_key, topics) if topics else []
        return {t: v.decode() for t, v in zip(topics, values) if v is not None}

    def record_lost(self, partition_name: str, first: int, last: int) -> None:
        """Note offsets that Kafka deleted before they were applied (an undercount to report)."""
        ranges = self.lost_offsets().get(partition_name, [])
        if [first, last] not in ranges:
            ranges.append([first, last])
            self.client.hset(self.lost_key, partition_name, json.dumps(ranges))

    def lost_offsets(self) -> dict[str, list[list[int]]]:
        """``<topic>:<partition>`` → offset ranges that were never applied and never will be."""
        return {k.decode(): json.loads(v) for k, v in self.client.hgetall(self.lost_key).items()}

    def drop_state(self) -> int:
        """Delete every aggregate, mark, dedupe id and epoch of this prefix (not the live-worker
        announcements); running workers notice and re-read their topics from the start.

        The epoch is set to ``DROPPING`` first, so no worker adds to (or restarts) a state that
        is half deleted; a new epoch can begin only once the meta hash itself is gone.
        """
        self.client.hset(self.meta_key, "epoch", DROPPING)
        deleted = 0
        for key in self.client.scan_iter(match=f"{self.root}:*", count=1000):
            if b":worker:" not in key and key != self.meta_key.encode():
                deleted += self.client.unlink(key)
        return deleted + self.client.unlink(self.meta_key)

    def latest_event_time(self) -> int | None:
        """The newest event time applied so far (Unix seconds), or None before any event."""
        value = self.client.hget(self.meta_key, "latest_event_ts")
        return int(value) if value is not None else None

    def time_zone(self) -> str | None:
        value = self.client.hget(self.meta_key, "tz")
        return value.decode() if value is not None else None

    def record_worker(self, worker_id: str, partitions: list[str], ttl_s: int) -> None:
        """Announce which partitions a live worker owns (for readiness checks and operators)."""
        body = json.dumps({"partitions": partitions, "at": time.time()})
        self.client.set(f"{self.root}:worker:{worker_id}", body, ex=ttl_s)

    def workers(self) -> dict[str, dict]:
        """Live workers and the partitions each owns."""
        found = {}
        for key in self.client.scan_iter(match=f"{self.root}:worker:*", count=1000):
            body = self.client.get(key)
            if body is not None:
                found[key.decode().split(":worker:", 1)[1]] = json.loads(body)
        return found

    # writes -----------------------------------------------------------------------------------
    async def apply(
        self,
        marks: Mapping[str, tuple[int, int]],
        event_ids: list[tuple[str, str]],
        increments: Iterable[tuple[str, str, str]],
        dedupe_ttl_seconds: int,
        latest_event_ts: int,
        epoch: str,
    ) -> ApplyOutcome:
        """Apply increments, event ids and new high-water marks as one atomic step.

        Asynchronous, on the running event loop: the worker's loop is busy reading Kafka, and a
        thread waiting for Redis beside it spent more CPU on the hand-over than Redis on the step.

        ``marks`` maps ``<topic>:<partition>`` to (expected current mark, new mark); -1 means none.
        ``event_ids`` are the (type, event id) of the events counted, each once.
        ``increments`` yields (type, granule, lines) as ``Increments.lines`` makes them.
        Raises ``StateLost`` when Redis is not at ``epoch`` any more and ``StateConflict`` when a
        mark is not what we expected; returns the (type, id) of the events seen before within
        the dedupe window (and writes nothing) when there are any.
        """
        window = DedupeWindow(dedupe_ttl_seconds)
        by_type: dict[str, list[str]] = {}
        for event_type, event_id in event_ids:
            by_type.setdefault(event_type, []).append(event_id)
        keys = [self.marks_key, self.meta_key]
        args: list = [epoch, window.width, window.older, window.keep, latest_event_ts, len(marks)]
        for name, (expected, new) in marks.items():
            args += [name, expected, new]
        args.append(len(by_type))
        for event_type, ids in by_type.items():
            args += [self.dedupe_prefix(event_type), len(ids), *ids]
        args.append(self.aggregate_prefix)
        args.append("\n".join([f"\t{event_type}\t{granule}{_MEASURE_TABS[event_type]}\n{lines}"
                               for event_type, granule, lines in increments if lines]))
        args.append(1 if isinstance(self.client, RedisCluster) else 0)
        result = await self._apply_script()(keys=keys, args=args)
        if result[0] == 3:
            raise StateLost(f"Redis no longer holds state epoch {epoch}")
        if result[0] == 1:
            raise StateConflict(
                f"high-water mark of {result[1].decode()} is {result[2].decode()}, "
                f"not {marks[result[1].decode()][0]}"
            )
        if result[0] == 2:
            in_order = [(t, i) for t, ids in by_type.items() for i in ids]  # as the script saw them
            return ApplyOutcome(applied=False, seen=[in_order[int(i) - 1] for i in result[1:]])
        return ApplyOutcome(applied=True)

    def _apply_script(self):
        """The apply script on an asyncio client of the running event loop (an asyncio
        connection belongs to one loop: a new loop gets a new client)."""
        loop = asyncio.get_running_loop()
        if self._apply_on_loop is None or self._apply_on_loop[0] is not loop:
            if self.url is None:
                raise RuntimeError("apply needs a store made by RedisStore.from_url")
            if isinstance(self.client, RedisCluster):
                client = redis.asyncio.cluster.RedisCluster.from_url(self.url, **_CLIENT_OPTIONS)
            else:
                client = redis.asyncio.Redis.from_url(self.url, **_CLIENT_OPTIONS)
            self._apply_on_loop = (loop, client.register_script(lua("apply.lua")))
        return self._apply_on_loop[1]

    # reads ------------------------------------------------------------------------------------
    def cells_per_granule(self, event_type: str, measure: str,
                          granules: list[str]) -> dict[str, dict[str, int]]:
        """Each granule's per-cell totals (one pipelined round trip)."""
        pipe = self.client.pipeline(transaction=False)
        for granule in granules:
            pipe.hgetall(self.aggregate_key(event_type, measure, granule))
        return {granule: {cell.decode(): int(value) for cell, value in mapping.items()}
                for granule, mapping in zip(granules, pipe.execute())}

    def first_day(self, event_type: str, measure: str) -> Optional[str]:
        """The earliest day granule holding any total of a measure (where its history starts),
        found from the month granules (a scan of a few hundred keys at most)."""
        prefix = self.aggregate_key(event_type, measure, "")
        months = sorted(
            name for key in self.client.scan_iter(match=f"{prefix}*", count=1000)
            if len(name := key.decode()[len(prefix):]) == 7)
        for month in months:
            days = [f"{month}-{d:02d}" for d in range(1, 32)]
            pipe = self.client.pipeline(transaction=False)
            for day in days:
                pipe.exists(self.aggregate_key(event_type, measure, day))
            found = [day for day, exists in zip(days, pipe.execute()) if exists]
            if found:
                return found[0]
        return None

    def cells(self, event_type: str, measure: str, granules: Iterable[str]) -> dict[str, int]:
        """The per-cell totals of a measure summed over granules (one pipelined round trip)."""
        pipe = self.client.pipeline(transaction=False)
        for granule in granules:
            pipe.hgetall(self.aggregate_key(event_type, measure, granule))
        totals: dict[str, int] = {}
        for mapping in pipe.execute():
            for cell, value in mapping.items():
                key = cell.decode()
                totals[key] = totals.get(key, 0) + int(value)
        return totals
