"""The ``disruption-drill`` scenario: two years of daily traffic with known disruptions.

A drill for throughput-drop detection. Shipments on eight (port, mode) lanes and trains on four
(port, service) lines run every day of 2023 and 2024 with the rhythm a detector must not alert
on (weekdays, seasons, growth and the Spring Festival) and the five disruptions of
``DISRUPTIONS`` it must find. The generator first draws each day's traffic as it would have been
(the counterfactual), then thins the disrupted keys; every random draw happens before the
thinning, so a drill without disruptions has the same events plus the ones removed.
``expected_anomalies`` compares the two day by day and key by key, at each level a detector
reports (value by port and by port and mode, trains by port and service), so the answer key
comes from the generated numbers themselves. Same seed, same bytes.
"""

from __future__ import annotations

import functools
import json
import math
import random
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from fractions import Fraction
from typing import TypedDict

from portflow.domain.events import MODES, TRAIN_SERVICES
from portflow.domain.festivals import SPRING_FESTIVAL
from producers.scenarios.writing import (
    CST,
    companion_path,
    decimal_text,
    rfc3339,
    write_replay_file,
)

FIRST_DAY, LAST_DAY = date(2023, 1, 1), date(2024, 12, 31)
# Events fall between 08:00 and 20:00 local time (00:00 to 12:00 UTC): never across midnight.
DAY_START_S, DAY_END_S = 8 * 3600, 20 * 3600
VALUE_SIGMA = 0.3  # of the lognormal value of one shipment around its lane's mean
WEIGHT_SIGMA = 0.2  # of a shipment's value density around its mode's
# A lane's daily shipment count: round(expected x uniform(1 ± this)). Steadier than a Poisson
# count, as a port's day of many consignments is: the drill's partial outages must stand out.
COUNT_JITTER = 0.1
TRAIN_JITTER = 0.08  # a line's daily train count: round(expected x uniform(1 ± this))


@dataclass(frozen=True)
class Lane:
    """Shipments of one port and mode: about ``per_day`` a normal day, of ``mean_yuan`` each."""

    port: str
    mode: str
    per_day: float
    mean_yuan: int


@dataclass(frozen=True)
class Line:
    """Trains of one port and service, about ``per_day`` a normal day."""

    port: str
    service: str
    per_day: float


# Lane sizes keep every level's drop clear (at least 65% or at most 35%): Alashankou's road
# carries about a tenth of the port's value, Urumqi's air about a seventh.
LANES = (
    Lane("alashankou", "rail", 12, 32_000_000),
    Lane("alashankou", "road", 12, 4_000_000),
    Lane("khorgos", "road", 12, 9_000_000),
    Lane("khorgos", "rail", 12, 22_000_000),
    Lane("kashgar", "road", 12, 6_000_000),
    Lane("kashgar", "air", 12, 2_500_000),
    Lane("urumqi", "air", 12, 2_000_000),
    Lane("urumqi", "road", 12, 14_000_000),
)
LINES = (
    Line("alashankou", "china-europe", 14),
    Line("khorgos", "china-europe", 10),
    Line("khorgos", "china-asia", 8),
    Line("kashgar", "china-asia", 8),
)

# Monday to Sunday. Trucks and planes follow the working week; rail and trains run on timetables.
WEEKDAY = {
    "road": (1.05, 1.1, 1.1, 1.05, 1.0, 0.8, 0.7),
    "air": (1.05, 1.1, 1.1, 1.05, 1.0, 0.8, 0.7),
    "rail": (1.02, 1.03, 1.03, 1.02, 1.0, 0.95, 0.92),
    "train": (1.02, 1.03, 1.03, 1.02, 1.0, 0.95, 0.92),
}
SEASON_AMPLITUDE = 0.10  # ± over the year, highest in early October (the export season)
SEASON_PEAK = date(2023, 10, 1).timetuple().tm_yday
YEARLY_GROWTH = 1.08  # compounded daily, so each day is 8% above the same day a year earlier
# Days from the Spring Festival (first, last, factor): the run-up, the holiday, the return.
FESTIVAL = ((-7, -2, 0.8), (-1, 6, 0.25), (7, 14, 0.6), (15, 21, 0.85))

