"""The re-drive ledger: which dead letters ``portflow dlq replay`` sent back, when, and where to.

The DLQ topic is an append-only log, so what became of a letter is known only here: a re-driven
record that the workers then applied leaves no trace on the DLQ. Kept apart from the state
``drop_state`` deletes: a rebuild re-reads the source topics, which does not undo a re-drive.
"""

from __future__ import annotations

import json


class Redrives:
    """The ledger half of ``RedisStore``: one hash, ``<root>:redriven``, mapping a dead letter's
    original source (``DeadLetterGroup.source``) to the JSON list of its re-drives."""

    def redrives(self) -> dict[str, list[dict]]:
        """Source → its re-drives, oldest first: ``{"letter", "at", "to"}`` each."""
        stored = self.client.hgetall(self.redrives_key)
        return {source.decode(): json.loads(redrives) for source, redrives in stored.items()}

    def set_redrives(self, redrives: dict[str, list[dict]]) -> None:
        """Store the whole list of re-drives of each of these sources."""
        if redrives:
            self.client.hset(
                self.redrives_key, mapping={k: json.dumps(v) for k, v in redrives.items()}
            )
