"""Reports and series read from the Redis store: the one place that joins the core's reports
to storage, and keeps what it read.

Every write of the worker bumps the version of each granule it touched (in the same atomic
step as the totals), so a granule's rollup (its cells summed by the question's dimensions and
filters) stays right until its version moves. A question reads the epoch, the newest event time
and the versions in one round trip; it takes each granule's rollup from this process' memory,
else from Redis (where any reader left it: the CLI, each API process), else sums the cells and
leaves the rollup in both. A granule whose version moved is summed again, except that a
process may answer from a rollup it summed less than ``max_staleness_s`` ago (the API: a
quarter of a second; so a month the worker writes to all the time is not summed again for every
request).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from time import monotonic
from typing import Final
from zoneinfo import ZoneInfo

import msgspec

from portflow.adapters.redis import DROPPING, RedisStore, TimeZoneConflict
from portflow.domain.coverage import Coverage, CoverageData
from portflow.domain.documents import JsonObject
from portflow.domain.live_time import AHEAD_WHEN_OFF_S
from portflow.domain.measures import Measure
from portflow.domain.queries import ReportRequest, SeriesRequest
from portflow.domain.report import build_report, to_json_bytes
from portflow.domain.rollup import Filters, Rollup, Summer
from portflow.domain.series import SeriesData, build_series
from portflow.errors import PortflowError

# Granule rollups kept per process (each a few rows to a few thousand): oldest used go first.
KEPT_ROLLUPS: Final = 20_000
KEPT_SUMMERS: Final = 256
KEPT_BODY_BYTES: Final = 64 << 20  # answers kept as JSON, per process
STORED_ROLLUP_TTL_S: Final = 30 * 86400  # a rollup nobody asked for in a month is summed again

# A granule's rollup kept in memory: (epoch, type, measure, granule, by, filters).
RollupKey = tuple[str, str, str, str, tuple[str, ...], Filters]
# The rollups a question used: the epoch and each granule's version (equal, equal figures).
Fingerprint = tuple[str, tuple[int, ...]]
FrozenRates = tuple[tuple[str, Decimal], ...]


class StateUnavailable(PortflowError):
    """The topic prefix has no state in Redis now, or it is being dropped (``rebuild``)."""


class LostOffsets(PortflowError):
    """Kafka deleted offsets before they were applied: an answer kept as JSON would not say so
    (``report_json``/``series_json`` refuse; ``check_complete`` says which)."""


class Reports:
    """Reports and series of one store, keeping each granule's rollup until its version moves.

    Safe to share between threads (the API answers from a thread pool)."""

    def __init__(self, store: RedisStore, tz: ZoneInfo, max_staleness_s: float = 0.0) -> None:
        self.store = store
        self.tz = tz
        self.max_staleness_s = max_staleness_s
        # (epoch, type, measure, granule, by, filters) -> (version, rollup, when summed)
        self._rollups: OrderedDict[RollupKey, tuple[int, Rollup, float]] = OrderedDict()
        self._summers: OrderedDict[tuple[str, tuple[str, ...], Filters], Summer] = OrderedDict()
        self._bodies: OrderedDict[Hashable, bytes] = OrderedDict()  # by ``Answer.key``
        self._body_bytes = 0
        self._lock = threading.Lock()

    def report(self, request: ReportRequest) -> JsonObject:
        """The report object (``portflow.domain.report.build_report``)."""
        return self._report(request).build()

    def report_json(self, request: ReportRequest) -> bytes:
        """The report object as JSON, kept while nothing it is made of changes; raises
        ``LostOffsets`` where Kafka deleted offsets before they were applied."""
        return self._as_json(self._report(request))

    def _report(self, request: ReportRequest) -> Answer:
        current, previous = request.granules()
        read = self._read(request, current + previous)
        rates = read.rates
        coverage = Coverage.of(request.period, read.latest, self.tz)
        return Answer(
            ("report", request, read.fingerprint, _frozen(rates)),
            read.lost,
            lambda: build_report(
                request,
                {g: read.rollups[g] for g in current},
                {g: read.rollups[g] for g in previous},
                coverage,
                rates,
            ),
            coverage.as_json,
        )

    def series(self, request: SeriesRequest) -> JsonObject:
        """The series object (``portflow.domain.series.build_series``); by default it ends on
        the newest event's day (never past tomorrow on the clock: one far-future event does
        not carry the range off)."""
        return self._series(request).build()

    def series_json(self, request: SeriesRequest) -> bytes:
        """The series object as JSON, kept while nothing it is made of changes; raises
        ``LostOffsets`` where Kafka deleted offsets before they were applied."""
        return self._as_json(self._series(request))

    def _series(self, request: SeriesRequest) -> Answer:
        newest_day = (
            None
            if request.start and request.end
            else self._newest_day(self.store.latest_event_time())
        )  # only a default range needs it
        pairs = request.times(self.tz, newest_day)
        read = self._read(request, [g for pair in pairs for g in pair])
        rates = read.rates

        def data() -> SeriesData:
            """How far the events go: the newest one, and the last day a later one passed
            (the days after it are partial)."""
            if read.latest is None:
                return {"newest_event": None, "time_zone": self.tz.key, "last_complete_day": None}
            newest = datetime.fromtimestamp(read.latest, self.tz)
            return {
                "newest_event": newest.isoformat(),
                "time_zone": self.tz.key,
                "last_complete_day": (newest.date() - timedelta(days=1)).isoformat(),
            }

        return Answer(
            ("series", request, tuple(pairs), read.fingerprint, _frozen(rates)),
            read.lost,
            lambda: build_series(request, pairs, read.rollups, self.tz, data(), rates),
            data,
        )

    def _as_json(self, answer: Answer) -> bytes:
        """The JSON of ``answer.build()``, its members but the last (``data``: how far the
        events go, which moves with every worker step) kept under ``answer.key``,
        ``answer.data()`` written anew."""
        key = answer.key
        if answer.lost:
            raise LostOffsets("Kafka deleted offsets before they were applied")
        with self._lock:
            members = self._bodies.get(key)
            if members is not None:
                self._bodies.move_to_end(key)
        if members is None:
            built = answer.build()
            built.pop("data")
            members = to_json_bytes(built)[:-1]  # without its closing brace
            with self._lock:
                self._bodies[key] = members
                self._body_bytes += len(members)
                while self._body_bytes > KEPT_BODY_BYTES:
                    self._body_bytes -= len(self._bodies.popitem(last=False)[1])
        return b"".join([members, b',"data":', to_json_bytes(answer.data()), b"}"])

    def _newest_day(self, latest: int | None) -> date:
        now = time.time()
        newest = now if latest is None else min(latest, now + AHEAD_WHEN_OFF_S)
        return datetime.fromtimestamp(newest, self.tz).date()

    def _read(self, request: ReportRequest | SeriesRequest, granules: list[str]) -> Read:
        """The state's snapshot and each granule's rollup (the cells are read after their
        versions, so a write in between leaves a rollup with an older version than what was
        summed: it is summed again next time, never kept too long)."""
        spec, by, filters = request.spec, request.by, request.filters
        granules = list(dict.fromkeys(granules))
        money = request.money
        snapshot = self.store.granule_versions(
            spec.event_type, granules, with_rates=money.in_dollars and money.usd_rate is None
        )
        epoch = self._readable_epoch(snapshot.epoch, snapshot.time_zone)
        found, used, missing = self._kept(
            spec, by, filters, epoch, list(zip(granules, snapshot.versions, strict=True))
        )
        if missing:
            found.update(self._stored_or_summed(spec, by, filters, epoch, missing))
            used.update(missing)
        return Read(
            snapshot.latest,
            found,
            (epoch, tuple(used[g] for g in granules)),
            snapshot.lost,
            snapshot.rates,
        )

    def _readable_epoch(self, epoch: str | None, time_zone: str | None) -> str:
        """The state's epoch, if there is a state to report from, built in our time zone."""
        if epoch is None or epoch == DROPPING:
            raise StateUnavailable(
                "there is no state to report from: "
                + (
                    "it is being rebuilt from Kafka; try again in a moment"
                    if epoch
                    else "no worker has opened one"
                )
            )
        if time_zone and time_zone != self.tz.key:
            raise TimeZoneConflict(
                f"the aggregates were built with PORTFLOW_TZ="
                f"{time_zone}, not {self.tz.key}; set PORTFLOW_TZ="
                f"{time_zone}"
            )
        return epoch

    def _kept(
        self,
        spec: Measure,
        by: tuple[str, ...],
        filters: Filters,
        epoch: str,
        granules: list[tuple[str, int]],
    ) -> tuple[dict[str, Rollup], dict[str, int], list[tuple[str, int]]]:
        """The rollups kept in memory that may be used (of the version read, or recent
        enough), the version of each, and the (granule, version) of those missing."""
        found: dict[str, Rollup] = {}
        used: dict[str, int] = {}  # the version of each rollup taken
        missing: list[tuple[str, int]] = []
        now = monotonic()
        with self._lock:
            for granule, version in granules:
                key = _rollup_key(epoch, spec, granule, by, filters)
                kept = self._rollups.get(key)
                if kept is not None and (
                    kept[0] == version or now - kept[2] < self.max_staleness_s
                ):
                    self._rollups.move_to_end(key)
                    found[granule], used[granule] = kept[1], kept[0]
                else:
                    missing.append((granule, version))
        return found, used, missing

    def _stored_or_summed(
        self,
        spec: Measure,
        by: tuple[str, ...],
        filters: Filters,
        epoch: str,
        granules: list[tuple[str, int]],
    ) -> dict[str, Rollup]:
        """Rollups from Redis where one of the same version is kept there, else summed from
        the cells (and kept there)."""
        keys = [
            self.store.rollup_key(spec.event_type, spec.stored, g, by, filters) for g, _ in granules
        ]
        found: dict[str, Rollup] = {}
        to_sum: list[tuple[str, int, str]] = []
        stored_rollups = self.store.stored_rollups(keys)
        for (granule, version), key, stored in zip(granules, keys, stored_rollups, strict=True):
            rollup = _decoded(stored, epoch, version)
            if rollup is None:
                to_sum.append((granule, version, key))
            else:
                found[granule] = rollup
        if to_sum:
            found.update(self._summed_and_stored(spec, by, filters, epoch, to_sum))
        self._keep(spec, by, filters, epoch, granules, found)
        return found

    def _summed_and_stored(
        self,
        spec: Measure,
        by: tuple[str, ...],
        filters: Filters,
        epoch: str,
        to_sum: list[tuple[str, int, str]],
    ) -> dict[str, Rollup]:
        """Rollups summed from the cells of each (granule, version, its Redis key), and stored
        in Redis for the next reader."""
        cells = self.store.cells_per_granule(
            spec.event_type, spec.stored, [granule for granule, _, _ in to_sum]
        )
        summer = self._summer(spec.event_type, by, filters)
        summed: dict[str, Rollup] = {}
        encoded: list[tuple[str, bytes]] = []
        for granule, version, key in to_sum:
            summed[granule] = rollup = summer.rollup(cells[granule])
            encoded.append((key, _encoded(rollup, epoch, version)))
        self.store.store_rollups(encoded, STORED_ROLLUP_TTL_S)
        return summed

    def _keep(
        self,
        spec: Measure,
        by: tuple[str, ...],
        filters: Filters,
        epoch: str,
        granules: list[tuple[str, int]],
        found: dict[str, Rollup],
    ) -> None:
        """Keep these rollups in memory (the most recently used ``KEPT_ROLLUPS`` stay)."""
        when = monotonic()
        with self._lock:
            for granule, version in granules:
                kept_key = _rollup_key(epoch, spec, granule, by, filters)
                self._rollups[kept_key] = (version, found[granule], when)
                self._rollups.move_to_end(kept_key)
            while len(self._rollups) > KEPT_ROLLUPS:
                self._rollups.popitem(last=False)

    def _summer(self, event_type: str, by: tuple[str, ...], filters: Filters) -> Summer:
        key = (event_type, by, filters)
        with self._lock:
            summer = self._summers.get(key)
            if summer is None:
                summer = self._summers[key] = Summer(event_type, by, filters)
                while len(self._summers) > KEPT_SUMMERS:
                    self._summers.popitem(last=False)
            return summer


