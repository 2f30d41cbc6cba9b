"""Reports and `portflow status` against a real redis-server: a prefix without state is an error,
a period with no data yet or in progress says so, status shows what the state holds."""

from __future__ import annotations

import dataclasses
import json

import pytest

from portflow.adapters.redis import LayoutConflict, RedisStore, TimeZoneConflict
from portflow.config import Settings
from tests.support.cli import invoke, portflow
from tests.support.events import shipment
from tests.support.processing import apply


@pytest.fixture
def december(settings) -> Settings:
    """December 2023 at two ports; December 2024 up to the 15th at one."""
    apply(
        settings,
        [
            shipment("a", "2023-12-05T10:00:00+08:00"),
            shipment("b", "2023-12-20T10:00:00+08:00", port="kashgar"),
            shipment("c", "2024-12-15T14:02:11+08:00", value_cny="50.00"),
        ],
    )
    return settings


@pytest.mark.parametrize(
    "command", [["report", "--period", "2024"], ["anomalies", "--period", "2024"], ["status"]]
)
def test_a_prefix_without_state_is_an_error_naming_it_and_the_database(december, command):
    typo = Settings(redis_url=december.redis_url, topic_prefix=december.topic_prefix + "x")
    result = invoke(typo, *command)
    assert result.exit_code == 1
    assert (
        f"no state for topic prefix {typo.topic_prefix!r} in Redis database 0 "
        f"({december.redis_url})"
    ) in result.output
    assert repr(december.topic_prefix) in result.output  # the prefixes that do have a state
    assert "PORTFLOW_TOPIC_PREFIX" in result.output
    assert "PORTFLOW_REDIS_URL" in result.output


