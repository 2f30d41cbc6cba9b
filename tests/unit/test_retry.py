"""One schedule of waits for every retry loop: doubling to a cap, giving up when told to."""

import asyncio
import itertools

import pytest

from portflow.retry import Backoff, retry, retry_async


def test_the_waits_double_up_to_the_cap_and_stay_there():
    assert list(itertools.islice(Backoff(0.5, 4.0).delays(), 6)) == [0.5, 1, 2, 4, 4, 4]
    assert list(itertools.islice(Backoff(0.5, 0.5).delays(), 3)) == [0.5, 0.5, 0.5]


def test_a_call_that_fails_twice_is_retried_until_it_returns():
    outcomes = iter([OSError("down"), OSError("down"), "up"])

    def attempt():
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert retry(attempt, (OSError,), Backoff(0.001, 0.001), RuntimeError) == "up"


def test_past_its_time_the_last_failure_is_given_up_in_the_callers_words():
    def attempt():
        raise OSError("still down")

    with pytest.raises(RuntimeError, match="gave up: still down"):
        retry(
            attempt,
            (OSError,),
            Backoff(0.01, 0.01, give_up_after_s=0.05),
            lambda exc: RuntimeError(f"gave up: {exc}"),
        )


def test_a_failure_not_retried_on_propagates_at_once():
    calls = []

    def attempt():
        calls.append(1)
        raise ValueError("a bug")

    with pytest.raises(ValueError, match="a bug"):
        retry(attempt, (OSError,), Backoff(0.001, 0.001), RuntimeError)
    assert len(calls) == 1


def test_the_async_loop_reports_each_wait_before_it_waits():
    outcomes = iter([ConnectionError("a"), ConnectionError("b"), 42])
    told = []

    async def attempt():
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    result = asyncio.run(
        retry_async(
            attempt,
            (ConnectionError,),
            Backoff(0.001, 0.002),
            lambda exc, delay: told.append((str(exc), delay)),
        )
    )
    assert result == 42
    assert told == [("a", 0.001), ("b", 0.002)]
