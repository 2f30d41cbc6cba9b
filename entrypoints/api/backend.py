"""What the routes read through (``Backend``): the store, the reports built on it, the thread
pool and the watch on Kafka's end offsets, opened when the server starts and closed when it
stops.

Each route parses its query on the event loop (a bad parameter is a 400 before anything is
read), then reads Redis in a small thread pool (redis-py blocks) within a bounded time, and
writes the body with ``to_json_bytes`` (exact decimals): no pydantic on the way out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

from starlette.responses import Response

from entrypoints.api.offsets import OffsetsWatch
from entrypoints.api.problems import unavailable
from portflow.adapters.redis import RedisStore
from portflow.config import Settings
from portflow.domain.queries import ReportRequest, SeriesRequest
from portflow.domain.report import to_json_bytes

REQUEST_TIMEOUT_S = 10.0  # a request still unanswered then is a 503
# A report may be answered from a granule's rollup summed this long ago although the worker
# wrote to the granule since (a month it writes to all the time is not summed per request),
# and the same question again with the same answer: the two add up to half a second at most.
MAX_STALENESS_S = 0.25
THREADS = 16  # reading Redis: enough for concurrent clients, few enough to share two cores
# Short timeouts: a Redis that is down or stalled is a quick 503, never a hanging request.
REDIS_OPTIONS = {"socket_connect_timeout": 0.5, "socket_timeout": 1.0}
T = TypeVar("T")


class ReportService(Protocol):
    """What the routes ask of the report service (``portflow.services.reports.Reports``)."""

    def report(self, request: ReportRequest) -> dict[str, Any]: ...
    def report_json(self, request: ReportRequest) -> bytes: ...
    def series(self, request: SeriesRequest) -> dict[str, Any]: ...
    def series_json(self, request: SeriesRequest) -> bytes: ...


ReportsFactory = Callable[[RedisStore, ZoneInfo], ReportService]


@dataclass(frozen=True)
class Opened:
    """What the backend opens when the server starts, and closes when it stops."""

    store: RedisStore
    reports: ReportService
    executor: ThreadPoolExecutor
    offsets: OffsetsWatch


class Backend:
    """What the routes read through: the store, the reports built on it, the thread pool and
    the watch on Kafka's end offsets, opened when the server starts."""

    def __init__(
        self, settings: Settings, reports_factory: ReportsFactory, timeout_s: float
    ) -> None:
        self.settings, self.reports_factory, self.timeout_s = settings, reports_factory, timeout_s
        self._opened: Opened | None = None

    @property
    def opened(self) -> Opened:
        if self._opened is None:
            raise RuntimeError("the API's backend is used before the server opened it")
        return self._opened

    @property
    def store(self) -> RedisStore:
        return self.opened.store

    @property
    def reports(self) -> ReportService:
        return self.opened.reports

    @property
    def offsets(self) -> OffsetsWatch:
        return self.opened.offsets

    def open(self) -> None:
        from portflow.adapters.kafka import EndOffsets

        store = RedisStore.from_url(
            self.settings.redis_url, self.settings.topic_prefix, **REDIS_OPTIONS
        )
        reports = self.reports_factory(store, self.settings.tz)
        executor = ThreadPoolExecutor(THREADS, thread_name_prefix="portflow-api")
        end_offsets = EndOffsets(self.settings)
        self._opened = Opened(
            store, reports, executor, OffsetsWatch(end_offsets, end_offsets.close)
        )

    def close(self) -> None:
        opened = self.opened
        opened.offsets.stop()
        opened.executor.shutdown(wait=False, cancel_futures=True)
        opened.store.client.close()

    async def run(self, work: Callable[[], T]) -> T:
        """``work()`` in the thread pool; a 503 if it takes longer than the bound (the thread
        then finishes on its own: Redis' socket timeouts end it)."""
        loop = asyncio.get_running_loop()
        executor = self.opened.executor
        try:
            return await asyncio.wait_for(loop.run_in_executor(executor, work), self.timeout_s)
        except TimeoutError:
            raise unavailable(
                f"no answer within {self.timeout_s:g}s; try again", "timeout"
            ) from None

    async def answer(
        self,
        compute: Callable[[], dict[str, Any]],
        allow_incomplete: bool,
        compute_json: Callable[[], bytes] | None = None,
    ) -> Response:
        """The JSON of ``compute()`` over a readable state (present, in PORTFLOW_TZ), or
        ``compute_json()`` where given (the report service keeps its answers as JSON). Where
        Kafka deleted offsets before they were applied: a 409, unless ``allow_incomplete``
        (then the body names them)."""
        from portflow.adapters.redis import TimeZoneConflict
        from portflow.services.reports import LostOffsets, StateUnavailable
        from portflow.services.state import check_complete, check_readable

        def work() -> bytes:
            if compute_json is not None:
                try:
                    return compute_json()  # one round trip to Redis where nothing changed
                except (StateUnavailable, TimeZoneConflict):
                    check_readable(self.store, self.settings)  # the error naming the causes
                    raise
                except LostOffsets:
                    pass
            check_readable(self.store, self.settings)
            result = compute()
            check_complete(
                self.store, result, allow_incomplete, "ask again", "allow_incomplete=true"
            )
            return to_json_bytes(result)

        return json_response(await self.run(work))


def json_response(body: bytes) -> Response:
    return Response(body, media_type="application/json")


def default_reports(store: RedisStore, tz: ZoneInfo) -> ReportService:
    from portflow.services.reports import Reports

    return Reports(store, tz, max_staleness_s=MAX_STALENESS_S)
