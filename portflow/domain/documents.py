"""The JSON documents portflow answers with: reports, series, anomalies.

Their members are the users' contract (README, ``docs/contract.md``) and the HTTP API's
OpenAPI document (``entrypoints.api.schemas``), whose tests hold the routes' answers to it; in
the code that builds and shows them they are JSON objects, written out as built.
"""

from __future__ import annotations

from typing import Any, TypeAlias

# A JSON object as ``msgspec`` writes it: member values of any JSON type (``Decimal`` for exact
# amounts).
JsonObject: TypeAlias = dict[str, Any]
