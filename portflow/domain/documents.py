"""The JSON documents portflow answers with: reports, series, anomalies, status.

Their members are the public contract's (README; ``docs/``), checked member by member by the
contract tests; in code they are JSON objects, built once and then written out or shown.
"""

from __future__ import annotations

from typing import Any, TypeAlias

# A JSON object as ``json``/``msgspec`` write it: member values of any JSON type.
JsonObject: TypeAlias = dict[str, Any]