VALUE_PER_TONNE_YUAN = {"rail": 20_000, "road": 150_000, "air": 1_000_000}
EXPORT_SHARE = 0.65
OUTBOUND_SHARE = 0.6
TEU = {"china-europe": (90, 110), "china-asia": (50, 100)}
SERVICE_LETTER = {"china-europe": "E", "china-asia": "A"}  # in train_id: D240514KHE03
PARTNERS = {
    "alashankou": {"KZ": 5, "RU": 3, "DE": 1, "PL": 1, "BY": 1},
    "khorgos": {"KZ": 6, "UZ": 2, "RU": 1, "DE": 1},
    "kashgar": {"KG": 5, "PK": 2, "TJ": 2, "UZ": 1},
    "urumqi": {"KZ": 3, "RU": 2, "AE": 1, "DE": 1, "TR": 1, "UZ": 1},
}
TRADE_MODES = {
    "general": 60,
    "border_small_volume": 15,
    "bonded_logistics": 12,
    "processing": 5,
    "other": 8,
}
BONDED_SHARE = 0.15  # of shipments declared in the port's bonded zone (cbz-<port>)
FTZ_SHARE = 0.10  # of shipments in the free trade zone's area, where the port has one
FTZ_PORTS, FTZ_OPENED = ("khorgos", "kashgar", "urumqi"), date(2023, 11, 1)


@dataclass(frozen=True)
class Disruption:
    """From ``first`` to ``last`` (local days, inclusive) ``port``'s traffic is ``factor`` times
    what it would have been: on one mode or train service (``part``), or all of it (None)."""

    first: date
    last: date
    port: str
    part: str | None
    factor: float

    def __post_init__(self) -> None:
        if self.part is not None and self.part not in MODES + TRAIN_SERVICES:
            raise ValueError(f"{self.part!r} is neither a mode nor a train service")
        if not 0 <= self.factor < 1 or self.first > self.last:
            raise ValueError("a disruption lowers traffic over at least one day")

    def covers(self, day: date, port: str, part: str) -> bool:
        return self.first <= day <= self.last and port == self.port and self.part in (None, part)


DISRUPTIONS = (
    Disruption(date(2024, 5, 14), date(2024, 5, 17), "khorgos", None, 0.0),
    Disruption(date(2024, 9, 2), date(2024, 9, 8), "alashankou", "road", 0.3),
    Disruption(date(2023, 10, 9), date(2023, 10, 13), "kashgar", "china-asia", 0.0),
    Disruption(date(2023, 6, 20), date(2023, 6, 21), "urumqi", "air", 0.0),
    # In the 2024 festival's return weeks (days 16 and 17): detection must still see it.
    Disruption(date(2024, 2, 26), date(2024, 2, 27), "kashgar", None, 0.0),
)

# The levels of the answer key: measure, then the dimensions of its rows.
LEVELS = (
    ("value_cny", ("port",)),
    ("value_cny", ("port", "mode")),
    ("trains", ("port", "service")),
)


def days() -> list[date]:
    return [FIRST_DAY + timedelta(days=n) for n in range((LAST_DAY - FIRST_DAY).days + 1)]


def festival_factor(day: date) -> float:
    for year in (day.year, day.year + 1):
        offset = (day - SPRING_FESTIVAL[year]).days
        for first, last, factor in FESTIVAL:
            if first <= offset <= last:
                return factor
    return 1.0


