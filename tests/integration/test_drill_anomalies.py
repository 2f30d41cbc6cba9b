"""`portflow anomalies` over the disruption drill read from a real redis-server (no broker: the
worker's processor applies the drill): exactly the drill's disrupted days, every day judged as
the judge before issue 23 judged it."""

from __future__ import annotations

import json

import pytest

from portflow.adapters.redis import RedisStore
from portflow.config import Settings
from portflow.services.anomalies import AnomaliesRequest, DailyTotals, read_anomalies
from producers.scenarios.disruption_drill import expected_path, generate_drill
from tests.bench import bench_module
from tests.support.prefixes import unique_prefix

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def drill(redis_url, tmp_path_factory):
    path = tmp_path_factory.mktemp("drill") / "drill.jsonl"
    generate_drill(str(path))
    settings = Settings(redis_url=redis_url, topic_prefix=unique_prefix())
    store = RedisStore.from_url(redis_url, settings.topic_prefix)
    bench_module("detection").load_drill(store, settings, path)
    with open(expected_path(str(path))) as f:
        return store, settings, json.load(f)


def test_anomalies_lists_exactly_the_days_the_drill_disrupted(drill):
    store, settings, expected = drill
    for measure, views in expected.items():
        for by, anomalies in views.items():
            found = [
                (a["day"], a["key"])
                for year in ("2023", "2024")
                for a in read_anomalies(
                    store, settings.tz, AnomaliesRequest.parse(year, measure, by.split(","))
                )["anomalies"]
            ]
            assert sorted(found, key=str) == sorted(
                ((a["day"], a["key"]) for a in anomalies), key=str
            ), (measure, by)


def test_a_year_of_the_drill_is_judged_as_the_judge_before_issue_23_judged_it(drill):
    store, _, _ = drill
    bench, before = bench_module("detection"), bench_module("detection_before")
    judged = bench.judge_year(DailyTotals, store, "value_cny", ("port", "mode"))
    assert judged == bench.judge_year(before.DailyTotals, store, "value_cny", ("port", "mode"))
    assert sum(j.anomalous for j in judged) == 19
