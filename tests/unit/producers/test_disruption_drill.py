"""The disruption-drill scenario: valid events, the rhythm, and an answer key the file bears out.

Totals are recomputed here from the written files alone (JSON, ``Decimal``, the reporting time
zone), not from the generator's structures: the drill, and the same drill without disruptions
(the counterfactual, which the generator promises differs only by the events removed).
"""

import gzip
import json
from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from portflow.domain.events import parse_record
from portflow.domain.festivals import SPRING_FESTIVAL
from producers.scenarios.disruption_drill import (
    DISRUPTIONS,
    LANES,
    LINES,
    Disruption,
    expected_anomalies,
    expected_path,
    generate_drill,
    level_drops,
)

TZ = ZoneInfo("Asia/Shanghai")
SEED = 2024


def _day_of(ts: str) -> date:
    return datetime.fromisoformat(ts).astimezone(TZ).date()


class Totals:
    """One replay file's daily totals: value in fen by (day, port, mode), trains by
    (day, port, service)."""

    def __init__(self, path):
        self.lines = path.read_bytes().splitlines()
        self.fen: dict[tuple, int] = defaultdict(int)
        self.shipments: dict[tuple, int] = defaultdict(int)
        self.trains: dict[tuple, int] = defaultdict(int)
        for line in self.lines:
            event = json.loads(line, parse_float=Decimal)
            day = _day_of(event["ts"])
            if event["type"] == "shipment":
                key = (day, event["port"], event["mode"])
                self.fen[key] += int(Decimal(event["value_cny"]) * 100)
                self.shipments[key] += 1
            else:
                self.trains[(day, event["port"], event["service"])] += 1

    def level(self, measure: str, level: str) -> dict[tuple[date, tuple], int]:
        """(day, key values) → total at one level of the answer key."""
        out: dict[tuple[date, tuple], int] = defaultdict(int)
        if measure == "trains":
            for (day, port, service), n in self.trains.items():
                out[(day, (port, service))] += n
        else:
            for (day, port, mode), fen in self.fen.items():
                out[(day, (port,) if level == "port" else (port, mode))] += fen
        return out

    def value(self, day: date, port: str, mode: str | None = None) -> int:
        return sum(
            fen
            for (d, p, m), fen in self.fen.items()
            if d == day and p == port and mode in (None, m)
        )


LEVELS = (
    ("value_cny", "port", ("port",)),
    ("value_cny", "port,mode", ("port", "mode")),
    ("trains", "port,service", ("port", "service")),
)


@pytest.fixture(scope="module")
def drill(tmp_path_factory):
    directory = tmp_path_factory.mktemp("drill")
    path, plain = directory / "drill.jsonl", directory / "plain.jsonl"
    count = generate_drill(str(path), seed=SEED)
    generate_drill(str(plain), seed=SEED, disruptions=())
    return {
        "path": path,
        "count": count,
        "totals": Totals(path),
        "plain": Totals(plain),
        "expected": json.loads((directory / "drill.expected.json").read_text()),
    }


def _disrupted_days(disruption: Disruption) -> list[date]:
    return [
        disruption.first + timedelta(days=n)
        for n in range((disruption.last - disruption.first).days + 1)
    ]


def _drops(drill) -> list[tuple[str, str, date, dict, float]]:
    """Every key of every level on every disrupted day: its drop from the counterfactual, %."""
    days = {day for d in DISRUPTIONS for day in _disrupted_days(d)}
    drops = []
    for measure, level, dims in LEVELS:
        actual = drill["totals"].level(measure, level)
        for (day, key), before in sorted(drill["plain"].level(measure, level).items()):
            if day in days and before > 0:
                drop = (1 - Decimal(actual.get((day, key), 0)) / before) * 100
                drops.append((measure, level, day, dict(zip(dims, key, strict=True)), float(drop)))
    return drops


def _in_festival(day: date) -> bool:
    return any(-7 <= (day - SPRING_FESTIVAL[year]).days <= 21 for year in (day.year, day.year + 1))


def _same_weekday_reference(series: dict, day: date, port: str, part: str) -> float:
    """The mean of the same weekday in the four weeks before and after ``day``, leaving out
    festival weeks and days the key is disrupted."""
    values = []
    for weeks in (*range(-4, 0), *range(1, 5)):
        other = day + timedelta(weeks=weeks)
        if _in_festival(other) or any(d.covers(other, port, part) for d in DISRUPTIONS):
            continue
        values.append(series.get((other, port, part), 0))
    assert len(values) >= 4
    return sum(values) / len(values)


def test_the_same_seed_writes_the_same_bytes_compressed_or_not(drill, tmp_path):
    again, packed = tmp_path / "again.jsonl", tmp_path / "again.jsonl.gz"
    assert generate_drill(str(again), seed=SEED) == drill["count"]
    assert again.read_bytes() == drill["path"].read_bytes()
    generate_drill(str(packed), seed=SEED)
    assert gzip.decompress(packed.read_bytes()) == drill["path"].read_bytes()
    assert (tmp_path / "again.expected.json").read_text() == (
        drill["path"].with_name("drill.expected.json").read_text()
    )


