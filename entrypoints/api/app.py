"""The HTTP API's app: routes, bearer-token check, error mapping and the Redis store it reads.

``create_app`` builds it and connects to nothing: the store, the reports and the thread pool
are made when the server starts it (its lifespan) and closed when it stops.

Each route parses its query on the event loop (a bad parameter is a 400 before anything is
read), then reads Redis in a small thread pool (redis-py blocks) within a bounded time, and
writes the body with ``to_json_bytes`` (exact decimals): no pydantic on the way out. The
pydantic models of ``schemas`` only document the bodies.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from typing import Annotated, Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, FastAPI, Query
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis import RedisError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from entrypoints.api import schemas
from entrypoints.api.metrics import ApiMetrics, MetricsMiddleware
from entrypoints.api.offsets import OffsetsWatch
from entrypoints.api.problems import (
    MEDIA_TYPE,
    Problem,
    invalid_parameter,
    naming,
    problem_for,
    unavailable,
)
from entrypoints.api.recent import RecentAnswers
from portflow.adapters.redis import RedisStore
from portflow.config import Settings
from portflow.domain.detection import DEFAULT_MIN_DROP_PCT
from portflow.domain.measures import DIMENSIONS, MEASURES
from portflow.domain.queries import (
    COMPARES,
    CURRENCIES,
    GRANULARITIES,
    MAX_TOP,
    ReportRequest,
    SeriesRequest,
)
from portflow.domain.report import to_json_bytes
from portflow.errors import PortflowError

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

ALL_DIMENSIONS = sorted({d for dims in DIMENSIONS.values() for d in dims})
# The document states the forms the parameters take (so that clients and schemathesis know
# them), but the checks are the domain's, whose messages say what is allowed: no pattern here
# is enforced by FastAPI.
PERIOD_PATTERN = r"^[0-9]{4}(-(H[12]|Q[1-4]|[0-9]{2}(-[0-9]{2})?))?$"
PERIOD_QUERY = Query(
    description="2024, 2024-H1, 2024-Q2, 2024-06 or 2024-06-15",
    json_schema_extra={"pattern": PERIOD_PATTERN},
)
MEASURE_QUERY = Query(description="What is summed", json_schema_extra={"enum": list(MEASURES)})
BY_QUERY = Query(
    description="Up to two dimensions, comma-separated or repeated",
    json_schema_extra={"items": {"type": "string", "enum": ALL_DIMENSIONS}},
)
FILTER_QUERY = Query(
    alias="filter",
    description="`dim:value`, repeatable: only events with "
    "these values (values of one dimension are alternatives)",
    json_schema_extra={"items": {"type": "string", "pattern": r"^[a-z_]+:[^\s|,:]{1,64}$"}},
)
CURRENCY_QUERY = Query(
    description="CNY (default), or USD at each month's rate (`/v1/rates`)",
    json_schema_extra={"enum": list(CURRENCIES)},
)
USD_RATE_QUERY = Query(
    description="One fixed rate, yuan per dollar (e.g. 7.2570): implies USD",
    json_schema_extra={"pattern": r"^[0-9]{1,4}(\.[0-9]{1,4})?$"},
)
BEARER = HTTPBearer(auto_error=False, description="PORTFLOW_API_TOKEN")
ALLOW_INCOMPLETE_QUERY = Query(
    description="Answer although Kafka deleted events before they "
    "were applied (the body then names the lost offsets); else 409"
)


def split_dimensions(values: list[str]) -> list[str]:
    """``by`` given as ``port,mode``, repeated (``by=port&by=mode``), or both."""
    return [d.strip() for value in values for d in value.split(",") if d.strip()]


def token_matches(given: str | None, token: str) -> bool:
    """Whether a bearer token is the configured one, in time independent of where they differ."""
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def authorized_by(token: str) -> Callable[[Scope], bool]:
    """Whether an ASGI request carries the bearer token (any does where none is configured)."""

    def authorized(scope: Scope) -> bool:
        if not token:
            return True
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, given = value.decode("latin-1").partition(" ")
                return scheme.lower() == "bearer" and token_matches(given.strip(), token)
        return False

    return authorized


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
        from portflow.services.reports import LostOffsets, StateUnavailable
        from portflow.services.state import WrongTimeZone, check_complete, check_readable

        def work() -> bytes:
            if compute_json is not None:
                try:
                    return compute_json()  # one round trip to Redis where nothing changed
                except (StateUnavailable, WrongTimeZone):
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


# ---- the OpenAPI document ---------------------------------------------------------------------

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before asking again",
        "schema": {"type": "integer"},
    }
}
PROBLEM_DESCRIPTIONS = {
    400: "A bad query parameter: `parameter` names it, `detail` says what is allowed",
    401: "No bearer token, or not the configured one (`WWW-Authenticate: Bearer`)",
    409: "The state cannot answer as asked: aggregated in another time zone, or Kafka deleted "
    "events before they were applied (see `allow_incomplete`)",
    422: "No USD rate for some months of the request: `months` names them",
    503: "Redis unreachable, no state under the topic prefix (yet), or no answer in time",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of a route for the problems it can answer with."""
    return {
        status: {
            "description": PROBLEM_DESCRIPTIONS[status],
            "content": {MEDIA_TYPE: {"schema": PROBLEM_REF}},
            **({"headers": RETRY_AFTER} if status == 503 else {}),
        }
        for status in statuses
    }