def rhythm(day: date, kind: str) -> float:
    """The expected traffic of ``day`` relative to a normal day: ``kind`` is a mode or "train"."""
    season = 1 + SEASON_AMPLITUDE * math.cos(
        2 * math.pi * (day.timetuple().tm_yday - SEASON_PEAK) / 365.25
    )
    growth: float = YEARLY_GROWTH ** ((day - FIRST_DAY).days / 365)  # (typeshed: Any)
    return WEEKDAY[kind][day.weekday()] * season * growth * festival_factor(day)


def _weighted(options: Mapping[str, float], rng: random.Random) -> str:
    return rng.choices(list(options), list(options.values()))[0]


@dataclass(frozen=True)
class _Event:
    day: date
    order: int  # seconds since FIRST_DAY's local midnight: the file's sort key
    port: str
    part: str  # mode or service
    value_fen: int  # 0 for trains
    line: str


Moment = Callable[[], tuple[int, str]]  # the next event's sort key and time stamp (``_moment``)


def _moment(rng: random.Random, midnight: datetime, base_s: int) -> tuple[int, str]:
    """A random time of the day starting at ``midnight`` (``base_s`` after FIRST_DAY's): the
    file's sort key and its RFC 3339 time stamp."""
    seconds = rng.randrange(DAY_START_S, DAY_END_S)
    return base_s + seconds, rfc3339(midnight + timedelta(seconds=seconds), rng)


@functools.lru_cache(maxsize=1)  # expected_anomalies after generate_drill: drawn once
def _counterfactual(seed: int) -> tuple[_Event, ...]:
    """Every event of the drill without disruptions, day by day, from one seeded generator."""
    rng = random.Random(seed)
    events: list[_Event] = []
    for day in days():
        midnight = datetime(day.year, day.month, day.day, tzinfo=CST)
        base_s = (day - FIRST_DAY).days * 86400
        stamp = f"{day:%Y%m%d}"

        moment = functools.partial(_moment, rng, midnight, base_s)

        for lane in LANES:
            mean = lane.per_day * rhythm(day, lane.mode)
            count = round(mean * rng.uniform(1 - COUNT_JITTER, 1 + COUNT_JITTER))
            events += (_shipment(rng, moment, day, stamp, lane, n) for n in range(count))
        for line in LINES:
            jitter = rng.uniform(1 - TRAIN_JITTER, 1 + TRAIN_JITTER)
            count = round(line.per_day * rhythm(day, "train") * jitter)
            events += (_train(rng, moment, day, stamp, line, n) for n in range(count))
    return tuple(events)


def _shipment(
    rng: random.Random, moment: Moment, day: date, stamp: str, lane: Lane, n: int
) -> _Event:
    """The ``n``th shipment of ``lane`` on ``day`` (``stamp``: the day as YYYYMMDD)."""
    order, ts = moment()
    mu = math.log(lane.mean_yuan) - VALUE_SIGMA**2 / 2
    value_fen = round(rng.lognormvariate(mu, VALUE_SIGMA) * 100)
    weight_kg = round(
        value_fen * 10 / VALUE_PER_TONNE_YUAN[lane.mode] * rng.lognormvariate(0, WEIGHT_SIGMA)
    )
    direction = "export" if rng.random() < EXPORT_SHARE else "import"
    zones = _zones(rng, day, lane.port)
    return _Event(
        day,
        order,
        lane.port,
        lane.mode,
        value_fen,
        (
            f'{{"type":"shipment","event_id":"drill-{stamp}-{lane.port}-{lane.mode}-{n}",'
            f'"ts":"{ts}","port":"{lane.port}","mode":"{lane.mode}",'
            f'"direction":"{direction}","value_cny":{decimal_text(value_fen, 2)},'
            f'"weight_tonnes":{decimal_text(weight_kg, 3)},'
            f'"partner":"{_weighted(PARTNERS[lane.port], rng)}",'
            f'"trade_mode":"{_weighted(TRADE_MODES, rng)}",'
            f'"zones":[{",".join(zones)}]}}'
        ),
    )


