"""What the workers have applied: per-partition marks, the state's epoch and time zone, the
topics' ids, offsets lost to retention, the live workers (key layout:
``portflow.adapters.redis``)."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, TypedDict

from portflow.adapters.redis.keys import StoreKeys, text
from portflow.domain.partitions import partition_name
from portflow.errors import PortflowError

# The epoch while ``drop_state`` deletes: matches no worker's epoch, and blocks a new one.
DROPPING: Final = "dropping"


class TimeZoneConflict(PortflowError, ValueError):
    """The aggregates were built in another reporting time zone than the one configured: a
    worker refuses to add to them, a report to read them."""


# The version of the key layout this portflow reads and writes (README, "Redis layout"), kept in
# the meta hash as ``layout``. Bumped when a release changes what the keys hold; a state made
# before the field existed is of layout 1.
LAYOUT: Final = 1


class LayoutConflict(PortflowError, ValueError):
    """Redis holds a state of a key layout this portflow does not know (another release's)."""


def refuse_foreign_layout(stored: bytes | str | None) -> None:
    """Refuse a state whose layout is not ours, naming both (None: no state, or one made before
    the layout was recorded: ours)."""
    if stored is None:
        return
    stored = stored.decode() if isinstance(stored, bytes) else stored
    if stored != str(LAYOUT):
        raise LayoutConflict(
            f"the state in Redis has key layout {stored}; this portflow reads layout {LAYOUT}: "
            "run the portflow release that made it, or rebuild the state from Kafka (README, "
            '"Upgrades": `portflow rebuild --yes`; under `portflow up --data DIR`, move '
            "DIR/redis away)"
        )


# How long a replay run's outcome is kept after its last record was handled.
RUN_OUTCOME_TTL_S: Final = 7 * 86400
# The rejections of a run kept with their reasons (the rest are only counted).
RUN_REJECTIONS_KEPT: Final = 20


class RunRejection(TypedDict):
    """One rejected event of a replay run, kept with its reason (``Outcomes.rejections``)."""

    partition: str  # ``<topic>:<partition>``
    offset: int
    batch_index: int | None  # the event's place in a batch record; None for a single event
    code: str
    reason: str


class Worker(TypedDict):
    """A live worker's announcement (``Progress.record_worker``)."""

    partitions: list[str]
    at: float  # Unix time of the announcement


@dataclass(frozen=True)
class Outcomes:
    """What the workers did to events: applied, skipped as duplicates, rejected by code.

    For the whole state (``Progress.outcomes``) or one replay run (``Progress.run_outcomes``,
    the records that carried its ``portflow-replay-run`` header), counted in the same atomic
    step that applies the events, so each is counted exactly once. ``rejections`` (runs only)
    holds the first few (``RunRejection``).
    """

    applied: int = 0
    duplicates: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    rejections: list[RunRejection] = field(default_factory=list)

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    @classmethod
    def from_hash(
        cls, fields: Mapping[bytes | str, bytes | str], rejections: Sequence[bytes | str] = ()
    ) -> Outcomes:
        counts = {text(k): int(v) for k, v in fields.items()}
        return cls(
            counts.pop("applied", 0),
            counts.pop("duplicates", 0),
            {
                k.removeprefix("rejected:"): v
                for k, v in sorted(counts.items())
                if k.startswith("rejected:")
            },
            [json.loads(r) for r in rejections],
        )


class Progress(StoreKeys):
    """The progress half of ``RedisStore`` (its client, root and key names)."""

    def marks(self) -> dict[str, int]:
        """``<topic>:<partition>`` → last applied offset, for every partition ever applied."""
        return {text(k): int(v) for k, v in self.client.hgetall(self.marks_key).items()}

    def marks_of(self, fields: list[str]) -> dict[str, int]:
        values = self.client.hmget(self.marks_key, fields) if fields else []
        return {f: (int(v) if v is not None else -1) for f, v in zip(fields, values, strict=True)}

    def claim_time_zone(self, tz_name: str) -> None:
        """Record the reporting time zone, or refuse one that differs from the data's."""
        self.client.hsetnx(self.meta_key, "tz", tz_name)
        stored = self.client.hget(self.meta_key, "tz")
        if stored is not None and text(stored) != tz_name:
            raise TimeZoneConflict(
                f"the aggregates in Redis were built with PORTFLOW_TZ={text(stored)}, not "
                f"{tz_name}; use that zone, or rebuild into an empty Redis database"
            )

    def open_epoch(self, tz_name: str) -> str | None:
        """The current state's epoch token, starting a new state if Redis holds none; None
        while ``drop_state`` runs. Also claims the time zone, which an empty Redis forgot too.
        """
        self.client.hsetnx(self.meta_key, "epoch", secrets.token_hex(8))
        self.client.hsetnx(self.meta_key, "layout", LAYOUT)
        self.check_layout()
        self.claim_time_zone(tz_name)
        epoch = self.epoch()
        return None if epoch == DROPPING else epoch

    def check_layout(self) -> None:
        """Raise ``LayoutConflict`` if the state in Redis is of a key layout not ours."""
        refuse_foreign_layout(self.client.hget(self.meta_key, "layout"))

    def epoch(self) -> str | None:
        value = self.client.hget(self.meta_key, "epoch")
        return text(value) if value is not None else None

    def adopt_topic_id(self, topic: str, topic_id: str, partitions: int) -> str:
        """Tie the marks of ``topic`` to this incarnation of it: ``same``, ``adopted``, or
        ``recreated`` (the topic was deleted and created again, so its old marks were dropped)."""
        fields = [partition_name(topic, p) for p in range(partitions)]
        result = self._adopt_topic(
            keys=[self.marks_key, self.topic_ids_key], args=[topic, topic_id, *fields]
        )
        return ("same", "adopted", "recreated")[int(result)]

    def topic_ids_of(self, topics: list[str]) -> dict[str, str]:
        """The Kafka topic ids the marks of these topics were made on (where known)."""
        values = self.client.hmget(self.topic_ids_key, topics) if topics else []
        return {t: text(v) for t, v in zip(topics, values, strict=True) if v is not None}

    def record_lost(self, partition_name: str, first: int, last: int) -> None:
        """Note offsets that Kafka deleted before they were applied (an undercount to report)."""
        ranges = self.lost_offsets().get(partition_name, [])
        if [first, last] not in ranges:
            ranges.append([first, last])
            self.client.hset(self.lost_key, partition_name, json.dumps(ranges))

    def lost_offsets(self) -> dict[str, list[list[int]]]:
        """``<topic>:<partition>`` → offset ranges that were never applied and never will be."""
        return {text(k): json.loads(v) for k, v in self.client.hgetall(self.lost_key).items()}

    def drop_state(self) -> int:
        """Delete every aggregate, mark, dedupe id and epoch of this prefix (not the live-worker
        announcements, nor the re-drive ledger: re-reading the topics does not undo a re-drive,
        nor the USD rates: they come from a file, not from the topics); running workers notice
        and re-read their topics from the start.

        The epoch is set to ``DROPPING`` first, so no worker adds to (or restarts) a state that
        is half deleted; a new epoch can begin only once the meta hash itself is gone.
        """
        self.client.hset(self.meta_key, "epoch", DROPPING)
        deleted = 0
        kept = {self.meta_key.encode(), self.redrives_key.encode(), self.rates_key.encode()}
        for key in self.client.scan_iter(match=f"{self.root}:*", count=1000):
            if b":worker:" not in key and key not in kept:
                deleted += self.client.unlink(key)
        return deleted + self.client.unlink(self.meta_key)

    def outcomes(self) -> Outcomes:
        """Every event the workers handled since the state began (a rebuild starts again)."""
        return Outcomes.from_hash(self.client.hgetall(self.outcomes_key))

    def run_outcomes(self, run_id: str) -> Outcomes:
        """The events of one replay run handled so far (kept ``RUN_OUTCOME_TTL_S``)."""
        key = self.run_key(run_id)
        return Outcomes.from_hash(
            self.client.hgetall(key), self.client.lrange(f"{key}:rejections", 0, -1)
        )

    def run_key(self, run_id: str) -> str:
        return f"{self.root}:run:{run_id}"

    def prefixes_with_state(self) -> list[str]:
        """The topic prefixes that have a state in this Redis database (a scan of its keys)."""
        return sorted(
            key.decode()[len("pf{") : -len("}:meta")]
            for key in self.client.scan_iter(match="pf{*}:meta", count=1000)
        )

    def reading_state(self) -> tuple[str | None, str | None, bool]:
        """The epoch, the time zone and whether any offsets were lost, in one round trip (what
        every read of the API checks first); a state of another key layout is refused."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hmget(self.meta_key, ["epoch", "tz", "layout"])
        pipe.exists(self.lost_key)
        (epoch, tz, layout), lost = pipe.execute()
        refuse_foreign_layout(layout)
        return (
            None if epoch is None else epoch.decode(),
            None if tz is None else tz.decode(),
            bool(lost),
        )

    def time_zone(self) -> str | None:
        value = self.client.hget(self.meta_key, "tz")
        return text(value) if value is not None else None

    def record_worker(self, worker_id: str, partitions: list[str], ttl_s: int) -> None:
        """Announce which partitions a live worker owns (for readiness checks and operators)."""
        body = json.dumps(Worker(partitions=partitions, at=time.time()))
        self.client.set(f"{self.root}:worker:{worker_id}", body, ex=ttl_s)

    def workers(self) -> dict[str, Worker]:
        """Live workers and the partitions each owns."""
        found: dict[str, Worker] = {}
        for key in self.client.scan_iter(match=f"{self.root}:worker:*", count=1000):
            body = self.client.get(key)
            if body is not None:
                found[key.decode().split(":worker:", 1)[1]] = json.loads(body)
        return found
