"""The ``xinjiang-2024h1`` scenario: H1 2023 and H1 2024 events that add up to the seed article.

Totals are exact by construction, not by luck: each year's value is first split into cells of
(mode, zone class, partner group) whose sums hit every published and chosen marginal to the fen
(``integer_table``), then each cell into consignments, and each year's tonnage over them to the
kilogram. Everything random comes from one seeded generator and the file is sorted by event
time, so the same seed gives the same bytes. Every number lives in ``xinjiang_2024h1.toml``.
"""

from __future__ import annotations

import bisect
import itertools
import random
import tomllib
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from portflow.domain.countries import ISO_3166_ALPHA2
from portflow.domain.events import MODES
from portflow.domain.queries import MissingRates
from portflow.domain.reconcile import Check, check_figure, check_share, check_unavailable
from producers.scenarios import MAX_SCALE
from producers.scenarios.writing import (
    CST,
    companion_path,
    decimal_text,
    rfc3339,
    write_replay_file,
)

if TYPE_CHECKING:
    from portflow.services.reports import Reports

DATA_FILE = Path(__file__).with_name("xinjiang_2024h1.toml")
# The rate the article implies for every month of the scenario (derived in DATA_FILE).
RATES_FILE = Path(__file__).with_name("xinjiang_2024h1_usd_rates.csv")
YEARS = (2023, 2024)
ZONE_CLASSES = ("none", "ftz", "cbz", "both")
PARTNER_GROUPS = ("KZ", "KG", "other")
# Partners in order of likelihood beyond KZ and KG: neighbours and big economies first.
PREFERRED_PARTNERS = [
    "RU",
    "UZ",
    "TJ",
    "TM",
    "PK",
    "MN",
    "AF",
    "IN",
    "DE",
    "PL",
    "BY",
    "NL",
    "IT",
    "FR",
    "GB",
    "TR",
    "IR",
    "AE",
    "SA",
    "US",
    "JP",
    "KR",
    "VN",
    "TH",
    "MY",
    "SG",
    "ID",
    "AZ",
    "GE",
    "AM",
    "UA",
    "BE",
    "ES",
    "CZ",
    "HU",
    "RO",
    "BG",
    "RS",
    "GR",
    "AT",
    "CH",
    "SE",
    "FI",
    "DK",
    "NO",
    "LT",
    "LV",
    "EE",
    "SK",
    "SI",
    "HR",
    "BA",
    "AL",
    "MK",
    "ME",
    "MD",
    "IL",
    "EG",
    "NG",
    "ZA",
    "KE",
    "ET",
    "BR",
    "AR",
    "CL",
    "MX",
    "CA",
    "AU",
    "NZ",
    "PH",
    "BD",
    "LK",
    "NP",
    "MM",
    "KH",
    "LA",
    "QA",
    "KW",
    "OM",
    "BH",
    "JO",
    "LB",
    "IQ",
    "SY",
    "YE",
    "DZ",
    "MA",
    "TN",
    "LY",
    "SD",
]
NOT_PARTNERS = {"CN", "AQ", "BV", "HM", "UM", "TF", "IO", "GS"}  # China itself; no inhabitants
BILLION = Decimal(10) ** 9

# The data file as tomllib reads it: its ``published`` figures and the ``chosen`` parameters.
ScenarioData = dict[str, Any]
Line = tuple[datetime, str]  # an event's time and its JSON line


class ReportFn(Protocol):
    """``report(period, measure, by, currency)``: the report object (``portflow report --json``)."""

    def __call__(
        self, period: str, measure: str, by: list[str], currency: str = "CNY"
    ) -> dict[str, Any]: ...


def load_data(path: Path = DATA_FILE) -> ScenarioData:
    with open(path, "rb") as f:
        return tomllib.load(f)


def fen(yuan: str) -> int:
    return int(Decimal(yuan) * 100)


def kilograms(tonnes: str) -> int:
    return int(Decimal(tonnes) * 1000)


def previous(current: int, growth_pct: str) -> int:
    """The year-earlier amount that ``current`` grew from by ``growth_pct`` per cent."""
    return round(Fraction(current) / (1 + Fraction(Decimal(growth_pct)) / 100))


