"""`portflow status` as text: each part of the state on its line, the event-time guard named."""

from portflow.adapters.redis import Outcomes
from portflow.services.status import outcomes_json, status_text, with_end_offsets


def status(**changes) -> dict:
    base = {
        "topic_prefix": "portflow.",
        "redis": "redis://127.0.0.1:16379/0",
        "database": 0,
        "state": {
            "epoch": "3f2a",
            "dropping": False,
            "time_zone": "Asia/Shanghai",
            "configured_time_zone": "Asia/Shanghai",
            "newest_event": "2024-06-30T23:58:00+08:00",
        },
        "outcomes": outcomes_json(
            Outcomes(1200, 7, {"event_time_ahead": 3, "event_time_behind": 2, "invalid_field": 1})
        ),
        "topics": [
            {"topic": "portflow.shipments", "topic_id": "AbC", "marks": {"0": 1499, "1": 20}},
            {"topic": "portflow.trains", "topic_id": None, "marks": {}},
        ],
        "workers": [
            {"id": "host-42", "partitions": ["portflow.shipments:0"], "announced_s_ago": 2.5}
        ],
        "lost_offsets": {"portflow.shipments:1": [[0, 9]]},
    }
    return {**base, **changes}


def test_the_guards_turnaways_are_named_apart_from_other_rejections():
    assert outcomes_json(Outcomes(5, 1, {"event_time_ahead": 3, "not_json": 2})) == {
        "applied": 5,
        "duplicates": 1,
        "rejected": {"event_time_ahead": 3, "not_json": 2},
        "rejected_total": 5,
        "event_time_guard": {"ahead": 3, "behind": 0},
    }
    lines = status_text(status()).splitlines()
    assert "  applied 1,200, skipped as duplicates 7, rejected 6" in lines
    assert "  turned away by the event-time guard: 3 ahead of the clock, 2 too old" in lines
    assert "  other rejections: invalid_field 1" in lines


def test_the_text_shows_state_partitions_workers_and_losses():
    text = status_text(status())
    assert "topic prefix 'portflow.' in Redis database 0 (redis://127.0.0.1:16379/0)" in text
    assert "  newest event applied: 2024-06-30 23:58:00 Asia/Shanghai" in text
    assert "  portflow.shipments (Kafka id AbC): 0: 1,499, 1: 20" in text
    assert "  portflow.trains: none applied yet" in text
    assert "  host-42: 1 partition(s), announced 2.5s ago" in text
    assert text.endswith("portflow.shipments:1 0-9")


def test_a_fresh_state_and_a_time_zone_that_differs_are_said_plainly():
    fresh = status(
        state={
            "epoch": "3f2a",
            "dropping": False,
            "time_zone": "UTC",
            "configured_time_zone": "Asia/Shanghai",
            "newest_event": None,
        },
        workers=[],
        lost_offsets={},
    )
    lines = status_text(fresh).splitlines()
    assert "  newest event applied: none yet" in lines
    assert (
        "  time zone UTC (PORTFLOW_TZ is Asia/Shanghai: reports refuse to run until the two agree)"
    ) in lines
    assert "live workers: 0" in lines
    assert lines[-1].endswith("before they were applied): none")


def test_end_offsets_give_each_topic_its_lag_past_the_marks():
    ends = {
        ("portflow.shipments", 0): 1500,
        ("portflow.shipments", 1): 30,
        ("portflow.shipments", 2): 4,
        ("portflow.trains", 0): 0,
    }
    topics = with_end_offsets(status(), ends)["topics"]
    assert topics[0]["end_offsets"] == {"0": 1500, "1": 30, "2": 4}
    assert topics[0]["lag"] == 0 + 9 + 4  # all applied; 21..29; 0..3 (none applied there)
    assert (topics[1]["end_offsets"], topics[1]["lag"]) == ({"0": 0}, 0)
    assert with_end_offsets(status(), None) == status()  # Kafka not read: as Redis has it
