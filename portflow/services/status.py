"""``portflow status``: what the state of a topic prefix in Redis holds and what the workers did.

Read from Redis alone (no Kafka): the state's epoch and time zone, the newest event applied,
each partition's mark, the live workers, offsets lost to retention, and the events the workers
applied, skipped as duplicates or rejected since the state began. ``GET /v1/status`` adds
Kafka's end offsets and the lag, which its own thread reads (``with_end_offsets``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import NotRequired, TypedDict
from zoneinfo import ZoneInfo

from portflow.adapters.redis import DROPPING, Outcomes, RedisStore
from portflow.adapters.redis.progress import Worker
from portflow.config import Settings
from portflow.domain.event_time import AHEAD, BEHIND
from portflow.domain.partitions import split_partition_name


class StateJson(TypedDict):
    epoch: str | None
    dropping: bool  # ``rebuild`` is deleting it
    time_zone: str | None  # the state's, once a worker claimed one
    configured_time_zone: str  # PORTFLOW_TZ
    newest_event: str | None  # RFC 3339


class GuardJson(TypedDict):
    ahead: int
    behind: int


class OutcomesJson(TypedDict):
    applied: int
    duplicates: int
    rejected: dict[str, int]  # by rejection code
    rejected_total: int
    event_time_guard: GuardJson


class TopicJson(TypedDict):
    topic: str
    topic_id: str | None
    marks: dict[str, int]  # partition -> last applied offset


class TopicWithEndsJson(TopicJson):
    end_offsets: dict[str, int]  # partition -> the offset Kafka gives the next record
    lag: int


class WorkerJson(TypedDict):
    id: str
    partitions: list[str]
    announced_s_ago: float


class KafkaJson(TypedDict):
    """How ``GET /v1/status`` read Kafka's end offsets."""

    bootstrap: str
    read_s_ago: float | None  # None: not read yet
    error: str | None  # the last reading's, if it failed


class Status(TypedDict):
    """The status object (``portflow status --json``, ``GET /v1/status``)."""

    topic_prefix: str
    redis: str  # its URL without the password
    database: int
    state: StateJson
    outcomes: OutcomesJson
    topics: Sequence[TopicJson]
    workers: list[WorkerJson]
    lost_offsets: dict[str, list[list[int]]]
    kafka: NotRequired[KafkaJson]  # ``GET /v1/status`` only


def read_status(store: RedisStore, settings: Settings) -> Status:
    """The status object of the store's state (``open_state`` checked that there is one)."""
    stored_tz = store.time_zone()
    newest = store.latest_event_time()
    zone = ZoneInfo(stored_tz) if stored_tz else settings.tz
    by_topic = _marks_by_topic(store.marks(), settings.event_topics)
    topic_ids = store.topic_ids_of(sorted(by_topic))
    now = time.time()
    epoch = store.epoch()
    return {
        "topic_prefix": settings.topic_prefix,
        "redis": settings.redacted_redis_url,
        "database": store.database,
        "state": {
            "epoch": epoch,
            "dropping": epoch == DROPPING,
            "time_zone": stored_tz,
            "configured_time_zone": settings.tz_name,
            "newest_event": None
            if newest is None
            else datetime.fromtimestamp(newest, zone).isoformat(),
        },
        "outcomes": outcomes_json(store.outcomes()),
        "topics": [
            {"topic": topic, "topic_id": topic_ids.get(topic), "marks": partitions}
            for topic, partitions in by_topic.items()
        ],
        "workers": _workers_json(store.workers(), now),
        "lost_offsets": store.lost_offsets(),
    }


def _marks_by_topic(marks: Mapping[str, int], topics: Iterable[str]) -> dict[str, dict[str, int]]:
    """Each topic's partition marks, by partition number (as text), in partition order; the
    event topics first, listed even without marks."""
    by_topic: dict[str, dict[str, int]] = {topic: {} for topic in topics}
    for name, mark in sorted(marks.items(), key=lambda item: split_partition_name(item[0])):
        topic, partition = split_partition_name(name)
        by_topic.setdefault(topic, {})[str(partition)] = mark
    return by_topic