def test_the_expected_file_lies_beside_the_replay_file():
    assert expected_path("out/drill.jsonl") == "out/drill.expected.json"
    assert expected_path("out/drill.jsonl.gz") == "out/drill.expected.json"
    assert expected_path("drill") == "drill.expected.json"


def test_every_line_is_a_valid_event_of_the_lanes_and_lines_in_local_working_hours(drill):
    lines = drill["totals"].lines
    assert len(lines) == drill["count"]
    seconds, ids = [], set()
    for line in lines:
        kind = json.loads(line)["type"]
        events, rejections = parse_record(line, kind)
        assert rejections == [], line
        assert len(events) == 1, line
        event = events[0]
        seconds.append(event.ts_seconds)
        ids.add(event.event_id)
        local = event.ts.astimezone(TZ)
        assert date(2023, 1, 1) <= local.date() <= date(2024, 12, 31)
        assert 8 <= local.hour < 20
    assert seconds == sorted(seconds)
    assert len(ids) == len(lines)
    totals = drill["totals"]
    assert {(p, m) for _, p, m in totals.fen} == {(lane.port, lane.mode) for lane in LANES}
    assert {(p, s) for _, p, s in totals.trains} == {(line.port, line.service) for line in LINES}
    assert 80_000 < len(lines) < 130_000
    assert len(drill["path"].read_bytes()) < 40 * 2**20


def test_a_normal_day_has_about_twelve_shipments_a_lane_and_the_lanes_differ_in_size(drill):
    totals = drill["totals"]
    normal = [date(2024, 4, 8) + timedelta(days=n) for n in range(35)]  # no festival, no drill
    for lane in LANES:
        counts = [totals.shipments.get((day, lane.port, lane.mode), 0) for day in normal]
        assert 9 <= sum(counts) / len(counts) <= 15
        assert min(counts) >= 5  # a quiet Sunday on the road
        assert min(n for day, n in zip(normal, counts, strict=True) if day.weekday() < 5) >= 7
    means = {
        (lane.port, lane.mode): sum(
            totals.fen.get((day, lane.port, lane.mode), 0) for day in normal
        )
        / sum(totals.shipments.get((day, lane.port, lane.mode), 0) for day in normal)
        / 100
        for lane in LANES
    }
    for lane in LANES:
        assert abs(means[(lane.port, lane.mode)] / lane.mean_yuan - 1) < 0.1
    assert min(lane.mean_yuan for lane in LANES) >= 2e6
    assert max(lane.mean_yuan for lane in LANES) <= 40e6
    assert max(means.values()) / min(means.values()) > 8


def test_disruptions_remove_events_of_their_days_and_keys_and_change_nothing_else(drill):
    drilled, plain = drill["totals"], drill["plain"]
    removed = set(plain.lines) - set(drilled.lines)
    assert set(drilled.lines) <= set(plain.lines)
    assert len(plain.lines) - len(drilled.lines) == len(removed) > 0
    for line in removed:
        event = json.loads(line)
        day, part = _day_of(event["ts"]), event.get("mode") or event["service"]
        assert any(d.covers(day, event["port"], part) for d in DISRUPTIONS), line
    # the order is the counterfactual's, less the removed lines
    assert [line for line in plain.lines if line not in removed] == drilled.lines


def test_each_disrupted_day_carries_the_disruptions_factor_of_its_counterfactual(drill):
    drilled, plain = drill["totals"], drill["plain"]
    for disruption in DISRUPTIONS:
        lanes = [(lane.port, lane.mode) for lane in LANES]
        lines = [(line.port, line.service) for line in LINES]
        for day in _disrupted_days(disruption):
            for port, part in lanes + lines:
                series_d, series_p = (
                    (drilled.fen, plain.fen)
                    if (port, part) in lanes
                    else (drilled.trains, plain.trains)
                )
                before, after = series_p[(day, port, part)], series_d.get((day, port, part), 0)
                if not disruption.covers(day, port, part):
                    assert after == before
                elif disruption.factor == 0:
                    assert before > 0, (day, port, part)
                    assert after == 0, (day, port, part)
                else:  # the value kept is at most the factor's share, less by under a shipment
                    assert disruption.factor - 0.1 < after / before <= disruption.factor


