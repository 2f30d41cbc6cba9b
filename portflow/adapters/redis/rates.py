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

from redis.typing import EncodableT, FieldT

from portflow.adapters.redis.keys import StoreKeys, text
from portflow.domain.rates import RateEntry


class Rates(StoreKeys):
    """The rates half of ``RedisStore``: one hash, ``<root>:rates``, mapping a month
    (``YYYY-MM``) to the JSON ``{"rate": "7.2570", "source": "..."}``."""

    def rate_entries(self) -> dict[str, RateEntry]:
        """Month → ``{"rate", "source"}`` (the rate as written), in month order."""
        return entries_of(self.client.hgetall(self.rates_key))

    def usd_rates(self) -> dict[str, Decimal]:
        """Month → yuan per dollar, in month order."""
        return rates_of(self.client.hgetall(self.rates_key))

    def put_rates(self, rates: Mapping[str, RateEntry], replace: bool = False) -> None:
        """Store these months' entries at once: added to the table, or (``replace``) as the
        whole table, a month not among them dropped. Readers see the table before or after,
        never between."""
        if not rates:
            raise ValueError("put_rates needs at least one month")
        mapping: dict[FieldT, EncodableT] = {m: json.dumps(e) for m, e in rates.items()}
        if not replace:
            self.client.hset(self.rates_key, mapping=mapping)
            return
        # Written aside, then renamed over the table (one atomic step; the same hash slot).
        loading = f"{self.rates_key}:loading:{secrets.token_hex(4)}"
        self.client.hset(loading, mapping=mapping)
        self.client.rename(loading, self.rates_key)


def entries_of(stored: Mapping[bytes | str, bytes | str]) -> dict[str, RateEntry]:
    """The rates hash as read: month → ``{"rate", "source"}``, in month order."""
    entries = {text(month): entry for month, entry in stored.items()}
    return {month: json.loads(entries[month]) for month in sorted(entries)}


def rates_of(stored: Mapping[bytes | str, bytes | str]) -> dict[str, Decimal]:
    """The rates hash as read: month → yuan per dollar, in month order."""
    return {month: Decimal(entry["rate"]) for month, entry in entries_of(stored).items()}
