"""The API's own Prometheus metrics: requests by route template and status, latency by route.

An ASGI middleware (no per-request task or body copy, as Starlette's BaseHTTPMiddleware makes),
on a registry of the app's own, so several apps in one process (the tests) do not collide.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED = "(unmatched)"  # any path no route serves: one label value, whatever was asked
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "portflow_api_requests",
            "HTTP requests answered by the API",
            ["route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "portflow_api_request_duration_seconds",
            "Time from a request's arrival to its response's end",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def observe(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)


def route_of(scope: Scope) -> str:
    """The route template that served a request (``/v1/reports``), not its path."""
    path: str | None = getattr(scope.get("route"), "path", None)
    return path or UNMATCHED


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            self.metrics.observe(route_of(scope), status, time.perf_counter() - started)
