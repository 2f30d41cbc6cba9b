"""The HTTP API's app: ``create_app`` wires the routes, the middleware and the error mapping.

It builds the app and connects to nothing: the store, the reports and the thread pool are made
when the server starts it (its lifespan) and closed when it stops (``backend``). The routes are
in ``routes`` (``/v1``) and ``service`` (health, readiness, metrics), their parameters in
``params``, the bearer token in ``auth``, the document in ``openapi``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from redis import RedisError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from entrypoints.api.auth import authorized_by, token_matches
from entrypoints.api.backend import (
    MAX_STALENESS_S,
    REQUEST_TIMEOUT_S,
    Backend,
    ReportsFactory,
    default_reports,
)
from entrypoints.api.metrics import ApiMetrics, MetricsMiddleware
from entrypoints.api.openapi import DESCRIPTION, openapi_document, package_version
from entrypoints.api.params import split_dimensions
from entrypoints.api.problems import Problem, invalid_parameter, problem_for
from entrypoints.api.recent import RecentAnswers
from entrypoints.api.routes import v1_router
from entrypoints.api.service import add_service_routes
from portflow.config import Settings
from portflow.errors import PortflowError


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
    app = FastAPI(
        title="portflow",
        version=package_version(),
        description=DESCRIPTION,
        lifespan=backend_lifespan(backend),
        redoc_url=None,
    )
    make_document_once(app)
    add_error_handlers(app, settings.redacted_redis_url)
    add_middleware(app, settings, metrics)
    add_service_routes(app, backend, metrics)
    app.include_router(v1_router(settings, backend))
    return app


def backend_lifespan(backend: Backend) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Opens the backend when the server starts the app and closes it when it stops."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        backend.open()
        try:
            yield
        finally:
            backend.close()

    return lifespan


def make_document_once(app: FastAPI) -> None:
    """The app's OpenAPI document (``openapi_document``) is made on first use and kept."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = openapi_document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented customization


def add_middleware(app: FastAPI, settings: Settings, metrics: ApiMetrics) -> None:
    """Recent answers kept for reports and series, inside the metrics (which count them too)."""
    app.add_middleware(
        RecentAnswers,
        paths=frozenset({"/v1/reports", "/v1/series"}),
        ttl_s=MAX_STALENESS_S,
        authorized=authorized_by(settings.api_token),
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics)  # the outer: counts kept answers too


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


# ``Backend``, ``split_dimensions`` and ``token_matches`` are named here too: the app's parts.
__all__ = ["Backend", "create_app", "split_dimensions", "token_matches"]
