"""The re-drive ledger: which dead letters ``portflow dlq replay`` sent back, when, and where to.

The DLQ topic is an append-only log, so what became of a letter is known only here: a re-driven
record that the workers then applied leaves no trace on the DLQ. Kept apart from the state
``drop_state`` deletes: a rebuild re-reads the source topics, which does not undo a re-drive.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TypedDict

from redis.typing import EncodableT, FieldT

from portflow.adapters.redis.keys import StoreKeys, text


class Redrive(TypedDict):
    """One re-drive of a dead letter."""

    letter: str  # the re-driven letter's place on the DLQ topic: ``<partition>@<offset>``
    at: float  # when: Unix time
    to: str  # where it went: ``<topic>:<partition>@<offset>``


class Redrives(StoreKeys):
    """The ledger half of ``RedisStore``: one hash, ``<root>:redriven``, mapping a dead letter's
    original source (``DeadLetterGroup.source``) to the JSON list of its re-drives."""

    def redrives(self) -> dict[str, list[Redrive]]:
        """Source → its re-drives, oldest first."""
        stored = self.client.hgetall(self.redrives_key)
        return {text(source): json.loads(redrives) for source, redrives in stored.items()}

    def set_redrives(self, redrives: Mapping[str, Sequence[Redrive]]) -> None:
        """Store the whole list of re-drives of each of these sources."""
        if redrives:
            mapping: dict[FieldT, EncodableT] = {k: json.dumps(v) for k, v in redrives.items()}
            self.client.hset(self.redrives_key, mapping=mapping)
