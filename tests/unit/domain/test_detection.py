"""Throughput drops judged in event time: the calendar's baselines, the festival, the noise."""

from __future__ import annotations

import random
from datetime import date, timedelta

from portflow.domain.detection import expectation, find_drops, judge, judge_all, series_values
from portflow.domain.festivals import (
    SPRING_FESTIVAL,
    festival_offset,
    in_festival_window,
    same_festival_day_a_year_earlier,
)
from tests.bench import bench_module
from tests.support.drops import END, START, traffic


def every_day() -> list[date]:
    return [START + timedelta(days=i) for i in range((END - START).days + 1)]


def drops(totals, **kwargs) -> list[date]:
    return [j.day for j in find_drops({("khorgos",): totals}, every_day(), START, **kwargs)]


def test_ordinary_traffic_with_two_spring_festivals_raises_no_alarm():
    for seed in range(5):
        assert drops(traffic(seed)) == []


def test_a_port_closed_for_four_days_is_found_on_each_of_them():
    totals = traffic(1)
    closed = [date(2024, 5, 14) + timedelta(days=i) for i in range(4)]
    for day in closed:
        totals[day] = 0
    assert drops(totals) == closed


def test_a_partial_outage_is_found_only_where_it_reaches_the_minimum_drop():
    totals = traffic(2)
    week = [date(2023, 9, 4) + timedelta(days=i) for i in range(7)]
    for day in week:
        totals[day] = int(totals[day] * 0.3)
    assert drops(totals) == week
    assert drops(totals, min_drop_pct=80) == []


def test_a_closure_in_the_festivals_recovery_weeks_is_judged_against_last_years_festival():
    totals = traffic(3)
    closed = [date(2024, 2, 26), date(2024, 2, 27)]  # 16 and 17 days after New Year's Day
    for day in closed:
        totals[day] = 0
    assert drops(totals) == closed
    verdict = judge(series_values(totals, START), ("khorgos",), closed[0])
    assert verdict.expectation.baseline == "festival-year-earlier"


def test_the_first_festival_of_a_history_is_not_judged():
    totals = traffic(4)
    totals[date(2023, 2, 1)] = 0  # ten days after New Year's Day 2023, no year before it
    assert expectation(series_values(totals, START), date(2023, 2, 1)) is None
    assert drops(totals) == []


def test_a_festival_a_year_later_is_not_mistaken_for_a_drop_on_its_calendar_dates():
    # 2024-01-25 is ordinary; 364 days before it, 2023-01-26, was the festival week.
    totals = traffic(5)
    exp = expectation(series_values(totals, START), date(2024, 1, 25))
    assert exp.baseline == "trailing-weeks"
    assert not in_festival_window(date(2024, 1, 25))
    assert in_festival_window(date(2023, 1, 26))


def test_days_before_the_history_are_unknown_not_zero():
    totals = traffic(6)
    values = series_values(totals, START)
    assert values(START - timedelta(days=1)) is None
    assert values(START) == totals[START]
    assert expectation(values, START + timedelta(days=3)) is None  # too early to tell


def test_a_key_too_noisy_for_a_stop_to_stand_out_is_never_flagged():
    totals = traffic(7, noise=0.5)
    totals[date(2024, 6, 12)] = 0
    assert drops(totals) == []


def test_a_drop_on_a_quiet_weekday_is_measured_against_that_weekday():
    totals = traffic(8)
    sunday = date(2024, 6, 16)
    exp = expectation(series_values(totals, START), sunday)
    weekday = expectation(series_values(totals, START), sunday - timedelta(days=2))
    assert exp.expected < 0.8 * weekday.expected


def test_the_festival_table_gives_the_same_festival_day_a_year_earlier():
    assert SPRING_FESTIVAL[2024] == date(2024, 2, 10)
    assert SPRING_FESTIVAL[2023] == date(2023, 1, 22)
    assert same_festival_day_a_year_earlier(date(2024, 2, 26)) == date(2023, 2, 7)
    assert same_festival_day_a_year_earlier(date(2024, 6, 1)) is None
    assert festival_offset(date(2024, 1, 27)) == -14
    assert festival_offset(date(2024, 1, 26)) is None


def test_a_year_without_a_known_festival_keeps_every_day_it_could_touch_out_of_ordinary_days():
    assert in_festival_window(date(2041, 1, 10))
    assert in_festival_window(date(2041, 3, 18))
    assert not in_festival_window(date(2041, 4, 1))


def test_days_too_noisy_to_stand_out_alone_are_found_together_when_consecutive():
    totals = traffic(9, noise=0.2)  # a single closed day does not stand out of this noise
    single = date(2024, 4, 10)
    totals[single] = 0
    assert drops(totals) == []
    closed = [date(2024, 6, 10) + timedelta(days=i) for i in range(4)]
    for day in closed:
        totals[day] = 0
    assert drops(totals) == closed


def test_a_run_does_not_swallow_an_ordinary_day_beside_it():
    totals = traffic(10, noise=0.2)
    closed = [date(2024, 6, 10) + timedelta(days=i) for i in range(4)]
    for day in closed:
        totals[day] = 0
    totals[date(2024, 6, 14)] = int(totals[date(2024, 6, 14)] * 0.95)  # an ordinary day after
    assert drops(totals) == closed


def test_judging_a_keys_days_in_turn_judges_each_as_judging_it_alone_does():
    totals = traffic(11, noise=0.2)
    for day in [date(2024, 2, 26), date(2024, 5, 14), date(2024, 5, 15), date(2024, 9, 3)]:
        totals[day] = 0
    first_day = date(2023, 3, 9)  # the days judged begin before the history does
    days = [date(2023, 3, 1) + timedelta(days=i) for i in range(670)]
    in_turn = judge_all({("khorgos",): totals}, days, first_day)
    alone = [judge(series_values(totals, first_day), ("khorgos",), day) for day in days]
    assert [(j.day, j.observed, j.expectation) for j in in_turn] == [
        (j.day, j.observed, j.expectation) for j in alone
    ]
    assert sum(j.expectation is not None for j in alone) > 500


def test_the_judge_judges_every_day_as_it_did_before_it_was_made_fast():
    before, bench = bench_module("detection_before"), bench_module("detection")
    daily = {}
    for kind, size, weekly in bench.KINDS[1::2]:  # value-40, value-300, count-20
        totals = bench.series(random.Random(size), kind, size, weekly)
        for first, length, factor in bench.DISRUPTIONS:
            for day in (first + timedelta(days=i) for i in range(length)):
                totals[day] = int(totals[day] * factor)
        daily[(f"{kind}-{size}",)] = totals
    days = [bench.START + timedelta(days=i) for i in range((bench.END - bench.START).days + 1)]
    judged = judge_all(daily, days, bench.START)
    assert judged == before.judge_all(daily, days, bench.START)
    assert sum(j.anomalous for j in judged) > 50
