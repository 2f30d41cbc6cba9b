"""The service routes: health, readiness and the API's metrics, open to all (no token), for
probes and Prometheus."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis import RedisError
from starlette.responses import Response

from entrypoints.api import schemas
from entrypoints.api.backend import Backend, json_response
from entrypoints.api.metrics import ApiMetrics
from entrypoints.api.openapi import problems
from entrypoints.api.problems import problem_for, unavailable
from portflow.domain.report import to_json_bytes
from portflow.errors import PortflowError


def add_service_routes(app: FastAPI, backend: Backend, metrics: ApiMetrics) -> None:
    """Health, readiness and metrics: open to all (no token), for probes and Prometheus."""
    add_probe_routes(app, backend)
    add_metrics_route(app, metrics)


def add_probe_routes(app: FastAPI, backend: Backend) -> None:
    """Health (the process is alive) and readiness (Redis answers with a readable state)."""

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
        return json_response(to_json_bytes(await backend.run(lambda: readiness(backend))))


def readiness(backend: Backend) -> dict[str, str | None]:
    """The readiness body, or a 503 problem saying why the state cannot be read."""
    from portflow.services.state import check_readable

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


def add_metrics_route(app: FastAPI, metrics: ApiMetrics) -> None:
    """The API's own metrics, in Prometheus' text format."""

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