def _zones(rng: random.Random, day: date, port: str) -> list[str]:
    """A shipment's zones, as JSON strings: bonded by chance, free trade by chance once open."""
    zones = []
    if rng.random() < BONDED_SHARE:
        zones.append(f'"cbz-{port}"')
    if port in FTZ_PORTS and day >= FTZ_OPENED and rng.random() < FTZ_SHARE:
        zones.append(f'"ftz-{port}"')
    return zones


def _train(rng: random.Random, moment: Moment, day: date, stamp: str, line: Line, n: int) -> _Event:
    """The ``n``th train of ``line`` on ``day`` (``stamp``: the day as YYYYMMDD)."""
    order, ts = moment()
    low, high = TEU[line.service]
    direction = "outbound" if rng.random() < OUTBOUND_SHARE else "inbound"
    return _Event(
        day,
        order,
        line.port,
        line.service,
        0,
        (
            f'{{"type":"train","event_id":"drill-{stamp}-{line.port}-{line.service}-{n}",'
            f'"ts":"{ts}","port":"{line.port}","service":"{line.service}",'
            f'"direction":"{direction}","teu":{rng.randint(low, high)},'
            f'"train_id":"D{stamp[2:]}{line.port[:2].upper()}'
            f'{SERVICE_LETTER[line.service]}{n:02d}"}}'
        ),
    )


def _kept(group: list[_Event], factor: float) -> list[_Event]:
    """What a disruption leaves of one day's events of one key (no random draw: see module).

    Trains: the first ``round(count x factor)``. Shipments: largest first, each one that still
    fits under ``factor`` of the day's value, so that the value, not only the count, follows the
    factor: the value kept is at most ``factor`` of the day's, and short of it by less than the
    smallest shipment left out (a 70% cut drops 70% to about 78%, never a borderline 65%)."""
    if factor == 0:
        return []
    if group[0].part in TRAIN_SERVICES:
        return group[: round(len(group) * factor)]
    target, total, kept = factor * sum(e.value_fen for e in group), 0, []
    for event in sorted(group, key=lambda e: -e.value_fen):
        if total + event.value_fen <= target:
            kept.append(event)
            total += event.value_fen
    return kept


def _disrupted(events: Sequence[_Event], disruptions: tuple[Disruption, ...]) -> list[_Event]:
    groups: dict[tuple[date, str, str], list[_Event]] = defaultdict(list)
    for event in events:
        groups[(event.day, event.port, event.part)].append(event)
    kept: set[int] = set()
    for (day, port, part), group in groups.items():
        factor = 1.0
        for disruption in disruptions:
            if disruption.covers(day, port, part):
                factor *= disruption.factor
        kept.update(map(id, group if factor == 1 else _kept(group, factor)))
    return [e for e in events if id(e) in kept]


def _totals(events: Sequence[_Event]) -> dict[tuple[str, str], dict[tuple[str, ...], int]]:
    """(measure, level) → key → total of the events: value in fen, trains counted."""
    totals: dict[tuple[str, str], dict[tuple[str, ...], int]] = defaultdict(
        lambda: defaultdict(int)
    )
    for e in events:
        if e.part in MODES:
            totals[("value_cny", "port")][(e.port,)] += e.value_fen
            totals[("value_cny", "port,mode")][(e.port, e.part)] += e.value_fen
        else:
            totals[("trains", "port,service")][(e.port, e.part)] += 1
    return totals


@dataclass(frozen=True)
class Drop:
    """How far a disrupted day's total of one key fell below its counterfactual, in per cent."""

    measure: str
    level: str  # "port", "port,mode" or "port,service"
    day: date
    key: dict[str, str]
    counterfactual: int
    actual: int

    @property
    def pct(self) -> float:
        return float((1 - Fraction(self.actual, self.counterfactual)) * 100)


