"""Anomalies of a period at the very start of the calendar: judged (none found), not an
OverflowError (``GET /v1/anomalies?period=0002`` answered 500)."""

from datetime import date

import pytest

from portflow.domain.measures import MEASURES
from portflow.services.anomalies import DailyTotals


class NoHistory:
    """A store whose state holds no day of the measure yet."""

    def first_day(self, event_type: str, measure: str) -> None:
        return None


@pytest.mark.parametrize("first", [date(1, 1, 1), date(1, 1, 5), date(2, 1, 1)])
def test_days_at_the_start_of_the_calendar_are_judged_without_overflow(first):
    totals = DailyTotals(NoHistory(), MEASURES["value_cny"], ["port"])
    assert totals.judge([first, date(first.year, first.month, first.day + 1)], 50.0) == []