@dataclass
class YearTargets:
    """One year's exact totals: value by mode, partner group and zone class; weight; trains."""

    total_fen: int
    mode_fen: dict[str, int]
    partner_fen: dict[str, int]
    zone_fen: dict[str, int]
    weight_kg: int
    trains: dict[str, int]
    other_partners: list[str] = field(default_factory=list)


def year_targets(data: ScenarioData) -> dict[int, YearTargets]:
    pub, chosen = data["published"], data["chosen"]
    total24 = fen(pub["total_value_yuan"])
    total23 = previous(total24, pub["total_value_yoy_pct"])
    modes24, modes23 = _value_by_mode(data, total24, total23)
    partners24, partners23 = _value_by_partner(data, total24, total23)
    zones24, zones23 = _value_by_zone(data, total24, total23)
    weight24 = kilograms(pub["cargo_tonnes"])
    trains24 = dict(pub["trains"])
    candidates = PREFERRED_PARTNERS + sorted(
        ISO_3166_ALPHA2 - NOT_PARTNERS - {"KZ", "KG"} - set(PREFERRED_PARTNERS)
    )
    n_other24 = pub["partners"] - 2
    n_other23 = chosen["partners_2023"] - 2
    return {
        2024: YearTargets(
            total24, modes24, partners24, zones24, weight24, trains24, candidates[:n_other24]
        ),
        2023: YearTargets(
            total23,
            modes23,
            partners23,
            zones23,
            previous(weight24, pub["cargo_yoy_pct"]),
            {s: previous(n, pub["trains_yoy_pct"][s]) for s, n in trains24.items()},
            candidates[:n_other23],
        ),
    }


def _value_by_mode(
    data: ScenarioData, total24: int, total23: int
) -> tuple[dict[str, int], dict[str, int]]:
    """2024's and 2023's value by transport mode, in fen; the pipeline takes the rest."""
    pub, chosen = data["published"], data["chosen"]
    modes24 = {m: fen(v) for m, v in chosen["mode_value_2024_yuan"].items()}
    modes23 = {m: previous(v, pub["mode_value_yoy_pct"][m]) for m, v in modes24.items()}
    modes24["pipeline"] = total24 - sum(modes24.values())
    modes23["pipeline"] = total23 - sum(modes23.values())
    return modes24, modes23


def _value_by_partner(
    data: ScenarioData, total24: int, total23: int
) -> tuple[dict[str, int], dict[str, int]]:
    """2024's and 2023's value by partner group, in fen; "other" takes the rest."""
    pub, chosen = data["published"], data["chosen"]
    partners24 = {p: fen(v) for p, v in chosen["partner_value_2024_yuan"].items()}
    partners23 = {p: previous(v, pub["partner_yoy_pct"][p]) for p, v in partners24.items()}
    partners24["other"] = total24 - sum(partners24.values())
    partners23["other"] = total23 - sum(partners23.values())
    return partners24, partners23


def _value_by_zone(
    data: ScenarioData, total24: int, total23: int
) -> tuple[dict[str, int], dict[str, int]]:
    """2024's and 2023's value by zone class, in fen; "none" takes the rest."""
    pub, chosen = data["published"], data["chosen"]
    both24 = fen(chosen["ftz_and_cbz_2024_yuan"])
    ftz24, cbz24 = fen(pub["ftz_value_yuan"]), fen(pub["cbz_value_yuan"])
    zones24 = {"ftz": ftz24 - both24, "cbz": cbz24 - both24, "both": both24}
    zones24["none"] = total24 - sum(zones24.values())
    zones23 = {"ftz": 0, "both": 0, "cbz": previous(cbz24, pub["cbz_yoy_pct"])}  # FTZ from 2023-11
    zones23["none"] = total23 - sum(zones23.values())
    return zones24, zones23