def openapi_document(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document with the Problem schema, and without the 422 "validation error" it
    adds to every route with parameters (bad parameters are 400 problems here)."""
    document = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = document.setdefault("components", {}).setdefault("schemas", {})
    for path in document["paths"].values():
        for operation in path.values():
            response = operation["responses"].get("422", {})
            if "HTTPValidationError" in str(response):
                del operation["responses"]["422"]
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    components["Problem"] = schemas.Problem.model_json_schema()
    return document


DESCRIPTION = """portflow's exact totals by event time, read from the state in Redis that the
workers keep. Amounts are exact decimals (JSON numbers); percentages have two decimals.
Errors are `application/problem+json`. With `PORTFLOW_API_TOKEN` set, every `/v1` route
requires `Authorization: Bearer <token>`."""


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("portflow")
    except PackageNotFoundError:
        return "0"


# ---- the app ----------------------------------------------------------------------------------


def default_reports(store: RedisStore, tz: ZoneInfo) -> ReportService:
    from portflow.services.reports import Reports

    return Reports(store, tz, max_staleness_s=MAX_STALENESS_S)


def create_app(
    settings: Settings,
    reports_factory: ReportsFactory | None = None,
    request_timeout_s: float = REQUEST_TIMEOUT_S,
) -> FastAPI:
    """The API over ``settings`` (Redis, topic prefix, time zone, token); ``reports_factory``
    makes the report service from the store and time zone (default: ``Reports``)."""
    if reports_factory is None:
        reports_factory = default_reports
    backend = Backend(settings, reports_factory, request_timeout_s)
    metrics = ApiMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        backend.open()
        try:
            yield
        finally:
            backend.close()

    app = FastAPI(
        title="portflow",
        version=package_version(),
        description=DESCRIPTION,
        lifespan=lifespan,
        redoc_url=None,
    )

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = openapi_document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented customization
    add_error_handlers(app, settings.redacted_redis_url)
    app.add_middleware(
        RecentAnswers,
        paths=frozenset({"/v1/reports", "/v1/series"}),
        ttl_s=MAX_STALENESS_S,
        authorized=authorized_by(settings.api_token),
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics)  # the outer: counts kept answers too
    add_service_routes(app, backend, metrics)
    app.include_router(v1_router(settings, backend))
    return app


def add_error_handlers(app: FastAPI, redis_url: str) -> None:
    def problem(request: Request, exc: Exception) -> Response:
        return problem_for(exc, redis_url).response()

    def bad_query(request: Request, exc: RequestValidationError) -> Response:
        error = exc.errors()[0]
        parameter = str(error["loc"][-1]) if error.get("loc") else None
        return invalid_parameter(parameter, f"{parameter}: {error['msg']}").response()

    def http_error(request: Request, exc: HTTPException) -> Response:
        phrase = HTTPStatus(exc.status_code).phrase
        slug = phrase.lower().replace(" ", "-")
        return Problem(
            exc.status_code, slug, phrase, str(exc.detail), headers=exc.headers
        ).response()

    for kind in (Problem, PortflowError, RedisError, Exception):
        app.add_exception_handler(kind, problem)
    # (Starlette types a handler as taking any Exception; each gets only its own class)
    app.add_exception_handler(RequestValidationError, bad_query)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, http_error)  # type: ignore[arg-type]


def add_service_routes(app: FastAPI, backend: Backend, metrics: ApiMetrics) -> None:
    """Health, readiness and metrics: open to all (no token), for probes and Prometheus."""

    @app.get(
        "/healthz",
        response_model=schemas.Health,
        tags=["service"],
        summary="The process is alive (nothing is read)",
    )
    async def healthz() -> Response:
        return json_response(b'{"status": "ok"}')

    @app.get(
        "/readyz",
        response_model=schemas.Ready,
        responses=problems(503),
        tags=["service"],
        summary="Redis answers and holds a readable state (else 503)",
    )
    async def readyz() -> Response:
        from portflow.services.state import check_readable

        def ready() -> dict[str, str | None]:
            try:
                check_readable(backend.store, backend.settings)
                newest = backend.store.latest_event_time()
            except (PortflowError, RedisError) as exc:
                raise unavailable(
                    problem_for(exc, backend.settings.redacted_redis_url).detail, "not-ready"
                ) from None
            return {
                "status": "ready",
                "time_zone": backend.settings.tz_name,
                "newest_event": newest_event_text(newest, backend.settings.tz),
            }

        return json_response(to_json_bytes(await backend.run(ready)))

    @app.get(
        "/metrics",
        response_class=Response,
        tags=["service"],
        summary="The API's Prometheus metrics: requests and latency by route",
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    async def metrics_route() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


def newest_event_text(newest: int | None, tz: ZoneInfo) -> str | None:
    return None if newest is None else datetime.fromtimestamp(newest, tz).isoformat()


def v1_router(settings: Settings, backend: Backend) -> APIRouter:
    """The data routes, behind the bearer token when one is configured."""
    guarded = bool(settings.api_token)

    def require_token(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    ) -> None:
        given = credentials.credentials if credentials else None
        if not token_matches(given, settings.api_token):
            raise Problem(
                401,
                "unauthorized",
                "Unauthorized",
                "send Authorization: Bearer <PORTFLOW_API_TOKEN>"
                if given is None
                else "the bearer token is not the one configured",
                headers={
                    "WWW-Authenticate": 'Bearer realm="portflow"'
                    + ("" if given is None else ', error="invalid_token"')
                },
            )

    router = APIRouter(
        prefix="/v1", tags=["data"], dependencies=[Depends(require_token)] if guarded else []
    )

    def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
        return problems(*statuses, *((401,) if guarded else ()))

    @router.get(
        "/reports",
        response_model=schemas.Report,
        responses=errors(400, 409, 422, 503),
        summary="A period's totals by up to two dimensions against a year earlier "
        "(or the period before), with shares, contributions and ranks",
    )
    async def reports(
        period: Annotated[str, PERIOD_QUERY],
        measure: Annotated[str, MEASURE_QUERY] = "value_cny",
        by: Annotated[list[str], BY_QUERY] = [],  # noqa: B006  FastAPI copies per request
        compare: Annotated[
            str,
            Query(
                description="yoy: the same period a year earlier; previous: the period just before",
                json_schema_extra={"enum": list(COMPARES)},
            ),
        ] = "yoy",
        ytd: Annotated[
            bool, Query(description="From 1 January to the period's end, in both years")
        ] = False,
        filters: Annotated[list[str], FILTER_QUERY] = [],  # noqa: B006  FastAPI copies per request
        currency: Annotated[str | None, CURRENCY_QUERY] = None,
        usd_rate: Annotated[str | None, USD_RATE_QUERY] = None,
        top: Annotated[
            int | None,
            Query(
                description="The N largest rows and one row for the rest",
                json_schema_extra={"minimum": 1, "maximum": MAX_TOP},
            ),
        ] = None,
        allow_incomplete: Annotated[bool, ALLOW_INCOMPLETE_QUERY] = False,
    ) -> Response:
        from portflow.domain.queries import ReportRequest

        request = ReportRequest.parse(
            period, measure, split_dimensions(by), compare, ytd, filters, currency, usd_rate, top
        )
        return await backend.answer(
            lambda: backend.reports.report(request),
            allow_incomplete,
            lambda: backend.reports.report_json(request),
        )

    @router.get(
        "/series",
        response_model=schemas.Series,
        responses=errors(400, 409, 422, 503),
        summary="Daily or monthly totals by event time, each beside a year earlier "
        "(days: 52 weeks, weekdays aligned)",
    )
    async def series(
        measure: Annotated[str, MEASURE_QUERY] = "value_cny",
        by: Annotated[list[str], BY_QUERY] = [],  # noqa: B006  FastAPI copies per request
        granularity: Annotated[str, Query(json_schema_extra={"enum": list(GRANULARITIES)})] = "day",
        start: Annotated[
            str | None,
            Query(
                alias="from",
                description="First day: YYYY-MM-DD, YYYY-MM, RFC 3339 or epoch "
                "milliseconds (default: a year before `to`)",
            ),
        ] = None,
        end: Annotated[
            str | None,
            Query(alias="to", description="Last day, as `from` (default: the newest event's)"),
        ] = None,
        filters: Annotated[list[str], FILTER_QUERY] = [],  # noqa: B006  FastAPI copies per request
        currency: Annotated[str | None, CURRENCY_QUERY] = None,
        usd_rate: Annotated[str | None, USD_RATE_QUERY] = None,
        allow_incomplete: Annotated[bool, ALLOW_INCOMPLETE_QUERY] = False,
    ) -> Response:
        from portflow.domain.queries import SeriesRequest

        request = SeriesRequest.parse(
            measure, split_dimensions(by), granularity, start, end, filters, currency, usd_rate
        )
        return await backend.answer(
            lambda: backend.reports.series(request),
            allow_incomplete,
            lambda: backend.reports.series_json(request),
        )

    @router.get(
        "/anomalies",
        response_model=schemas.Anomalies,
        responses=errors(400, 409, 503),
        summary="The period's complete days whose throughput dropped against what the "
        "calendar led to expect (as `portflow anomalies --json`)",
    )
    async def anomalies(
        period: Annotated[str, PERIOD_QUERY],
        measure: Annotated[str, MEASURE_QUERY] = "value_cny",
        by: Annotated[list[str], BY_QUERY] = ["port"],  # noqa: B006  FastAPI copies per request
        min_drop: Annotated[
            float,
            Query(
                description="Report days at least this many per cent below expectation (0–100]",
                json_schema_extra={"exclusiveMinimum": 0, "maximum": 100},
            ),
        ] = DEFAULT_MIN_DROP_PCT,
        allow_incomplete: Annotated[bool, ALLOW_INCOMPLETE_QUERY] = False,
    ) -> Response:
        from portflow.domain.measures import check_request
        from portflow.domain.periods import Period
        from portflow.services.anomalies import AnomaliesRequest, check_min_drop, read_anomalies

        with naming("period"):
            Period.parse(period)
        with naming("measure"):
            check_request(measure, [])
        with naming("min_drop"):
            check_min_drop(min_drop)
        with naming("by"):
            request = AnomaliesRequest.parse(period, measure, split_dimensions(by), min_drop)
        return await backend.answer(
            lambda: read_anomalies(backend.store, settings.tz, request, settings.max_event_ahead_s),
            allow_incomplete,
        )

    @router.get(
        "/status",
        response_model=schemas.Status,
        responses=errors(503),
        summary="What the state holds: epoch, time zone, newest event, each "
        "partition's last applied offset, end offset in Kafka and lag, "
        "workers, outcomes, lost offsets",
    )
    async def status() -> Response:
        from portflow.services.state import check_state
        from portflow.services.status import read_status, with_end_offsets

        ends, read_s_ago, error = backend.offsets.latest()

        def work() -> bytes:
            check_state(backend.store, settings)
            status = with_end_offsets(read_status(backend.store, settings), ends)
            kafka = {
                "bootstrap": settings.kafka_bootstrap,
                "read_s_ago": read_s_ago,
                "error": error,
            }
            return to_json_bytes({**status, "kafka": kafka})

        return json_response(await backend.run(work))

    @router.get(
        "/rates",
        response_model=schemas.Rates,
        responses=errors(503),
        summary="The USD rates loaded by `portflow rates load`: yuan per dollar by "
        "month, with their source",
    )
    async def rates() -> Response:
        from portflow.services.rates import rates_json

        def work() -> bytes:
            return to_json_bytes(rates_json(backend.store))

        return json_response(await backend.run(work))

    return router
