"""The live view's now: the newest event time, never further ahead of the clock than the guard
lets an event be; lags never negative."""

from portflow.domain.live_time import AHEAD_WHEN_OFF_S, lag_seconds, reference_time

NOW = 1_780_000_000  # 2026-05-28
YEAR_2999 = 32_485_190_400  # 2999-06-01
YEAR_1900 = -2_208_988_800  # 1900-01-01


def test_the_newest_event_time_is_the_live_views_now_while_it_is_not_too_far_ahead():
    assert reference_time(NOW - 86400 * 400, NOW, 86400) == NOW - 86400 * 400
    assert reference_time(NOW + 3600, NOW, 86400) == NOW + 3600
    assert reference_time(YEAR_1900, NOW, None) == YEAR_1900
    assert reference_time(None, NOW, 86400) is None


def test_an_event_further_ahead_leaves_the_live_view_at_the_clock_plus_what_the_guard_allows():
    assert reference_time(YEAR_2999, NOW, 86400) == NOW + 86400
    assert reference_time(YEAR_2999, NOW, 7 * 86400) == NOW + 7 * 86400
    assert reference_time(YEAR_2999, NOW, None) == NOW + AHEAD_WHEN_OFF_S == NOW + 86400


def test_a_lag_is_never_negative():
    assert lag_seconds(NOW, NOW - 90) == 90
    assert lag_seconds(NOW, YEAR_2999) == 0
    assert lag_seconds(NOW, NOW + 0.5) == 0
