"""The USD rates table: yuan per U.S. dollar by month, loaded by ``portflow rates load``.

Kept apart from the state ``drop_state`` deletes: the rates come from a file, not from Kafka, so
a rebuild could not bring them back. Nor do they need a state: they may be loaded before the
first event.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from decimal import Decimal


class Rates:
    """The rates half of ``RedisStore``: one hash, ``<root>:rates``, mapping a month
    (``YYYY-MM``) to the JSON ``{"rate": "7.2570", "source": "..."}``."""

    def rate_entries(self) -> dict[str, dict]:
        """Month → ``{"rate", "source"}`` (the rate as written), in month order."""
        return entries_of(self.client.hgetall(self.rates_key))

    def usd_rates(self) -> dict[str, Decimal]:
        """Month → yuan per dollar, in month order."""
        return rates_of(self.client.hgetall(self.rates_key))

    def put_rates(self, rates: Mapping[str, dict], replace: bool = False) -> None:
        """Store these months' entries at once: added to the table, or (``replace``) as the
        whole table, a month not among them dropped. Readers see the table before or after,
        never between."""
        if not rates:
            raise ValueError("put_rates needs at least one month")
        mapping = {month: json.dumps(entry) for month, entry in rates.items()}
        if not replace:
            self.client.hset(self.rates_key, mapping=mapping)
            return
        # Written aside, then renamed over the table (one atomic step; the same hash slot).
        loading = f"{self.rates_key}:loading:{secrets.token_hex(4)}"
        self.client.hset(loading, mapping=mapping)
        self.client.rename(loading, self.rates_key)


def entries_of(stored: Mapping[bytes, bytes]) -> dict[str, dict]:
    """The rates hash as read: month → ``{"rate", "source"}``, in month order."""
    return {month.decode(): json.loads(entry) for month, entry in sorted(stored.items())}


def rates_of(stored: Mapping[bytes, bytes]) -> dict[str, Decimal]:
    """The rates hash as read: month → yuan per dollar, in month order."""
    return {month: Decimal(entry["rate"]) for month, entry in entries_of(stored).items()}
