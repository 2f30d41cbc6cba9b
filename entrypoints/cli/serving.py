"""The command that serves the state over HTTP: serve."""

from __future__ import annotations

import click

from entrypoints.cli.base import cli, load_settings, say


@cli.command()
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
def serve(log_level: str) -> None:
    """Serve the HTTP API on PORTFLOW_API_ADDR (127.0.0.1:8080 by default) until Ctrl-C.

    GET /v1/reports, /v1/series, /v1/anomalies, /v1/status and /v1/rates; /healthz, /readyz,
    /metrics; OpenAPI at /openapi.json, docs at /docs. Listening beyond loopback requires
    PORTFLOW_API_TOKEN, which every /v1 request then sends as `Authorization: Bearer <token>`.
    """
    from entrypoints.api.server import serve as run_server

    run_server(load_settings(), say, log_level)
