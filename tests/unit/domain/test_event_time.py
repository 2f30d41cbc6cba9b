"""The event-time guard's window and its reasons (pure: the clock is given)."""

import math

from portflow.domain.event_time import AHEAD, BEHIND, EventTimeGuard, describe_seconds

NOW = 1_796_601_600.0  # 2026-12-07T00:00:00Z


def test_by_default_a_day_ahead_is_accepted_and_any_past():
    guard = EventTimeGuard()
    assert guard.window(NOW) == (-math.inf, NOW + 86400)
    assert guard.judge(NOW + 86400, NOW) is None
    assert guard.judge(-2_208_988_800.0, NOW) is None  # 1900


def test_an_event_further_ahead_is_rejected_saying_how_far_and_the_limit():
    code, reason = EventTimeGuard().judge(NOW + 86401, NOW)
    assert code == AHEAD
    assert reason == (
        "ts 2026-12-08T00:00:01+00:00 is 1d ahead of the worker's clock "
        "(2026-12-07T00:00:00+00:00); at most 1d ahead is accepted "
        "(PORTFLOW_MAX_EVENT_AHEAD)"
    )


def test_an_age_limit_rejects_older_events_and_off_leaves_the_future_open():
    guard = EventTimeGuard(max_ahead_s=None, max_age_s=30 * 86400)
    assert guard.judge(NOW + 10**10, NOW) is None
    code, reason = guard.judge(NOW - 31 * 86400, NOW)
    assert code == BEHIND
    assert "31d before the worker's clock" in reason
    assert "30d back" in reason


def test_spans_read_as_people_say_them():
    assert [describe_seconds(s) for s in (40, 600, 3 * 3600 + 120, 86400 + 3600, 400 * 86400)] == [
        "40s",
        "10m",
        "3h 2m",
        "1d 1h",
        "1y 35d",
    ]