def test_a_period_after_the_newest_event_is_marked_no_data_yet_not_a_silent_fall_of_100_pct(
    december,
):
    result = invoke(december, "report", "--period", "2025-12", "--by", "port", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["data"] == {
        "newest_event": "2024-12-15T14:02:11+08:00",
        "time_zone": "Asia/Shanghai",
        "period_status": "no_data_yet",
    }
    assert [
        (r["key"]["port"], r["current"], r["previous"], r["yoy_pct"]) for r in report["rows"]
    ] == [("khorgos", 0.0, 50.0, -100.0)]  # the contract's formula
    assert report["total"]["yoy_pct"] == -100.0  # marked by data.period_status
    table = invoke(december, "report", "--period", "2025", "--by", "port").output
    assert "2025 has no data yet: events applied only through 2024-12-15 14:02:11" in table
    assert "-100" not in table


def test_a_period_holding_the_newest_event_is_in_progress(december):
    report = json.loads(invoke(december, "report", "--period", "2024-12", "--json").output)
    assert report["data"]["period_status"] == "in_progress"
    assert (report["total"]["current"], report["total"]["yoy_pct"]) == (50.0, -75.0)
    table = invoke(december, "report", "--period", "2024-12").output
    assert (
        "2024-12 is in progress: events applied through 2024-12-15 14:02:11 Asia/Shanghai; "
        "compared with the whole of 2023-12"
    ) in table
    done = json.loads(invoke(december, "report", "--period", "2024-11", "--json").output)
    assert done["data"]["period_status"] == "complete"


def test_anomalies_judge_only_the_complete_days_and_say_how_far(december):
    result = invoke(december, "anomalies", "--period", "2024-12", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["data"] == {
        "newest_event": "2024-12-15T14:02:11+08:00",
        "time_zone": "Asia/Shanghai",
        "period_status": "in_progress",
        "judged_through": "2024-12-14",
    }
    text = invoke(december, "anomalies", "--period", "2025-01").output
    assert "2025-01 has no data yet" in text
    assert "no complete day to judge yet" in text


def test_a_state_without_events_reports_no_data_yet(settings):
    RedisStore.from_url(settings.redis_url, settings.topic_prefix).open_epoch(settings.tz_name)
    result = invoke(settings, "report", "--period", "2024")
    assert result.exit_code == 0, result.output
    assert "2024 has no data yet: no event has been applied; no year-on-year" in result.output


def test_status_shows_the_state_marks_workers_losses_and_outcomes(december, redis_client):
    store = RedisStore.from_url(december.redis_url, december.topic_prefix)
    redis_client.hset(
        store.outcomes_key,
        mapping={
            "applied": 3,
            "duplicates": 1,
            "rejected:event_time_ahead": 4,
            "rejected:event_time_behind": 2,
            "rejected:not_json": 1,
        },
    )
    store.record_worker("host-7", [f"{december.topic('shipment')}:0"], 60)
    store.record_lost(f"{december.topic('shipment')}:1", 0, 9)
    result = invoke(december, "status", "--json")
    assert result.exit_code == 0, result.output
    status = json.loads(result.output)
    assert status["state"]["epoch"] == store.epoch()
    assert status["state"]["time_zone"] == "Asia/Shanghai"
    assert status["state"]["newest_event"] == "2024-12-15T14:02:11+08:00"
    shipments = status["topics"][0]
    assert (shipments["topic"], shipments["marks"]) == (december.topic("shipment"), {"0": 2})
    assert [w["id"] for w in status["workers"]] == ["host-7"]
    assert status["lost_offsets"] == {f"{december.topic('shipment')}:1": [[0, 9]]}
    assert status["outcomes"] == {
        "applied": 3,
        "duplicates": 1,
        "rejected_total": 7,
        "rejected": {"event_time_ahead": 4, "event_time_behind": 2, "not_json": 1},
        "event_time_guard": {"ahead": 4, "behind": 2},
    }
    text = invoke(december, "status").output
    assert "turned away by the event-time guard: 4 ahead of the clock, 2 too old" in text
    assert f"{december.topic('shipment')}: 0: 2" in text


def test_a_state_being_dropped_is_refused_by_reports_and_shown_by_status(december, redis_client):
    store = RedisStore.from_url(december.redis_url, december.topic_prefix)
    redis_client.hset(store.meta_key, "epoch", "dropping")
    refused = invoke(december, "report", "--period", "2024")
    assert refused.exit_code == 1
    assert "is being dropped (`portflow rebuild`)" in refused.output
    shown = invoke(december, "status")
    assert shown.exit_code == 0
    assert "(being dropped by `portflow rebuild`)" in shown.output


@pytest.mark.slow
def test_status_counts_what_a_real_worker_did_to_each_event(stack_env, worker_factory, tmp_path):
    stack_env["PORTFLOW_MAX_EVENT_AGE"] = "400d"
    worker_factory()
    good = shipment("a", "2026-06-01T10:00:00+08:00")
    lines = [
        json.dumps(good),
        json.dumps(good),
        "not json",
        json.dumps(shipment("b", "2999-01-01T00:00:00Z")),
        json.dumps(shipment("c", "2024-01-01T00:00:00Z")),
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")
    portflow(stack_env, "replay", str(path), "--batch", "1", "--wait", "--timeout", "120")

    status = json.loads(portflow(stack_env, "status", "--json"))
    assert status["outcomes"] == {
        "applied": 1,
        "duplicates": 1,
        "rejected_total": 3,
        "rejected": {"event_time_ahead": 1, "event_time_behind": 1, "not_json": 1},
        "event_time_guard": {"ahead": 1, "behind": 1},
    }
    assert status["state"]["newest_event"] == "2026-06-01T10:00:00+08:00"
    assert sum(mark + 1 for topic in status["topics"] for mark in topic["marks"].values()) == 5
    assert len(status["workers"]) == 1
    assert status["lost_offsets"] == {}
    text = portflow(stack_env, "status")
    assert "turned away by the event-time guard: 1 ahead of the clock, 1 too old" in text


def test_a_state_of_a_key_layout_this_portflow_does_not_know_is_refused(december, redis_client):
    store = RedisStore.from_url(december.redis_url, december.topic_prefix)
    assert redis_client.hget(store.meta_key, "layout") == b"1"  # recorded with the state
    redis_client.hset(store.meta_key, "layout", "2")  # as a later release would leave it
    result = invoke(december, "report", "--period", "2024")
    assert result.exit_code == 1
    assert "key layout 2; this portflow reads layout 1" in result.output
    with pytest.raises(LayoutConflict):
        store.open_epoch(december.tz_name)  # a worker joining it refuses too


def test_a_state_of_another_time_zone_is_refused_by_reports_and_by_a_worker(december):
    """One error, ``TimeZoneConflict``, whichever side meets the other zone first."""
    result = invoke(dataclasses.replace(december, tz_name="UTC"), "report", "--period", "2024")
    assert result.exit_code == 1
    assert result.output == (
        "portflow: the aggregates were built with PORTFLOW_TZ=Asia/Shanghai, not UTC; "
        "set PORTFLOW_TZ=Asia/Shanghai\n"
    )
    store = RedisStore.from_url(december.redis_url, december.topic_prefix)
    with pytest.raises(TimeZoneConflict, match="built with PORTFLOW_TZ=Asia/Shanghai, not UTC"):
        store.open_epoch("UTC")