def _workers_json(workers: Mapping[str, Worker], now: float) -> list[WorkerJson]:
    """The workers announced, by id: their partitions and how long ago they said so."""
    return [
        {
            "id": worker_id,
            "partitions": info.get("partitions", []),
            "announced_s_ago": round(max(0.0, now - info.get("at", now)), 1),
        }
        for worker_id, info in sorted(workers.items())
    ]


def with_end_offsets(status: Status, ends: Mapping[tuple[str, int], int] | None) -> Status:
    """The status object with each topic's end offsets in Kafka (the offset the next record
    gets) and its lag: the records written that are not applied yet (past each partition's
    mark). ``ends``: (topic, partition) → end offset, None where Kafka could not be read."""
    if ends is None:
        return status
    topics: list[TopicWithEndsJson] = []
    for topic in status["topics"]:
        topic_ends = {
            str(p): end for (name, p), end in sorted(ends.items()) if name == topic["topic"]
        }
        lag = sum(max(0, end - 1 - topic["marks"].get(p, -1)) for p, end in topic_ends.items())
        topics.append({**topic, "end_offsets": topic_ends, "lag": lag})
    with_ends: Status = {**status, "topics": topics}
    return with_ends


def outcomes_json(outcomes: Outcomes) -> OutcomesJson:
    return {
        "applied": outcomes.applied,
        "duplicates": outcomes.duplicates,
        "rejected": outcomes.rejected,
        "rejected_total": outcomes.rejected_total,
        "event_time_guard": {
            "ahead": outcomes.rejected.get(AHEAD, 0),
            "behind": outcomes.rejected.get(BEHIND, 0),
        },
    }


def status_text(status: Status) -> str:
    """The status object as lines for a terminal."""
    state = status["state"]
    lines = [
        f"topic prefix {status['topic_prefix']!r} in Redis database {status['database']} "
        f"({status['redis']})",
        f"  state epoch {state['epoch']}"
        + (" (being dropped by `portflow rebuild`)" if state["dropping"] else ""),
        f"  time zone {state['time_zone'] or '(none recorded yet)'}" + zone_mismatch(state),
        f"  newest event applied: {newest_text(state)}",
        *outcome_lines(status["outcomes"]),
        "partitions (last applied offset):",
        *(
            f"  {topic['topic']}"
            + (f" (Kafka id {topic['topic_id']})" if topic["topic_id"] else "")
            + ": "
            + (
                ", ".join(f"{p}: {mark:,}" for p, mark in topic["marks"].items())
                or "none applied yet"
            )
            for topic in status["topics"]
        ),
        f"live workers: {len(status['workers'])}",
        *(
            f"  {w['id']}: {len(w['partitions'])} partition(s), announced "
            f"{w['announced_s_ago']:g}s ago"
            for w in status["workers"]
        ),
        "offsets lost to retention (deleted by Kafka before they were applied): "
        + (
            "; ".join(
                f"{name} " + ", ".join(f"{a}-{b}" for a, b in spans)
                for name, spans in sorted(status["lost_offsets"].items())
            )
            or "none"
        ),
    ]
    return "\n".join(lines)


def zone_mismatch(state: StateJson) -> str:
    if state["time_zone"] in (None, state["configured_time_zone"]):
        return ""
    return (
        f" (PORTFLOW_TZ is {state['configured_time_zone']}: reports refuse to run until "
        "the two agree)"
    )


def newest_text(state: StateJson) -> str:
    if state["newest_event"] is None:
        return "none yet"
    return (
        f"{datetime.fromisoformat(state['newest_event']):%Y-%m-%d %H:%M:%S} "
        f"{state['time_zone'] or state['configured_time_zone']}"
    )


def outcome_lines(outcomes: OutcomesJson) -> list[str]:
    guard = outcomes["event_time_guard"]
    others = {code: n for code, n in outcomes["rejected"].items() if code not in (AHEAD, BEHIND)}
    return [
        "events handled since the state began:",
        f"  applied {outcomes['applied']:,}, skipped as duplicates {outcomes['duplicates']:,}, "
        f"rejected {outcomes['rejected_total']:,}",
        f"  turned away by the event-time guard: {guard['ahead']:,} ahead of the clock, "
        f"{guard['behind']:,} too old",
        "  other rejections: "
        + (", ".join(f"{code} {n:,}" for code, n in others.items()) or "none"),
    ]
