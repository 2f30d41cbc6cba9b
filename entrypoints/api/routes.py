"""The data routes under ``/v1``: reports, series, anomalies, status and rates, behind the
bearer token when one is configured. The pydantic models of ``schemas`` only document the
bodies."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from starlette.responses import Response

from entrypoints.api import schemas
from entrypoints.api.auth import token_dependency
from entrypoints.api.backend import Backend, json_response
from entrypoints.api.openapi import problems
from entrypoints.api.params import (
    ALLOW_INCOMPLETE_QUERY,
    BY_QUERY,
    CURRENCY_QUERY,
    FILTER_QUERY,
    MEASURE_QUERY,
    PERIOD_QUERY,
    USD_RATE_QUERY,
    split_dimensions,
)
from entrypoints.api.problems import naming
from portflow.config import Settings
from portflow.domain.detection import DEFAULT_MIN_DROP_PCT
from portflow.domain.queries import COMPARES, GRANULARITIES, MAX_TOP, ReportRequest, SeriesRequest
from portflow.domain.report import to_json_bytes

COMPARE_QUERY = Query(
    description="yoy: the same period a year earlier; previous: the period just before",
    json_schema_extra={"enum": list(COMPARES)},
)
YTD_QUERY = Query(description="From 1 January to the period's end, in both years")
TOP_QUERY = Query(
    description="The N largest rows and one row for the rest",
    json_schema_extra={"minimum": 1, "maximum": MAX_TOP},
)
GRANULARITY_QUERY = Query(json_schema_extra={"enum": list(GRANULARITIES)})
FROM_QUERY = Query(
    alias="from",
    description="First day: YYYY-MM-DD, YYYY-MM, RFC 3339 or epoch "
    "milliseconds (default: a year before `to`)",
)
TO_QUERY = Query(alias="to", description="Last day, as `from` (default: the newest event's)")
MIN_DROP_QUERY = Query(
    description="Report days at least this many per cent below expectation (0–100]",
    json_schema_extra={"exclusiveMinimum": 0, "maximum": 100},
)


def v1_router(settings: Settings, backend: Backend) -> APIRouter:
    """The data routes, behind the bearer token when one is configured."""
    guarded = bool(settings.api_token)
    router = APIRouter(
        prefix="/v1",
        tags=["data"],
        dependencies=[Depends(token_dependency(settings.api_token))] if guarded else [],
    )
    add_reports_route(router, backend, guarded)
    add_series_route(router, backend, guarded)
    add_anomalies_route(router, settings, backend, guarded)
    add_status_route(router, settings, backend, guarded)
    add_rates_route(router, backend, guarded)
    return router


def errors(guarded: bool, *statuses: int) -> dict[int | str, dict[str, Any]]:
    """The problem answers a route documents: ``statuses``, and 401 when the token guards it."""
    return problems(*statuses, *((401,) if guarded else ()))


def add_reports_route(router: APIRouter, backend: Backend, guarded: bool) -> None:
    @router.get(
        "/reports",
        response_model=schemas.Report,
        responses=errors(guarded, 400, 409, 422, 503),
        summary="A period's totals by up to two dimensions against a year earlier "
        "(or the period before), with shares, contributions and ranks",
    )
    async def reports(
        period: Annotated[str, PERIOD_QUERY],
        measure: Annotated[str, MEASURE_QUERY] = "value_cny",
        by: Annotated[list[str], BY_QUERY] = [],  # noqa: B006  FastAPI copies per request
        compare: Annotated[str, COMPARE_QUERY] = "yoy",
        ytd: Annotated[bool, YTD_QUERY] = False,
        filters: Annotated[list[str], FILTER_QUERY] = [],  # noqa: B006  FastAPI copies per request
        currency: Annotated[str | None, CURRENCY_QUERY] = None,
        usd_rate: Annotated[str | None, USD_RATE_QUERY] = None,
        top: Annotated[int | None, TOP_QUERY] = None,
        allow_incomplete: Annotated[bool, ALLOW_INCOMPLETE_QUERY] = False,
    ) -> Response:

        request = ReportRequest.parse(
            period, measure, split_dimensions(by), compare, ytd, filters, currency, usd_rate, top
        )
        return await backend.answer(
            lambda: backend.reports.report(request),
            allow_incomplete,
            lambda: backend.reports.report_json(request),
        )


def add_series_route(router: APIRouter, backend: Backend, guarded: bool) -> None:
    @router.get(
        "/series",
        response_model=schemas.Series,
        responses=errors(guarded, 400, 409, 422, 503),
        summary="Daily or monthly totals by event time, each beside a year earlier "
        "(days: 52 weeks, weekdays aligned)",
    )
    async def series(
        measure: Annotated[str, MEASURE_QUERY] = "value_cny",
        by: Annotated[list[str], BY_QUERY] = [],  # noqa: B006  FastAPI copies per request
        granularity: Annotated[str, GRANULARITY_QUERY] = "day",
        start: Annotated[str | None, FROM_QUERY] = None,
        end: Annotated[str | None, TO_QUERY] = None,
        filters: Annotated[list[str], FILTER_QUERY] = [],  # noqa: B006  FastAPI copies per request
        currency: Annotated[str | None, CURRENCY_QUERY] = None,
        usd_rate: Annotated[str | None, USD_RATE_QUERY] = None,
        allow_incomplete: Annotated[bool, ALLOW_INCOMPLETE_QUERY] = False,
    ) -> Response:

        request = SeriesRequest.parse(
            measure, split_dimensions(by), granularity, start, end, filters, currency, usd_rate
        )
        return await backend.answer(
            lambda: backend.reports.series(request),
            allow_incomplete,
            lambda: backend.reports.series_json(request),
        )


def add_anomalies_route(
    router: APIRouter, settings: Settings, backend: Backend, guarded: bool
) -> None:
    @router.get(
        "/anomalies",
        response_model=schemas.Anomalies,
        responses=errors(guarded, 400, 409, 503),
        summary="The period's complete days whose throughput dropped against what the "
        "calendar led to expect (as `portflow anomalies --json`)",
    )
    async def anomalies(
        period: Annotated[str, PERIOD_QUERY],
        measure: Annotated[str, MEASURE_QUERY] = "value_cny",
        by: Annotated[list[str], BY_QUERY] = ["port"],  # noqa: B006  FastAPI copies per request
        min_drop: Annotated[float, MIN_DROP_QUERY] = DEFAULT_MIN_DROP_PCT,
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


def add_status_route(
    router: APIRouter, settings: Settings, backend: Backend, guarded: bool
) -> None:
    @router.get(
        "/status",
        response_model=schemas.Status,
        responses=errors(guarded, 503),
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


def add_rates_route(router: APIRouter, backend: Backend, guarded: bool) -> None:
    @router.get(
        "/rates",
        response_model=schemas.Rates,
        responses=errors(guarded, 503),
        summary="The USD rates loaded by `portflow rates load`: yuan per dollar by "
        "month, with their source",
    )
    async def rates() -> Response:
        from portflow.services.rates import rates_json

        def work() -> bytes:
            return to_json_bytes(rates_json(backend.store))

        return json_response(await backend.run(work))
