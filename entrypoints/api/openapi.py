"""The OpenAPI document: FastAPI's, with the problems each route can answer with
(``application/problem+json``) instead of its 422 "validation error"."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from entrypoints.api import schemas
from entrypoints.api.problems import MEDIA_TYPE

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
