"""Errors as RFC 9457 problem details (``application/problem+json``): what went wrong, which
query parameter, and what to do; never a traceback.

``problem_for`` maps every exception a route can meet to its status: a request the user can
mend is a 400 naming the parameter, a month without a dollar rate a 422, a state that cannot be
read as asked a 409, Redis or the state unavailable (for now) a 503 with ``Retry-After``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from starlette.responses import Response

from portflow.domain.report import to_json_bytes
from portflow.errors import PortflowError, UsageError

MEDIA_TYPE = "application/problem+json"
RETRY_AFTER_S = 1


class Problem(Exception):
    """A problem response: ``status``, a short ``title``, the ``detail`` sentence, and members
    of its own (``parameter``, ``months``)."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        headers: Mapping[str, str] | None = None,
        **members: object,
    ) -> None:
        super().__init__(detail)
        self.status, self.slug, self.title, self.detail = status, slug, title, detail
        self.headers = headers or {}
        self.members = {k: v for k, v in members.items() if v is not None}

    def as_json(self) -> dict[str, object]:
        return {
            "type": f"urn:portflow:problem:{self.slug}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            **self.members,
        }

    def response(self) -> Response:
        return Response(
            to_json_bytes(self.as_json()),
            status_code=self.status,
            headers=self.headers,
            media_type=MEDIA_TYPE,
        )


def invalid_parameter(parameter: str | None, detail: str) -> Problem:
    return Problem(400, "invalid-parameter", "Invalid parameter", detail, parameter=parameter)


def unavailable(detail: str, slug: str = "unavailable") -> Problem:
    return Problem(
        503, slug, "Service unavailable", detail, headers={"Retry-After": str(RETRY_AFTER_S)}
    )


@contextmanager
def naming(parameter: str) -> Iterator[None]:
    """Tie a usage error raised in the block to a query parameter (unless it names one)."""
    try:
        yield
    except UsageError as exc:
        if getattr(exc, "parameter", None) is None:
            exc.parameter = parameter  # type: ignore[attr-defined]
        raise


def problem_for(exc: BaseException, redis_url: str) -> Problem:
    """The problem a route's exception answers with (``redis_url``: redacted, for messages)."""
    from redis import RedisError

    from portflow.adapters.redis import TimeZoneConflict
    from portflow.domain.queries import MissingRates
    from portflow.services.reports import StateUnavailable
    from portflow.services.state import Incomplete, NoState

    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, UsageError):
        return invalid_parameter(getattr(exc, "parameter", None), str(exc))
    if isinstance(exc, MissingRates):
        return Problem(
            422, "missing-rates", "No USD rate for some months", str(exc), months=exc.months
        )
    if isinstance(exc, (NoState, StateUnavailable)):
        return unavailable(str(exc), "no-state")
    if isinstance(exc, (TimeZoneConflict, Incomplete)):
        slug = "wrong-time-zone" if isinstance(exc, TimeZoneConflict) else "incomplete"
        return Problem(409, slug, "The state cannot answer this as asked", str(exc))
    if isinstance(exc, RedisError):
        return unavailable(f"cannot read Redis at {redis_url}: {exc}", "redis-unavailable")
    if isinstance(exc, PortflowError):
        return Problem(500, "failed", "Request failed", str(exc))
    return Problem(
        500,
        "internal-error",
        "Internal error",
        "the server met an unexpected error; its log has the details",
    )