@dataclass(frozen=True)
class Answer:
    """A question's answer, built only when needed: ``key`` names it (the question, and the
    versions of the rollups and rates it uses), ``lost`` whether Kafka deleted offsets before
    they were applied, ``build()`` makes the object, ``data()`` its last member alone."""

    key: Hashable
    lost: bool
    build: Callable[[], JsonObject]
    data: Callable[[], CoverageData | SeriesData]


@dataclass(frozen=True)
class Read:
    """What a question read: the newest event time, each granule's rollup, and a fingerprint
    of the rollups (equal fingerprints, equal figures)."""

    latest: int | None
    rollups: dict[str, Rollup]
    fingerprint: Fingerprint
    lost: bool  # Kafka deleted offsets before they were applied
    rates: dict[str, Decimal] | None  # USD rates by month, where the question needs them


def _rollup_key(
    epoch: str, spec: Measure, granule: str, by: tuple[str, ...], filters: Filters
) -> RollupKey:
    """Where a granule's rollup is kept in memory: one place for the key ``_kept`` reads and
    ``_keep`` writes."""
    return (epoch, spec.event_type, spec.stored, granule, by, filters)


def _frozen(rates: dict[str, Decimal] | None) -> FrozenRates | None:
    return None if rates is None else tuple(sorted(rates.items()))


def _encoded(rollup: Rollup, epoch: str, version: int) -> bytes:
    return msgspec.msgpack.encode(
        [epoch, version, rollup.total, [[*key, units] for key, units in rollup.rows.items()]]
    )


def _decoded(stored: bytes | None, epoch: str, version: int) -> Rollup | None:
    """A stored rollup if it is of this epoch and version (else None: it must be summed)."""
    if stored is None:
        return None
    try:
        stored_epoch, stored_version, total, rows = msgspec.msgpack.decode(stored)
    except (msgspec.DecodeError, ValueError, TypeError):
        return None  # not one of ours: summed again, and overwritten
    if stored_epoch != epoch or stored_version != version:
        return None
    return Rollup({tuple(row[:-1]): row[-1] for row in rows}, total)
