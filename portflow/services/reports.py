"""Reports read from the Redis store: the one place that joins the core's reports to storage."""

from __future__ import annotations

from portflow.adapters.redis import RedisStore
from portflow.domain.periods import Period
from portflow.domain.report import build_report, check_request


def read_report(store: RedisStore, period: str, measure: str, by: list[str]) -> dict:
    """The contract's report object for a period against the same period a year earlier.

    Raises ``InvalidPeriod``/``InvalidReport`` for bad requests, ``redis.RedisError`` if Redis
    cannot be read.
    """
    current = Period.parse(period)
    previous = current.previous()
    spec = check_request(measure, by)
    now = store.cells(spec.event_type, spec.stored, current.granules())
    before = store.cells(spec.event_type, spec.stored, previous.granules())
    return build_report(current, measure, by, now, before)
