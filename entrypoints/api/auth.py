"""The bearer token: every ``/v1`` route requires ``Authorization: Bearer <PORTFLOW_API_TOKEN>``
when one is configured; the service routes (health, readiness, metrics) never do."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import Scope

from entrypoints.api.problems import Problem

BEARER = HTTPBearer(auto_error=False, description="PORTFLOW_API_TOKEN")


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


def token_dependency(token: str) -> Callable[..., None]:
    """The routes' dependency that answers 401 unless the request carries ``token``."""

    def require_token(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    ) -> None:
        given = credentials.credentials if credentials else None
        if not token_matches(given, token):
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

    return require_token
