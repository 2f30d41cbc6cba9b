"""Expected report figures computed independently of portflow, straight from a replay file.

Written with the standard library only (json with Decimal, zoneinfo), sharing no code with the
package, so that a bug in portflow's parsing, calendar or aggregation cannot hide in both.
Lines whose event_id starts with ``bad-`` are invalid by construction in the tests.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

REQUIRED = {
    "shipment": {
        "event_id",
        "ts",
        "port",
        "mode",
        "direction",
        "value_cny",
        "weight_tonnes",
        "partner",
        "trade_mode",
        "zones",
    },
    "train": {"event_id", "ts", "port", "service", "direction", "teu"},
    "customs": {"event_id", "ts", "port", "declaration_id", "status"},
}
MEASURE_TYPE = {
    "value_cny": "shipment",
    "weight_tonnes": "shipment",
    "shipments": "shipment",
    "trains": "train",
    "teu": "train",
    "declarations": "customs",
}


class Oracle:
    def __init__(self, path: str, tz: str = "Asia/Shanghai") -> None:
        self.tz = ZoneInfo(tz)
        self.events: list[tuple[str, dict, str]] = []  # (type, event, local date)
        self.dead_letters = 0
        seen = set()
        with open(path, "rb") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    event = json.loads(line, parse_float=Decimal)
                except ValueError:
                    self.dead_letters += 1
                    continue
                if isinstance(event, list):
                    self.dead_letters += len(event) if 1 <= len(event) <= 1000 else 1
                    continue
                kind = event.get("type") if isinstance(event, dict) else None
                if (
                    kind not in REQUIRED
                    or not REQUIRED[kind] <= event.keys()
                    or str(event["event_id"]).startswith("bad-")
                ):
                    self.dead_letters += 1
                    continue
                if (kind, event["event_id"]) in seen:
                    continue
                seen.add((kind, event["event_id"]))
                day = datetime.fromisoformat(event["ts"]).astimezone(self.tz).date().isoformat()
                self.events.append((kind, event, day))

    @staticmethod
    def _in(day: str, period: str) -> bool:
        if "-H" in period:
            year, half = period.split("-H")
            return day[:4] == year and (int(day[5:7]) - 1) // 6 + 1 == int(half)
        if "-Q" in period:
            year, quarter = period.split("-Q")
            return day[:4] == year and (int(day[5:7]) - 1) // 3 + 1 == int(quarter)
        return day.startswith(period)

    @staticmethod
    def _amount(measure: str, event: dict):
        if measure == "value_cny":
            return Decimal(str(event["value_cny"]))
        if measure == "weight_tonnes":
            return Decimal(str(event["weight_tonnes"]))
        if measure == "teu":
            return event["teu"]
        return 1

    @staticmethod
    def _keys(event: dict, dim: str) -> list[str]:
        if dim == "zone":
            return sorted(set(event["zones"]))
        if dim == "zone_group":
            return sorted({z.split("-")[0] for z in event["zones"]})
        return [event[dim]]

    def sums(self, period: str, measure: str, by: list[str]):
        rows: dict[tuple, Decimal] = defaultdict(Decimal)
        total = Decimal(0)
        for kind, event, day in self.events:
            if kind != MEASURE_TYPE[measure] or not self._in(day, period):
                continue
            amount = self._amount(measure, event)
            total += amount
            keys = [()]
            for dim in by:
                keys = [(*k, v) for k in keys for v in self._keys(event, dim)]
            for key in keys:
                rows[key] += amount
        return rows, total

    def report(self, period: str, previous: str, measure: str, by: list[str]) -> dict:
        now, total_now = self.sums(period, measure, by)
        before, total_before = self.sums(previous, measure, by)

        def yoy(cur, prev):
            if prev == 0:
                return None
            return ((Decimal(cur) / Decimal(prev) - 1) * 100).quantize(
                Decimal("0.01"), ROUND_HALF_UP
            )

        rows = {
            key: (now.get(key, 0), before.get(key, 0))
            for key in set(now) | set(before)
            if now.get(key, 0) or before.get(key, 0)
        }
        return {
            "rows": {key: (Decimal(c), Decimal(p), yoy(c, p)) for key, (c, p) in rows.items()},
            "total": (Decimal(total_now), Decimal(total_before), yoy(total_now, total_before)),
        }
