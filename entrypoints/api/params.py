"""The data routes' query parameters as the OpenAPI document states them.

The document states the forms the parameters take (so that clients and schemathesis know
them), but the checks are the domain's, whose messages say what is allowed: no pattern here
is enforced by FastAPI.
"""

from __future__ import annotations

from fastapi import Query

from portflow.domain.measures import DIMENSIONS, MEASURES
from portflow.domain.queries import CURRENCIES

ALL_DIMENSIONS = sorted({d for dims in DIMENSIONS.values() for d in dims})
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
ALLOW_INCOMPLETE_QUERY = Query(
    description="Answer although Kafka deleted events before they "
    "were applied (the body then names the lost offsets); else 409"
)


def split_dimensions(values: list[str]) -> list[str]:
    """``by`` given as ``port,mode``, repeated (``by=port&by=mode``), or both."""
    return [d.strip() for value in values for d in value.split(",") if d.strip()]