def integer_table(rows: list[int], cols: list[int]) -> list[list[int]]:
    """Non-negative integers with exactly these row and column sums, near rows x cols / total.

    Floors of the proportional table, then the missing units to the largest remainders where
    both the row and the column still need one, then (rarely) north-west corner for the rest.
    """
    total = sum(rows)
    if total != sum(cols):
        raise ValueError("row and column sums differ")
    if total == 0:
        return [[0] * len(cols) for _ in rows]
    table = [[r * c // total for c in cols] for r in rows]
    need_row = [r - sum(line) for r, line in zip(rows, table, strict=True)]
    need_col = [c - sum(line[j] for line in table) for j, c in enumerate(cols)]
    by_remainder = sorted(
        ((rows[i] * cols[j] % total, i, j) for i in range(len(rows)) for j in range(len(cols))),
        reverse=True,
    )
    for _, i, j in by_remainder:
        if need_row[i] > 0 and need_col[j] > 0:
            table[i][j] += 1
            need_row[i] -= 1
            need_col[j] -= 1
    for i, j in itertools.product(range(len(rows)), range(len(cols))):
        units = min(need_row[i], need_col[j])
        if units > 0:
            table[i][j] += units
            need_row[i] -= units
            need_col[j] -= units
    return table


def value_cells(targets: YearTargets, pipeline_kz_share: float) -> dict[tuple[str, str, str], int]:
    """(mode, zone class, partner group) → fen, matching every marginal of the year exactly.

    Pipelines lie in no zone and carry nothing for Kyrgyzstan; the other modes are spread
    proportionally over zone classes, then partner groups.
    """
    pipe = targets.mode_fen["pipeline"]
    pipe_kz = round(pipe * pipeline_kz_share)
    cells = {("pipeline", "none", "KZ"): pipe_kz, ("pipeline", "none", "other"): pipe - pipe_kz}
    modes = [m for m in MODES if m != "pipeline"]
    zone_cols = [targets.zone_fen[z] - (pipe if z == "none" else 0) for z in ZONE_CLASSES]
    by_mode_zone = integer_table([targets.mode_fen[m] for m in modes], zone_cols)
    pairs = [(m, z) for m in modes for z in ZONE_CLASSES]
    partner_cols = [
        targets.partner_fen["KZ"] - pipe_kz,
        targets.partner_fen["KG"],
        targets.partner_fen["other"] - (pipe - pipe_kz),
    ]
    by_pair_partner = integer_table(
        [by_mode_zone[modes.index(m)][ZONE_CLASSES.index(z)] for m, z in pairs], partner_cols
    )
    for (m, z), line in zip(pairs, by_pair_partner, strict=True):
        for group, value in zip(PARTNER_GROUPS, line, strict=True):
            cells[(m, z, group)] = value
    return cells


def split(total: int, parts: int, rng: random.Random, sigma: float = 0.6) -> list[int]:
    """``total`` in ``parts`` lognormal-sized non-negative integers that sum to it exactly."""
    weights = [rng.lognormvariate(0, sigma) for _ in range(parts)]
    scale = sum(weights)
    shares = [int(total * w / scale) for w in weights]
    shares[max(range(parts), key=weights.__getitem__)] += total - sum(shares)
    return shares


class _Days:
    """Seeded sampling of H1 days with weekly, Spring Festival and monthly patterns."""

    def __init__(self, year: int, chosen: dict[str, Any]) -> None:
        festival = date.fromisoformat(chosen["spring_festival"][str(year)])
        self.days: list[date] = []
        weights: list[float] = []
        day = date(year, 1, 1)
        while day <= date(year, 6, 30):
            weight = chosen["weekday_weights"][day.weekday()]
            weight *= 1 + chosen["monthly_ramp"] * (day.month - 1)
            if abs((day - festival).days) <= 3:
                weight *= chosen["spring_festival_factor"]
            self.days.append(day)
            weights.append(weight)
            day += timedelta(days=1)
        self.cumulative = list(itertools.accumulate(weights))

    def moment(self, rng: random.Random) -> datetime:
        """A local (UTC+8) time on a sampled day: mostly office hours, sometimes near midnight."""
        day = self.days[bisect.bisect(self.cumulative, rng.random() * self.cumulative[-1])]
        if rng.random() < 0.06:
            seconds = rng.choice([rng.randint(0, 3599), rng.randint(82800, 86399)])
        else:
            seconds = int(min(max(rng.gauss(14 * 3600, 3.5 * 3600), 0), 86399))
        return datetime(day.year, day.month, day.day, tzinfo=CST) + timedelta(seconds=seconds)


def _weighted(
    options: Mapping[str, float], rng: random.Random, allowed: Collection[str] | None = None
) -> str:
    names = [n for n in options if allowed is None or n in allowed]
    return rng.choices(names, [options[n] for n in names])[0]


@dataclass
class _Shipment:
    year: int
    moment: datetime
    port: str
    mode: str
    direction: str
    value_fen: int
    partner: str
    trade_mode: str
    zones: list[str]
    weight_kg: int = 0


class XinjiangScenario:
    def __init__(
        self, seed: int = 2024, scale: float = 1.0, data: ScenarioData | None = None
    ) -> None:
        if not 0 < scale <= MAX_SCALE:
            raise ValueError(f"--scale must be above 0 and at most {MAX_SCALE}")
        self.data = data or load_data()
        self.chosen = self.data["chosen"]
        self.rng = random.Random(seed)
        self.scale = scale
        self.targets = year_targets(self.data)

    # shipments ---------------------------------------------------------------------------------
    def _zones_and_port(self, zone_class: str, mode: str) -> tuple[list[str], str]:
        c, rng = self.chosen, self.rng
        if zone_class == "none":
            return [], _weighted(c["ports_by_mode"][mode], rng)
        serving = {p for p, modes in c["zone_port_modes"].items() if mode in modes}
        if zone_class == "cbz":
            port = _weighted(c["cbz_zones"], rng, serving)
            return [f"cbz-{port}"], port
        port = _weighted(c["ftz_areas"], rng, serving)
        return ([f"cbz-{port}", f"ftz-{port}"] if zone_class == "both" else [f"ftz-{port}"]), port

    def _partner_picker(self, others: list[str]) -> Callable[[str, str], str]:
        exponent = self.chosen["zipf_exponent"]
        cumulative = list(
            itertools.accumulate(1 / (rank**exponent) for rank in range(1, len(others) + 1))
        )

        def pick(group: str, mode: str) -> str:
            if group != "other":
                return group
            if mode == "pipeline":
                pipeline_partners: list[str] = self.chosen["pipeline_partners"]
                return self.rng.choice(pipeline_partners)
            return others[bisect.bisect(cumulative, self.rng.random() * cumulative[-1])]

        return pick

    def shipments(self, year: int) -> list[_Shipment]:
        c, rng, targets = self.chosen, self.rng, self.targets[year]
        days = _Days(year, c)
        pick_partner = self._partner_picker(targets.other_partners)
        trade_modes = c[f"trade_mode_shares_{year}"]
        out: list[_Shipment] = []
        cells = value_cells(targets, c["pipeline_kz_share"])
        # At a small --scale the other partners would outnumber their consignments: each cell
        # gets at least its share of one consignment per partner (``_cover_partners``).
        donor_fen = sum(
            v for (mode, _, group), v in cells.items() if group == "other" and mode != "pipeline"
        )
        for (mode, zone_class, group), value in cells.items():
            if value == 0:
                continue
            typical = fen(str(c["shipment_value_yuan"][mode]))
            count = max(1, round(value / typical * self.scale))
            if group == "other" and mode != "pipeline":
                count = max(count, -(-len(targets.other_partners) * value // donor_fen) + 1)
            for amount in split(value, count, rng):
                zones, port = self._zones_and_port(zone_class, mode)
                out.append(
                    _Shipment(
                        year,
                        days.moment(rng),
                        port,
                        mode,
                        "export" if rng.random() < 0.62 else "import",
                        amount,
                        pick_partner(group, mode),
                        _weighted(trade_modes, rng),
                        zones,
                    )
                )
        self._cover_partners(out, targets.other_partners)
        self._assign_weights(out, targets.weight_kg)
        return out

    def _cover_partners(self, shipments: list[_Shipment], others: list[str]) -> None:
        """Give every partner of the year at least one consignment with value."""
        seen = {s.partner for s in shipments}
        donors = [
            s for s in shipments if s.partner in others and s.mode != "pipeline" and s.value_fen > 0
        ]
        self.rng.shuffle(donors)
        counts: dict[str, int] = {}
        for s in shipments:
            counts[s.partner] = counts.get(s.partner, 0) + 1
        for partner in others:
            if partner in seen:
                continue
            donor = next(d for d in donors if counts[d.partner] > 1)
            donors.remove(donor)
            counts[donor.partner] -= 1
            donor.partner = partner
            counts[partner] = 1

    def _assign_weights(self, shipments: list[_Shipment], total_kg: int) -> None:
        density = self.chosen["value_per_tonne_yuan"]
        raw = [s.value_fen / density[s.mode] * self.rng.lognormvariate(0, 0.3) for s in shipments]
        scale = sum(raw)
        for s, r in zip(shipments, raw, strict=True):
            s.weight_kg = int(total_kg * r / scale)
        heaviest = max(shipments, key=lambda s: s.weight_kg)
        heaviest.weight_kg += total_kg - sum(s.weight_kg for s in shipments)

    # events ------------------------------------------------------------------------------------
    def events(self) -> Iterator[Line]:
        """(event time, JSON line) of every event, in generation order."""
        rng, c = self.rng, self.chosen
        for year in YEARS:
            for n, s in enumerate(self.shipments(year)):
                event_id = f"xj{year}-s{n}"
                zones = ",".join(f'"{z}"' for z in s.zones)
                value = decimal_text(s.value_fen, 2)
                value_json = f'"{value}"' if rng.random() < 0.2 else value
                yield (
                    s.moment,
                    (
                        f'{{"type":"shipment","event_id":"{event_id}",'
                        f'"ts":"{rfc3339(s.moment, rng)}",'
                        f'"port":"{s.port}","mode":"{s.mode}","direction":"{s.direction}",'
                        f'"value_cny":{value_json},"weight_tonnes":{decimal_text(s.weight_kg, 3)},'
                        f'"partner":"{s.partner}","trade_mode":"{s.trade_mode}","zones":[{zones}]}}'
                    ),
                )
                if rng.random() < c["declared_share"]:
                    yield from self._declaration(f"{s.port}-{year}-{n}", s, value)
            yield from self._trains(year)

    def _declaration(self, declaration_id: str, s: _Shipment, value: str) -> Iterator[Line]:
        rng, c = self.rng, self.chosen
        filed = s.moment - timedelta(minutes=rng.randint(120, 2880))
        steps = [("filed", filed)]
        if rng.random() < c["inspected_share"]:
            steps.append(("inspected", filed + timedelta(minutes=rng.randint(30, 600))))
        if rng.random() < c["held_share"]:
            steps.append(("held", steps[-1][1] + timedelta(minutes=rng.randint(30, 600))))
        final = "rejected" if rng.random() < c["rejected_share"] else "released"
        steps.append(
            (final, max(steps[-1][1] + timedelta(minutes=5), s.moment - timedelta(minutes=30)))
        )
        for i, (status, moment) in enumerate(steps):
            extra = f',"trade_mode":"{s.trade_mode}","value_cny":"{value}"' if i == 0 else ""
            yield (
                moment,
                (
                    f'{{"type":"customs","event_id":"{declaration_id}-{i}",'
                    f'"ts":"{rfc3339(moment, rng)}","port":"{s.port}",'
                    f'"declaration_id":"{declaration_id}","status":"{status}"{extra}}}'
                ),
            )

    def _trains(self, year: int) -> Iterator[Line]:
        rng, c = self.rng, self.chosen
        days = _Days(year, c)
        for service, count in self.targets[year].trains.items():
            low, high = c["train_teu"][service]
            for n in range(count):
                moment = days.moment(rng)
                port = _weighted(c["train_port_shares"], rng)
                direction = "outbound" if rng.random() < c["train_outbound_share"] else "inbound"
                yield (
                    moment,
                    (
                        f'{{"type":"train","event_id":"xj{year}-{service}-{n}",'
                        f'"ts":"{rfc3339(moment, rng)}",'
                        f'"port":"{port}","service":"{service}","direction":"{direction}",'
                        f'"teu":{rng.randint(low, high)},"train_id":"X{year % 100}{n:05d}"}}'
                    ),
                )

    def write(self, path: str) -> int:
        """Write the replay file sorted by event time, with a few producer retries; count lines."""
        ordered = sorted(self.events(), key=lambda item: item[0])
        retry = self.chosen["retry_share"]
        lines: list[str] = []
        later: dict[int, list[str]] = {}
        for index, (_, line) in enumerate(ordered):
            lines.append(line)
            lines.extend(later.pop(index, []))
            if self.rng.random() < retry:  # the same event sent again a little later
                later.setdefault(index + self.rng.randint(1, 200), []).append(line)
        for pending in later.values():
            lines.extend(pending)
        body = ("\n".join(lines) + "\n").encode("ascii")
        write_replay_file(path, body)
        return len(lines)


def generate_xinjiang(path: str, seed: int = 2024, scale: float = 1.0) -> int:
    return XinjiangScenario(seed, scale).write(path)


def write_rates(path: str) -> str:
    """Write the scenario's USD rates file beside its replay file ``path``; return where."""
    rates_path = companion_path(path, ".usd-rates.csv")
    Path(rates_path).write_bytes(RATES_FILE.read_bytes())
    return rates_path


def billions(amount_text: str) -> str:
    """A published amount in billions, to the article's two decimals."""
    return f"{Decimal(amount_text) / BILLION:.2f}"


def acceptance_checks(report: ReportFn, data: ScenarioData | None = None) -> list[Check]:
    """Every published figure of the article against portflow's reports of H1 2024.

    ``report(period, measure, by, currency="CNY")`` returns the report object (``MissingRates``
    for dollars without the rates). Share checks compare the article's stated shares with the
    shares its own totals give (they disagree; see README).
    """
    pub = (data or load_data())["published"]
    period = "2024-H1"
    value = report(period, "value_cny", [])["total"]
    return [
        *_value_checks(report, period, pub, value),
        *_cargo_checks(report, period, pub),
        *_train_checks(report, period, pub),
        *_mode_checks(report, period, pub),
        *_zone_checks(report, period, pub, value),
        *_dollar_checks(report, period, pub),
    ]


def _rows(report: ReportFn, period: str, measure: str, by: str) -> dict[str, dict[str, Any]]:
    """The report's rows by their value of the one dimension ``by``."""
    return {row["key"][by]: row for row in report(period, measure, [by])["rows"]}


def _value_checks(
    report: ReportFn, period: str, pub: dict[str, Any], value: dict[str, Any]
) -> list[Check]:
    """The total trade value and its growth; the partners: how many, and each one's growth."""
    partners = _rows(report, period, "value_cny", "partner")
    return [
        check_figure(
            "total trade value, billion yuan",
            billions(pub["total_value_yuan"]),
            value["current"] / BILLION,
        ),
        check_figure("total trade value YoY %", pub["total_value_yoy_pct"], value["yoy_pct"]),
        check_figure(
            "partner countries and regions",
            pub["partners"],
            sum(1 for r in partners.values() if r["current"]),
        ),
        *(
            check_figure(f"{code} trade YoY %", pct, partners.get(code, {}).get("yoy_pct"))
            for code, pct in pub["partner_yoy_pct"].items()
        ),
    ]


def _cargo_checks(report: ReportFn, period: str, pub: dict[str, Any]) -> list[Check]:
    """The cargo through the ports, in tonnes, and its growth."""
    weight = report(period, "weight_tonnes", [])["total"]
    return [
        check_figure(
            "cargo through the ports, tonnes",
            str(Decimal(pub["cargo_tonnes"]).quantize(1)),
            weight["current"],
        ),
        check_figure("cargo YoY %", pub["cargo_yoy_pct"], weight["yoy_pct"]),
    ]


def _train_checks(report: ReportFn, period: str, pub: dict[str, Any]) -> list[Check]:
    """Each train service's count at the article's ports (Alashankou, Khorgos), and its growth."""
    trains: dict[str, list[int]] = {}
    for row in report(period, "trains", ["port", "service"])["rows"]:
        if row["key"]["port"] in pub["train_ports"]:
            sums = trains.setdefault(row["key"]["service"], [0, 0])
            sums[0] += row["current"]
            sums[1] += row["previous"]
    checks = []
    for service, count in pub["trains"].items():
        sums = trains.get(service, [0, 0])
        checks.append(check_figure(f"{service} trains (Alashankou, Khorgos)", count, sums[0]))
        checks.append(
            check_figure(f"{service} trains YoY %", pub["trains_yoy_pct"][service], _growth(sums))
        )
    return checks


def _growth(sums: list[int]) -> Decimal | None:
    """Per cent growth from ``sums[1]`` (a year earlier) to ``sums[0]``; None from nothing."""
    return (Decimal(sums[0]) / sums[1] - 1) * 100 if sums[1] else None


def _mode_checks(report: ReportFn, period: str, pub: dict[str, Any]) -> list[Check]:
    """Each transport mode's growth in value."""
    modes = _rows(report, period, "value_cny", "mode")
    return [
        check_figure(f"{mode} value YoY %", pct, modes.get(mode, {}).get("yoy_pct"))
        for mode, pct in pub["mode_value_yoy_pct"].items()
    ]


def _zone_checks(
    report: ReportFn, period: str, pub: dict[str, Any], value: dict[str, Any]
) -> list[Check]:
    """The free trade and bonded zones: value and share of the total; the bonded zones' growth."""
    zones = _rows(report, period, "value_cny", "zone_group")
    ftz, cbz = zones.get("ftz", {}), zones.get("cbz", {})
    return [
        check_figure(
            "free trade zones, billion yuan",
            billions(pub["ftz_value_yuan"]),
            ftz.get("current", 0) / BILLION,
        ),
        check_share(
            "free trade zones, share of total %",
            pub["ftz_share_pct"],
            ftz.get("current", 0) / BILLION,
            value["current"] / BILLION,
        ),
        check_figure(
            "bonded zones, billion yuan",
            billions(pub["cbz_value_yuan"]),
            cbz.get("current", 0) / BILLION,
        ),
        check_figure("bonded zones YoY %", pub["cbz_yoy_pct"], cbz.get("yoy_pct")),
        check_share(
            "bonded zones, share of total %",
            pub["cbz_share_pct"],
            cbz.get("current", 0) / BILLION,
            value["current"] / BILLION,
        ),
    ]


def checks_against(reports: Reports) -> list[Check]:
    """``acceptance_checks`` answered by ``reports``, a ``portflow.services.reports.Reports``."""
    from portflow.domain.queries import ReportRequest

    return acceptance_checks(
        lambda period, measure, by, currency="CNY": reports.report(
            ReportRequest.parse(period, measure, by, currency=currency)
        )
    )


def _dollar_checks(report: ReportFn, period: str, pub: dict[str, Any]) -> list[Check]:
    """The article's three dollar figures against the report in U.S. dollars (at the rates
    loaded: the scenario's are in ``RATES_FILE``)."""
    published = {
        "total trade value, billion USD": billions(pub["total_value_usd"]),
        "free trade zones, billion USD": billions(pub["ftz_value_usd"]),
        "bonded zones, billion USD": billions(pub["cbz_value_usd"]),
    }
    try:
        result = report(period, "value_cny", ["zone_group"], currency="USD")
    except MissingRates as exc:
        why = (
            f"{exc}; the scenario's are in FILE.usd-rates.csv, written beside it by "
            "`portflow scenario xinjiang-2024h1`"
        )
        return [check_unavailable(figure, text, why) for figure, text in published.items()]
    zones = {row["key"]["zone_group"]: row["current"] for row in result["rows"]}
    computed = [result["total"]["current"], zones.get("ftz", 0), zones.get("cbz", 0)]
    return [
        check_figure(figure, text, Decimal(usd) / BILLION)
        for (figure, text), usd in zip(published.items(), computed, strict=True)
    ]
