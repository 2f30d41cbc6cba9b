"""The anomalies object: the request checked before Redis is read, units as in report."""

from datetime import date

import pytest

from portflow.domain.detection import Expectation, Judgement
from portflow.domain.report import MEASURES
from portflow.services.anomalies import (AnomaliesRequest, InvalidMinDrop, anomalies_table,
                                         anomaly_json)


def closed_day(observed: int = 0, expected: float = 215_000_000.0) -> Judgement:
    return Judgement(date(2024, 3, 12), ("khorgos", "road"), observed,
                     Expectation(expected, "trailing-weeks", expected, 0.05), True)


def test_a_day_is_written_in_the_measures_unit_with_its_drop_and_baseline():
    assert anomaly_json(closed_day(), MEASURES["value_cny"], ["port", "mode"]) == {
        "day": "2024-03-12", "key": {"port": "khorgos", "mode": "road"}, "observed": 0.0,
        "expected": 2150000.0, "drop_pct": 100.0, "baseline": "trailing-weeks"}
    trains = anomaly_json(closed_day(3, 12.0), MEASURES["trains"], ["port", "service"])
    assert (trains["observed"], trains["expected"], trains["drop_pct"]) == (3, 12, 75.0)


def test_the_table_lists_each_day_and_says_none_when_there_is_none():
    result = {"period": "2024", "measure": "value_cny", "by": ["port", "mode"],
              "min_drop_pct": 50, "anomalies": [
                  anomaly_json(closed_day(), MEASURES["value_cny"], ["port", "mode"])]}
    lines = anomalies_table(result).splitlines()
    assert lines[0] == "value_cny by port, mode: days of 2024 at least 50% below expectation"
    assert lines[3].split() == ["2024-03-12", "khorgos", "road", "0.0", "2,150,000.0",
                                "100.00", "trailing-weeks"]
    assert anomalies_table({**result, "anomalies": []}).endswith("(none)")


def test_a_request_names_what_is_wrong_with_it():
    request = AnomaliesRequest.parse("2024-Q1", "trains", ["port", "service"], 30)
    assert (str(request.period), request.spec.name, request.by, request.min_drop_pct) == \
        ("2024-Q1", "trains", ["port", "service"], 30)
    with pytest.raises(InvalidMinDrop, match="above 0 and at most 100"):
        AnomaliesRequest.parse("2024", "value_cny", ["port"], 150)
