"""The totals: per granule and cell, read for reports, gauges and drop detection (key layout:
``portflow.adapters.redis``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

import redis

from portflow.adapters.redis.keys import StoreKeys
from portflow.adapters.redis.rates import rates_of
from portflow.domain.rollup import Filters


@dataclass(frozen=True)
class Snapshot:
    """The state as a report finds it (``Aggregates.granule_versions``)."""

    epoch: str | None
    time_zone: str | None
    lost: bool  # Kafka deleted offsets before they were applied
    latest: int | None  # the newest event time applied, Unix seconds
    versions: list[int]
    rates: dict[str, Decimal] | None


class Aggregates(StoreKeys):
    """The reading half of ``RedisStore`` over the aggregates (its client and key names)."""

    def aggregate_key(self, event_type: str, measure: str, granule: str) -> str:
        return f"{self.aggregate_prefix}{event_type}:{measure}:{granule}"

    def latest_event_time(self) -> int | None:
        """The newest event time applied so far (Unix seconds), or None before any event."""
        value = self.client.hget(self.meta_key, "latest_event_ts")
        return int(value) if value is not None else None

    def granule_versions(
        self, event_type: str, granules: list[str], with_rates: bool = False
    ) -> Snapshot:
        """What a report needs before it sums anything, in one round trip: the state's epoch,
        time zone, whether offsets were lost, the newest event time, each granule's version
        (0 for one never written since versions were kept: a granule whose version is
        unchanged holds the same totals) and, ``with_rates``, the USD rates."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hmget(self.meta_key, ["epoch", "tz", "latest_event_ts"])
        pipe.exists(self.lost_key)
        pipe.hmget(self.versions_key, [f"{event_type}:{g}" for g in granules] or ["-"])
        if with_rates:
            pipe.hgetall(self.rates_key)
        (epoch, tz, latest), lost, versions, *rates = pipe.execute()
        return Snapshot(
            None if epoch is None else epoch.decode(),
            None if tz is None else tz.decode(),
            bool(lost),
            None if latest is None else int(latest),
            [int(v or 0) for v in versions][: len(granules)],
            rates_of(rates[0]) if rates else None,
        )

    def rollup_key(
        self, event_type: str, measure: str, granule: str, by: tuple[str, ...], filters: Filters
    ) -> str:
        """Where a reader keeps a granule's rollup by dimensions and filters (see
        ``services.reports``); dropped with the state."""
        where = ";".join(f"{dim}={'+'.join(values)}" for dim, values in filters)
        return f"{self.root}:rollup:{event_type}:{measure}:{granule}:{','.join(by)}:{where}"

    def stored_rollups(self, keys: list[str]) -> list[bytes | None]:
        """The rollups kept at ``keys`` (None where there is none), in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.get(key)
        rollups: list[bytes | None] = pipe.execute()
        return rollups

    def store_rollups(self, rollups: list[tuple[str, bytes]], ttl_s: int) -> None:
        """Keep rollups for ``ttl_s`` seconds (refreshed by each write), in one round trip; a
        reader that may not write (an ACL user without SET, a read-only replica) keeps none."""
        pipe = self.client.pipeline(transaction=False)
        for key, value in rollups:
            pipe.set(key, value, ex=ttl_s)
        with contextlib.suppress(redis.ResponseError):
            pipe.execute()

    def cells_per_granule(
        self, event_type: str, measure: str, granules: list[str]
    ) -> dict[str, dict[str, int]]:
        """Each granule's per-cell totals (one pipelined round trip)."""
        pipe = self.client.pipeline(transaction=False)
        for granule in granules:
            pipe.hgetall(self.aggregate_key(event_type, measure, granule))
        return {
            granule: {cell.decode(): int(value) for cell, value in mapping.items()}
            for granule, mapping in zip(granules, pipe.execute(), strict=True)
        }

    def first_day(self, event_type: str, measure: str) -> str | None:
        """The earliest day granule holding any total of a measure (where its history starts),
        found from the month granules (a scan of a few hundred keys at most)."""
        prefix = self.aggregate_key(event_type, measure, "")
        months = sorted(
            name
            for key in self.client.scan_iter(match=f"{prefix}*", count=1000)
            if len(name := key.decode()[len(prefix) :]) == 7
        )
        for month in months:
            days = [f"{month}-{d:02d}" for d in range(1, 32)]
            pipe = self.client.pipeline(transaction=False)
            for day in days:
                pipe.exists(self.aggregate_key(event_type, measure, day))
            found = [day for day, exists in zip(days, pipe.execute(), strict=True) if exists]
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
