"""Reports read from the Redis store: the one place that joins the core's reports to storage."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from portflow.adapters.redis import RedisStore
from portflow.domain.coverage import Coverage
from portflow.domain.periods import Period
from portflow.domain.report import Measure, build_report, check_request


def check_report_request(period: str, measure: str, by: list[str]) -> tuple[Period, Measure]:
    """The period and measure of a report request; raises ``InvalidPeriod``/``InvalidReport``
    for bad ones (before anything is read)."""
    current = Period.parse(period)
    current.previous()  # there is none before year 1
    return current, check_request(measure, by)


def read_report(store: RedisStore, tz: ZoneInfo, period: str, measure: str,
                by: list[str]) -> dict:
    """The contract's report object for a period against the same period a year earlier, with
    how far the events applied go (``tz``: the reporting time zone).

    Raises ``InvalidPeriod``/``InvalidReport`` for bad requests, ``redis.RedisError`` if Redis
    cannot be read.
    """
    current, spec = check_report_request(period, measure, by)
    previous = current.previous()
    coverage = Coverage.of(current, store.latest_event_time(), tz)
    now = store.cells(spec.event_type, spec.stored, current.granules())
    before = store.cells(spec.event_type, spec.stored, previous.granules())
    return build_report(current, measure, by, now, before, coverage)