def _drops(
    counterfactual: Sequence[_Event], actual: Sequence[_Event], disruptions: tuple[Disruption, ...]
) -> list[Drop]:
    disrupted_days = sorted(
        {
            d.first + timedelta(days=n)
            for d in disruptions
            for n in range((d.last - d.first).days + 1)
        }
    )
    by_day_cf: dict[date, list[_Event]] = defaultdict(list)
    by_day_actual: dict[date, list[_Event]] = defaultdict(list)
    for e in counterfactual:
        by_day_cf[e.day].append(e)
    for e in actual:
        by_day_actual[e.day].append(e)
    drops = []
    for day in disrupted_days:
        before, after = _totals(by_day_cf[day]), _totals(by_day_actual[day])
        for measure, dims in LEVELS:
            level = ",".join(dims)
            for key, total in sorted(before[(measure, level)].items()):
                if total > 0:
                    drops.append(
                        Drop(
                            measure,
                            level,
                            day,
                            dict(zip(dims, key, strict=True)),
                            total,
                            after[(measure, level)].get(key, 0),
                        )
                    )
    return drops


def level_drops(seed: int = 2024, disruptions: tuple[Disruption, ...] = DISRUPTIONS) -> list[Drop]:
    """Every key at every level on every disrupted day, with its counterfactual and actual."""
    counterfactual = _counterfactual(seed)
    return _drops(counterfactual, _disrupted(counterfactual, disruptions), disruptions)


class Anomaly(TypedDict):
    """A day the detector must report, and the key of its row."""

    day: str  # YYYY-MM-DD
    key: dict[str, str]  # dimension -> value


# measure -> level ("port", "port,mode", ...) -> the anomalies, sorted by day, then key
Anomalies = dict[str, dict[str, list[Anomaly]]]


def _anomalies(drops: list[Drop], min_drop_pct: float) -> Anomalies:
    expected: Anomalies = {}
    for measure, dims in LEVELS:
        expected.setdefault(measure, {})[",".join(dims)] = []
    for drop in drops:
        if drop.pct >= min_drop_pct:
            expected[drop.measure][drop.level].append(
                {"day": drop.day.isoformat(), "key": drop.key}
            )
    for levels in expected.values():
        for entries in levels.values():
            entries.sort(key=lambda entry: (entry["day"], tuple(entry["key"].values())))
    return expected


def expected_anomalies(
    min_drop_pct: float = 50, *, seed: int = 2024, disruptions: tuple[Disruption, ...] = DISRUPTIONS
) -> Anomalies:
    """The (day, key) of each level whose total falls at least ``min_drop_pct`` per cent below
    the same day without disruptions: ``{"value_cny": {"port": [...], "port,mode": [...]},
    "trains": {"port,service": [...]}}``, each list of ``{"day": ..., "key": {...}}`` sorted by
    day, then key. The same seed's numbers as ``generate_drill``'s file."""
    return _anomalies(level_drops(seed, disruptions), min_drop_pct)


def expected_path(path: str) -> str:
    """Where ``generate_drill`` writes the expected anomalies of the replay file ``path``."""
    return companion_path(path, ".expected.json")


def generate_drill(
    path: str,
    seed: int = 2024,
    *,
    disruptions: tuple[Disruption, ...] = DISRUPTIONS,
    min_drop_pct: float = 50,
) -> int:
    """Write the drill's replay file (gzip if ``path`` ends in .gz) sorted by event time and its
    expected anomalies to ``expected_path(path)``; return the number of events."""
    counterfactual = _counterfactual(seed)
    events = _disrupted(counterfactual, disruptions)
    expected = _anomalies(_drops(counterfactual, events, disruptions), min_drop_pct)
    events.sort(key=lambda e: e.order)  # stable: ties keep generation order
    body = "".join(e.line + "\n" for e in events).encode("ascii")
    write_replay_file(path, body)
    with open(expected_path(path), "w", encoding="utf-8") as out:
        json.dump(expected, out, indent=2, sort_keys=True)
        out.write("\n")
    return len(events)
