"""``portflow simulate``: a live, seeded stream of shipments, trains and customs declarations.

Events are stamped with the current time and drawn from the same choices as the Xinjiang
scenario (ports by mode, zones at their ports, partners, trade modes, consignment sizes), so the
dashboards look like Xinjiang's border traffic. A quarter of the shipments are declared: their
customs lifecycle (filed → inspected/held → released/rejected) unfolds over the following
seconds. Event ids carry the seed and the start time, so runs never collide in the dedupe window.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from producers.scenarios.writing import decimal_text
from producers.scenarios.xinjiang import XinjiangScenario, _weighted


def _stamp(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Simulator:
    def __init__(self, seed: int = 7, clock: Callable[[], float] = time.time) -> None:
        self.scenario = XinjiangScenario(seed=seed)
        self.rng = self.scenario.rng
        self.clock = clock
        chosen = self.scenario.chosen
        targets = self.scenario.targets[2024]
        self.chosen = chosen
        # how many consignments of each mode: value share over typical consignment value
        self.mode_weights = {
            m: v / chosen["shipment_value_yuan"][m] for m, v in targets.mode_fen.items()
        }
        self.zone_weights = dict(targets.zone_fen)
        self.partner_weights = dict(targets.partner_fen)
        self.pick_partner = self.scenario._partner_picker(targets.other_partners)
        self.run = f"{seed}-{int(clock())}"
        self._ids = itertools.count()
        self._pending: list[tuple[float, int, str]] = []  # (due, tie, JSON line)

    def events(self) -> Iterator[bytes]:
        """Endless JSON lines: due customs steps first, else a new shipment or train."""
        while True:
            now = self.clock()
            if self._pending and self._pending[0][0] <= now:
                yield heapq.heappop(self._pending)[2].replace("@TS@", _stamp(now)).encode()
            elif self.rng.random() < 0.02:
                yield self._train(now).encode()
            else:
                yield self._shipment(now).encode()

    def _id(self, kind: str) -> str:
        return f"sim-{self.run}-{kind}{next(self._ids)}"

    def _shipment(self, now: float) -> str:
        rng, c = self.rng, self.chosen
        mode = _weighted(self.mode_weights, rng)
        zone_class = "none" if mode == "pipeline" else _weighted(self.zone_weights, rng)
        zones, port = self.scenario._zones_and_port(zone_class, mode)
        partner = self.pick_partner(_weighted(self.partner_weights, rng), mode)
        value_fen = int(c["shipment_value_yuan"][mode] * 100 * rng.lognormvariate(-0.18, 0.6))
        weight_kg = int(
            value_fen / 100 / c["value_per_tonne_yuan"][mode] * 1000 * rng.lognormvariate(0, 0.3)
        )
        trade_mode = _weighted(c["trade_mode_shares_2024"], rng)
        event_id = self._id("s")
        if rng.random() < c["declared_share"]:
            self._declare(event_id, port, trade_mode, value_fen, now)
        zone_list = ",".join(f'"{z}"' for z in zones)
        return (
            f'{{"type":"shipment","event_id":"{event_id}","ts":"{_stamp(now)}","port":"{port}",'
            f'"mode":"{mode}","direction":"{"export" if rng.random() < 0.62 else "import"}",'
            f'"value_cny":{decimal_text(value_fen, 2)},'
            f'"weight_tonnes":{decimal_text(weight_kg, 3)},'
            f'"partner":"{partner}","trade_mode":"{trade_mode}","zones":[{zone_list}]}}'
        )

    def _declare(
        self, shipment_id: str, port: str, trade_mode: str, value_fen: int, now: float
    ) -> None:
        """Schedule a declaration's lifecycle over the next seconds (filed is due at once)."""
        rng, c = self.rng, self.chosen
        declaration = f"D{shipment_id}"
        steps = ["filed"]
        if rng.random() < c["inspected_share"]:
            steps.append("inspected")
        if rng.random() < c["held_share"]:
            steps.append("held")
        steps.append("rejected" if rng.random() < c["rejected_share"] else "released")
        due = now
        for i, status in enumerate(steps):
            extra = (
                f',"trade_mode":"{trade_mode}","value_cny":"{decimal_text(value_fen, 2)}"'
                if status == "filed"
                else ""
            )
            line = (
                f'{{"type":"customs","event_id":"{declaration}-{i}","ts":"@TS@",'
                f'"port":"{port}","declaration_id":"{declaration}","status":"{status}"{extra}}}'
            )
            heapq.heappush(self._pending, (due, next(self._ids), line))
            due += rng.uniform(2, 30)

    def _train(self, now: float) -> str:
        rng, c = self.rng, self.chosen
        service = rng.choices(list(c["train_teu"]), [4691, 3055])[0]
        low, high = c["train_teu"][service]
        direction = "outbound" if rng.random() < c["train_outbound_share"] else "inbound"
        return (
            f'{{"type":"train","event_id":"{self._id("t")}","ts":"{_stamp(now)}",'
            f'"port":"{_weighted(c["train_port_shares"], rng)}","service":"{service}",'
            f'"direction":"{direction}","teu":{rng.randint(low, high)}}}'
        )
