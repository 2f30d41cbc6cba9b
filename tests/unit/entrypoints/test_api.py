"""The HTTP API's pure parts: where it may listen, the token check, the query's dimensions, the
problems errors become, the route label of its metrics, its OpenAPI document, the time bound."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import redis

from entrypoints.api.app import Backend, create_app, split_dimensions, token_matches
from entrypoints.api.metrics import UNMATCHED, route_of
from entrypoints.api.offsets import OffsetsWatch
from entrypoints.api.problems import MEDIA_TYPE, Problem, naming, problem_for
from entrypoints.api.server import check_exposure, is_loopback
from portflow.adapters.redis import TimeZoneConflict
from portflow.config import Settings
from portflow.domain.periods import InvalidPeriod
from portflow.domain.queries import MissingRates
from portflow.errors import UsageError
from portflow.services.reports import StateUnavailable
from portflow.services.state import Incomplete, NoState

NOWHERE = "redis://127.0.0.1:1/0"  # nothing listens: refused at once


@pytest.mark.parametrize("host", ["127.0.0.1", "127.9.9.9", "::1", "localhost", "LOCALHOST"])
def test_loopback_hosts_are_this_machine(host):
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1", "10.0.0.5", "api.example"])
def test_other_hosts_and_names_are_the_network(host):
    assert not is_loopback(host)


def test_listening_beyond_loopback_requires_a_token():
    with pytest.raises(UsageError, match=r"PORTFLOW_API_ADDR=0\.0\.0\.0:8080 .*PORTFLOW_API_TOKEN"):
        check_exposure(Settings(api_addr=("0.0.0.0", 8080)))
    check_exposure(Settings(api_addr=("0.0.0.0", 8080), api_token="t"))
    check_exposure(Settings(api_addr=("127.0.0.1", 8080)))


def test_the_token_matches_only_itself():
    assert token_matches("abc", "abc")
    assert not token_matches("abd", "abc")
    assert not token_matches("ab", "abc")
    assert not token_matches(None, "abc")
    assert not token_matches("", "abc")
    assert not token_matches("ä", "a")
    assert token_matches("ä", "ä")


def test_dimensions_come_comma_separated_repeated_or_both():
    assert split_dimensions(["port,mode"]) == ["port", "mode"]
    assert split_dimensions(["port", "mode"]) == ["port", "mode"]
    assert split_dimensions([" port , ", ","]) == ["port"]
    assert split_dimensions([]) == []


def test_a_usage_error_is_a_400_naming_the_parameter_it_was_raised_for():
    with pytest.raises(InvalidPeriod) as raised, naming("period"):
        raise InvalidPeriod("period '2024-13': month must be 01 to 12")
    problem = problem_for(raised.value, NOWHERE)
    assert problem.as_json() == {
        "type": "urn:portflow:problem:invalid-parameter",
        "title": "Invalid parameter",
        "status": 400,
        "detail": "period '2024-13': month must be 01 to 12",
        "parameter": "period",
    }


def test_a_parameter_an_error_names_itself_is_kept():
    error = UsageError("bad")
    error.parameter = "from"
    with pytest.raises(UsageError), naming("to"):
        raise error
    assert problem_for(error, NOWHERE).as_json()["parameter"] == "from"


def test_missing_rates_are_a_422_naming_the_months():
    problem = problem_for(MissingRates(["2024-02", "2024-01"]), NOWHERE)
    assert (problem.status, problem.members) == (422, {"months": ["2024-01", "2024-02"]})


def test_an_unreadable_state_is_a_503_or_409_and_redis_down_a_503_to_retry():
    for error, status in (
        (NoState("none"), 503),
        (StateUnavailable("rebuilt"), 503),
        (TimeZoneConflict("UTC"), 409),
        (Incomplete("lost"), 409),
    ):
        assert problem_for(error, NOWHERE).status == status
    down = problem_for(redis.ConnectionError("refused"), "redis://:***@host:6379/0")
    assert down.status == 503
    assert down.headers == {"Retry-After": "1"}
    assert down.detail == "cannot read Redis at redis://:***@host:6379/0: refused"
    assert problem_for(NoState("none"), NOWHERE).headers == {"Retry-After": "1"}


def test_a_bug_is_a_500_that_says_nothing_of_the_code():
    problem = problem_for(KeyError("secret internals"), NOWHERE)
    assert problem.status == 500
    assert "secret" not in json.dumps(problem.as_json())


def test_a_problem_response_is_problem_json_with_its_headers():
    response = Problem(
        401, "unauthorized", "Unauthorized", "send a token", headers={"WWW-Authenticate": "Bearer"}
    ).response()
    assert response.media_type == MEDIA_TYPE
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert json.loads(response.body)["detail"] == "send a token"


def test_metrics_label_a_request_by_its_route_template_or_one_label_for_none():
    class Route:
        path = "/v1/reports"

    assert route_of({"route": Route()}) == "/v1/reports"
    assert route_of({}) == UNMATCHED


def unused_reports(store, tz):
    raise AssertionError("create_app must not open anything")


def test_the_openapi_document_is_3_1_with_every_problem_as_problem_json_and_no_422_default():
    app = create_app(Settings(redis_url=NOWHERE), reports_factory=unused_reports)
    document = app.openapi()
    assert document["openapi"].startswith("3.1")
    assert set(document["paths"]) == {
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/reports",
        "/v1/series",
        "/v1/anomalies",
        "/v1/status",
        "/v1/rates",
    }
    for path, item in document["paths"].items():
        responses = item["get"]["responses"]
        assert "200" in responses, path
        for status, response in responses.items():
            if status != "200":
                assert list(response["content"]) == [MEDIA_TYPE], (path, status)
    assert set(document["paths"]["/v1/reports"]["get"]["responses"]) == {
        "200",
        "400",
        "409",
        "422",
        "503",
    }
    assert "HTTPValidationError" not in json.dumps(document)
    assert "securitySchemes" not in document.get("components", {})  # no token: none required


def test_with_a_token_the_document_says_v1_requires_it():
    document = create_app(
        Settings(redis_url=NOWHERE, api_token="t"), reports_factory=unused_reports
    ).openapi()
    reports = document["paths"]["/v1/reports"]["get"]
    assert "401" in reports["responses"]
    assert reports["security"] == [{"HTTPBearer": []}]
    assert "security" not in document["paths"]["/healthz"]["get"]


def test_work_that_outlasts_the_bound_is_a_503_and_the_request_ends():
    backend = Backend(Settings(redis_url=NOWHERE), lambda store, tz: None, timeout_s=0.05)
    backend.open()
    try:
        started = time.monotonic()
        with pytest.raises(Problem) as raised:
            asyncio.run(backend.run(lambda: time.sleep(0.5)))
        assert time.monotonic() - started < 0.4
        assert raised.value.status == 503
        assert raised.value.slug == "timeout"
    finally:
        backend.close()


def wait_for(condition, timeout_s: float = 5.0):
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def reader(readings: list):
    """A stand-in for Kafka: each reading in turn (an exception is raised), then the last."""

    def read():
        reading = readings.pop(0) if len(readings) > 1 else readings[0]
        if isinstance(reading, Exception):
            raise reading
        return reading

    return read


def test_the_offsets_watch_reads_kafka_only_once_asked_and_keeps_the_last_reading():
    calls, closed = [], []
    read = reader([{("t", 0): 5}])
    watch = OffsetsWatch(lambda: calls.append(1) or read(), lambda: closed.append(True))
    time.sleep(0.05)
    assert calls == []  # nothing read before the first question
    watch.latest()
    wait_for(lambda: watch.latest()[0] is not None)
    ends, age_s, error = watch.latest()
    assert ends == {("t", 0): 5}
    assert 0 <= age_s < 1
    assert error is None
    watch.stop()
    assert closed == [True]


def test_a_failed_reading_keeps_the_previous_offsets_and_says_why(monkeypatch):
    import entrypoints.api.offsets as offsets

    monkeypatch.setattr(offsets, "EVERY_S", 0.01)
    watch = OffsetsWatch(reader([{("t", 0): 5}, ConnectionError("no broker")]), lambda: None)
    watch.latest()
    wait_for(lambda: watch.latest()[2] is not None)
    ends, _, error = watch.latest()
    assert ends == {("t", 0): 5}
    assert error == "no broker"
    watch.stop()
