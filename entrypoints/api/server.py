"""Running the API: where it may listen, and uvicorn serving it on a socket bound beforehand
(so that a port in use is one ``portflow: …`` line, not uvicorn's log)."""

from __future__ import annotations

import contextlib
import ipaddress
import signal
import socket
from collections.abc import Callable
from types import FrameType

from portflow.config import Settings
from portflow.errors import PortflowError, UsageError


class CannotListen(PortflowError):
    """The API's address cannot be bound (in use, not this machine's, not allowed)."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine only (127.0.0.0/8, ::1, localhost), not a network."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name: it may resolve to anything
        return False


def check_exposure(settings: Settings) -> None:
    """Refuse to listen beyond loopback without a token: the totals would be open to all."""
    host, port = settings.api_addr
    if not is_loopback(host) and not settings.api_token:
        raise UsageError(
            f"PORTFLOW_API_ADDR={host}:{port} listens beyond this machine: set "
            "PORTFLOW_API_TOKEN (clients then send Authorization: Bearer <token>) "
            "or listen on 127.0.0.1"
        )


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise CannotListen(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}): choose "
            "another address with PORTFLOW_API_ADDR"
        ) from None
    return sock


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def serve(settings: Settings, say: Callable[[str], None], log_level: str = "info") -> None:
    """Serve the API until SIGTERM or Ctrl-C, then end quietly (exit 0). (uvicorn stops
    gracefully on either, then raises the signal again: both end here as KeyboardInterrupt.)"""
    import uvicorn

    from entrypoints.api.app import create_app

    check_exposure(settings)
    host, port = settings.api_addr
    sock = bind(host, port)
    shown = f"[{host}]" if ":" in host else host
    say(
        f"serving the HTTP API on http://{shown}:{port} (docs at /docs, OpenAPI at "
        f"/openapi.json){'; /v1 requires the bearer token' if settings.api_token else ''}"
    )
    config = uvicorn.Config(
        create_app(settings),
        log_level=log_level,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=5,
    )
    signal.signal(signal.SIGTERM, _interrupt)
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(config).run(sockets=[sock])
    say("stopped serving the HTTP API")