def test_each_disrupted_day_is_its_factor_of_the_same_weekday_in_the_weeks_around(drill):
    totals = drill["totals"]
    for disruption in DISRUPTIONS:
        keys = [(lane.port, lane.mode, totals.fen) for lane in LANES]
        keys += [(line.port, line.service, totals.trains) for line in LINES]
        for port, part, series in keys:
            if not disruption.covers(disruption.first, port, part):
                continue
            actual = reference = 0.0
            for day in _disrupted_days(disruption):
                day_reference = _same_weekday_reference(series, day, port, part)
                day_actual = series.get((day, port, part), 0)
                assert day_reference > 0
                if disruption.factor == 0:
                    assert day_actual == 0
                else:
                    assert 0.1 < day_actual / day_reference < 0.6, (day, port, part)
                actual += day_actual
                reference += day_reference
            assert abs(actual / reference - disruption.factor) < 0.1, (disruption, port, part)


def test_the_spring_festival_dips_every_lane_and_line_without_being_a_disruption(drill):
    totals = drill["totals"]
    bands = {(-7, -2): 0.8, (-1, 6): 0.25, (7, 14): 0.6, (15, 21): 0.85}
    measures = {
        "value": [(lane.port, lane.mode, totals.fen) for lane in LANES],
        "shipments": [(lane.port, lane.mode, totals.shipments) for lane in LANES],
        "trains": [(line.port, line.service, totals.trains) for line in LINES],
    }
    for year in (2023, 2024):
        festival = SPRING_FESTIVAL[year]

        def mean(port, part, series, first, last, festival=festival):
            days = [festival + timedelta(days=o) for o in range(first, last + 1)]
            days = [d for d in days if not any(x.covers(d, port, part) for x in DISRUPTIONS)]
            return sum(series.get((d, port, part), 0) for d in days) / len(days)

        for measure, keys in measures.items():
            after = sum(mean(*key, 28, 55) for key in keys)  # four weeks once trade is back
            for (first, last), factor in bands.items():
                ratio = sum(mean(*key, first, last) for key in keys) / after
                # within a fifth: a week's noise, the season, and the floor of quiet days
                assert abs(ratio / factor - 1) < 0.2, (year, measure, first, ratio)
            for key in keys:
                assert mean(*key, -1, 6) / mean(*key, 28, 55) < 0.45, (year, key[:2])
    festival_days = {
        SPRING_FESTIVAL[y] + timedelta(days=o) for y in (2023, 2024) for o in range(-7, 22)
    }
    flagged = {
        (entry["day"], entry["key"]["port"])
        for levels in drill["expected"].values()
        for entries in levels.values()
        for entry in entries
        if date.fromisoformat(entry["day"]) in festival_days
    }
    assert flagged == {("2024-02-26", "kashgar"), ("2024-02-27", "kashgar")}


def test_the_expected_anomalies_are_what_the_files_own_totals_say(drill):
    expected = {"value_cny": {"port": [], "port,mode": []}, "trains": {"port,service": []}}
    for measure, level, day, key, drop in _drops(drill):
        if drop >= 50:
            expected[measure][level].append({"day": day.isoformat(), "key": key})
    assert drill["expected"] == expected
    assert expected_anomalies(seed=SEED) == expected
    sizes = {
        level: len(entries) for levels in expected.values() for level, entries in levels.items()
    }
    assert sizes == {
        "port": 4 + 2,
        "port,mode": 4 * 2 + 7 + 2 + 2 * 2,
        "port,service": 4 * 2 + 5 + 2,
    }


def test_the_expected_anomalies_follow_the_threshold():
    strict = expected_anomalies(80, seed=SEED)
    assert not [
        e
        for e in strict["value_cny"]["port,mode"]
        if e["key"]["mode"] == "road" and e["key"]["port"] == "alashankou"
    ]
    loose = expected_anomalies(10, seed=SEED)
    assert len(loose["value_cny"]["port"]) > len(expected_anomalies(seed=SEED)["value_cny"]["port"])


def test_no_level_is_borderline_and_a_lane_cut_leaves_its_port_above_65_per_cent(drill):
    drops = _drops(drill)
    assert all(drop >= 65 or drop <= 35 for *_, drop in drops)
    port_level = {
        (day, key["port"]): drop for measure, level, day, key, drop in drops if level == "port"
    }
    for disruption in DISRUPTIONS:
        if disruption.part is not None and disruption.part in {lane.mode for lane in LANES}:
            for day in _disrupted_days(disruption):
                assert port_level[(day, disruption.port)] <= 35
    generated = {
        (d.measure, d.level, d.day, tuple(d.key.items())): d.pct for d in level_drops(SEED)
    }
    assert generated == pytest.approx(
        {
            (measure, level, day, tuple(key.items())): drop
            for measure, level, day, key, drop in drops
        }
    )


def test_a_disruption_must_lower_a_known_mode_or_service():
    with pytest.raises(ValueError, match="'ship' is neither a mode nor a train service"):
        Disruption(date(2024, 1, 1), date(2024, 1, 2), "khorgos", "ship", 0.0)
    with pytest.raises(ValueError, match="a disruption lowers traffic over at least one day"):
        Disruption(date(2024, 1, 2), date(2024, 1, 1), "khorgos", None, 0.0)
