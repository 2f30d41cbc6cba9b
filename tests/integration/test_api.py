"""`portflow serve` as a process over a real socket, on a real redis-server: the routes answer
what the services compute, bad parameters are 400 problems naming the parameter, the token is
required where configured, a stopped Redis is a quick 503, and schemathesis finds no 5xx and no
response outside the OpenAPI document."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import httpx
import pytest

from entrypoints.embedded import api_url, start_api, start_redis
from entrypoints.processes import free_port
from portflow.adapters.redis import RedisStore
from portflow.config import Settings
from tests.support.api import TOKEN, UNREACHABLE_KAFKA, env_of, with_api_port
from tests.support.events import shipment
from tests.support.prefixes import unique_prefix
from tests.support.processing import apply

EVENTS = [
    shipment("a", "2023-06-05T10:00:00+08:00"),
    shipment("b", "2023-06-20T10:00:00+08:00", port="kashgar", value_cny="300.00"),
    shipment("c", "2024-06-03T09:00:00+08:00", value_cny="120.00"),
    shipment("d", "2024-06-21T09:00:00+08:00", port="kashgar", value_cny="330.50"),
    shipment("e", "2024-07-02T09:00:00+08:00", value_cny="1.00"),
]


@pytest.fixture(scope="module")
def served(redis_url, tmp_path_factory):
    """A state with a few shipments of June 2023 and 2024, served without a token, and the
    same state served with one: (settings, API URL, API URL with a token)."""
    settings = with_api_port(Settings(redis_url=redis_url, topic_prefix=unique_prefix()))
    apply(settings, EVENTS)
    logs = tmp_path_factory.mktemp("api-logs")
    open_api = start_api(env_of(settings), settings, logs, name="api-open")
    guarded_settings = with_api_port(settings)
    guarded = start_api(env_of(guarded_settings, TOKEN), guarded_settings, logs, name="api-token")
    yield settings, api_url(settings), api_url(guarded_settings)
    open_api.stop()
    guarded.stop()


def get(base: str, path: str, **params) -> httpx.Response:
    return httpx.get(base + path, params=params, timeout=10)


def assert_problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["type"].startswith("urn:portflow:problem:")
    assert "Traceback" not in response.text
    return body


# ---- answers ---------------------------------------------------------------------------------


def test_a_report_is_the_report_service_s_json_byte_for_byte(served):
    from portflow.domain.queries import ReportRequest
    from portflow.services.reports import Reports

    settings, base, _ = served
    response = get(base, "/v1/reports", period="2024-06", by="port")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    store = RedisStore.from_url(settings.redis_url, settings.topic_prefix)
    expected = Reports(store, settings.tz).report_json(ReportRequest.parse("2024-06", by=["port"]))
    assert response.content == expected
    report = response.json()
    assert [(row["key"]["port"], row["current"], row["previous"]) for row in report["rows"]] == [
        ("kashgar", 330.5, 300.0),
        ("khorgos", 120.0, 100.0),
    ]
    assert report["total"]["yoy_pct"] == 12.63  # 450.50 / 400.00 - 1
    assert report["data"]["period_status"] == "complete"


def test_a_report_with_filters_compare_ytd_and_repeated_by(served):
    _, base, _ = served
    report = httpx.get(
        base + "/v1/reports",
        params=[
            ("period", "2024-07"),
            ("by", "port"),
            ("by", "mode"),
            ("filter", "port:khorgos"),
            ("compare", "previous"),
        ],
    ).json()
    assert report["by"] == ["port", "mode"]
    assert report["filters"] == {"port": ["khorgos"]}
    assert report["previous_period"] == "2024-06"
    assert [(row["key"], row["current"], row["previous"]) for row in report["rows"]] == [
        ({"port": "khorgos", "mode": "rail"}, 1.0, 120.0)
    ]
    ytd = get(base, "/v1/reports", period="2024-07", ytd="true", top="1", by="port").json()
    assert ytd["span"] == {"first_day": "2024-01-01", "last_day": "2024-07-31"}
    assert (ytd["total"]["current"], ytd["total"]["previous"]) == (451.5, 400.0)
    assert [row["key"] for row in ytd["rows"]] == [{"port": "kashgar"}, {"port": "(other)"}]


def test_a_daily_series_has_a_row_a_day_with_the_day_52_weeks_earlier(served):
    _, base, _ = served
    series = get(
        base,
        "/v1/series",
        measure="value_cny",
        granularity="day",
        **{"from": "2024-06-03", "to": "2024-06-04"},
    ).json()
    assert series["granularity"] == "day"
    assert series["time_zone"] == "Asia/Shanghai"
    first = series["rows"][0]
    assert first["time"] == "2024-06-03T00:00:00+08:00"
    assert first["key"] == "total"
    assert first["value"] == 120.0
    assert first["previous_time"] == "2023-06-05T00:00:00+08:00"
    assert first["previous"] == 100.0


def test_anomalies_status_and_rates_answer_as_the_cli_does(served):
    settings, base, _ = served
    anomalies = get(base, "/v1/anomalies", period="2024-06").json()
    assert anomalies["by"] == ["port"]
    assert anomalies["data"]["judged_through"] == "2024-06-30"
    status = get(base, "/v1/status").json()
    assert status["topic_prefix"] == settings.topic_prefix
    assert status["outcomes"]["applied"] == len(EVENTS)
    assert status["topics"][0]["marks"] == {"0": len(EVENTS) - 1}
    assert status["kafka"]["bootstrap"] == UNREACHABLE_KAFKA  # not read (yet): no end offsets
    assert status["kafka"]["read_s_ago"] is None
    assert "end_offsets" not in status["topics"][0]
    assert get(base, "/v1/rates").json() == {"rates": {}}


def test_the_loaded_rates_are_served_and_turn_a_report_into_dollars(served):
    settings, base, _ = served
    store = RedisStore.from_url(settings.redis_url, settings.topic_prefix)
    rates = {
        "2023-06": {"rate": "7.0000", "source": "assumed"},
        "2024-06": {"rate": "7.2570", "source": "the article"},
    }
    store.put_rates(rates)
    try:
        assert get(base, "/v1/rates").json() == {"rates": rates}
        report = get(base, "/v1/reports", period="2024-06", currency="USD").json()
    finally:
        store.client.delete(store.rates_key)
    assert report["currency"] == "USD"
    assert report["usd_rates"] == {"2023-06": "7.0000", "2024-06": "7.2570"}
    assert (report["total"]["current"], report["total"]["previous"]) == (62.08, 57.14)
    fixed = get(base, "/v1/reports", period="2024-06", usd_rate="7.2570").json()
    assert fixed["currency"] == "USD"
    assert fixed["total"]["current"] == 62.08


def test_offsets_kafka_deleted_unapplied_are_a_409_unless_allowed_then_named(served):
    settings, base, _ = served
    store = RedisStore.from_url(settings.redis_url, settings.topic_prefix)
    lost = f"{settings.topic('shipment')}:1"
    store.record_lost(lost, 0, 9)
    try:
        for path, params in (
            ("/v1/reports", {"period": "2024-06"}),
            ("/v1/series", {}),
            ("/v1/anomalies", {"period": "2024-06"}),
        ):
            problem = assert_problem(get(base, path, **params), 409)
            assert lost in problem["detail"]
            assert "allow_incomplete=true" in problem["detail"]
            allowed = get(base, path, **params, allow_incomplete="true").json()
            assert allowed["incomplete"] == {"lost_offsets": {lost: [[0, 9]]}}
    finally:
        store.client.delete(store.lost_key)
    assert "incomplete" not in get(base, "/v1/reports", period="2024-06").json()


@pytest.mark.slow
def test_status_gives_kafka_s_end_offsets_and_the_lag_read_in_the_background(
    redis_url, kafka_bootstrap, tmp_path
):
    from kafka import KafkaProducer

    from portflow.adapters.kafka import ensure_topics

    settings = with_api_port(
        Settings(redis_url=redis_url, topic_prefix=unique_prefix()), kafka_bootstrap
    )
    ensure_topics(settings)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for _ in range(3):
        producer.send(settings.topic("shipment"), b"{}", partition=0)
    producer.flush()
    producer.close()
    apply(settings, EVENTS[:2])  # offsets 0 and 1 of partition 0 applied: one record to go
    api = start_api(env_of(settings), settings, tmp_path / "logs")
    try:
        deadline = time.monotonic() + 30
        status = get(api_url(settings), "/v1/status").json()
        while status["kafka"]["read_s_ago"] is None:
            assert time.monotonic() < deadline, status
            assert status["kafka"]["error"] is None, status
            time.sleep(0.2)
            status = get(api_url(settings), "/v1/status").json()
    finally:
        api.stop()
    shipments = status["topics"][0]
    assert shipments["topic"] == settings.topic("shipment")
    assert shipments["end_offsets"] == {
        str(p): 3 if p == 0 else 0 for p in range(settings.partitions)
    }
    assert shipments["lag"] == 1
    assert [topic["lag"] for topic in status["topics"][1:]] == [0, 0]


# ---- bad requests ------------------------------------------------------------------------------

BAD = [
    ("/v1/reports", {"period": "2024-13"}, "period"),
    ("/v1/reports", {}, "period"),
    ("/v1/reports", {"period": "2024", "measure": "value"}, "measure"),
    ("/v1/reports", {"period": "2024", "by": "port,mode,partner"}, "by"),
    ("/v1/reports", {"period": "2024", "compare": "mom"}, "compare"),
    ("/v1/reports", {"period": "2024", "ytd": "maybe"}, "ytd"),
    ("/v1/reports", {"period": "2024", "filter": "khorgos"}, "filter"),
    ("/v1/reports", {"period": "2024", "currency": "EUR"}, "currency"),
    ("/v1/reports", {"period": "2024", "usd_rate": "seven"}, "usd_rate"),
    ("/v1/reports", {"period": "2024", "top": "many"}, "top"),
    ("/v1/series", {"granularity": "week"}, "granularity"),
    ("/v1/series", {"from": "yesterday"}, "from"),
    ("/v1/anomalies", {"period": "2024", "min_drop": "0"}, "min_drop"),
    ("/v1/anomalies", {"period": "2024", "by": "zone,zone"}, "by"),
]


@pytest.mark.parametrize(
    ("path", "params", "parameter"), BAD, ids=[f"{path} {params}" for path, params, _ in BAD]
)
def test_a_bad_parameter_is_a_400_problem_naming_it(served, path, params, parameter):
    problem = assert_problem(get(served[1], path, **params), 400)
    assert problem["parameter"] == parameter
    assert problem["detail"]


def test_a_month_without_a_usd_rate_is_a_422_naming_it(served):
    problem = assert_problem(get(served[1], "/v1/reports", period="2024-06", currency="USD"), 422)
    assert problem["months"] == ["2023-06", "2024-06"]


# ---- the token ---------------------------------------------------------------------------------


def test_with_a_token_every_v1_route_requires_it_and_the_probes_do_not(served):
    _, _, base = served
    for path in ("/v1/status", "/v1/reports?period=2024", "/v1/rates"):
        missing = httpx.get(base + path)
        assert_problem(missing, 401)
        assert missing.headers["www-authenticate"] == 'Bearer realm="portflow"'
        wrong = httpx.get(base + path, headers={"Authorization": f"Bearer {TOKEN}x"})
        assert_problem(wrong, 401)
        assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
        right = httpx.get(base + path, headers={"Authorization": f"Bearer {TOKEN}"})
        assert right.status_code == 200, right.text
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        assert httpx.get(base + path).status_code == 200, path
    assert "HTTPBearer" in httpx.get(base + "/openapi.json").text  # documented as required


def serve_briefly(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_serve_refuses_a_network_address_without_a_token_and_a_port_in_use(settings):
    env = env_of(settings)
    refused = serve_briefly({**env, "PORTFLOW_API_ADDR": f"0.0.0.0:{free_port()}"})
    assert refused.returncode == 2
    assert refused.stderr.strip().startswith("portflow: PORTFLOW_API_ADDR=0.0.0.0:")
    assert "PORTFLOW_API_TOKEN" in refused.stderr
    assert len(refused.stderr.splitlines()) == 1
    import socket

    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        busy = serve_briefly({**env, "PORTFLOW_API_ADDR": f"127.0.0.1:{port}"})
    assert busy.returncode == 1, busy.stderr
    assert f"portflow: cannot listen on 127.0.0.1:{port}" in busy.stderr
    assert "Traceback" not in busy.stderr


# ---- readiness, Redis stopped, metrics ---------------------------------------------------------


def test_readyz_follows_the_state_a_stopped_redis_is_a_503_within_a_second_sigterm_stops(tmp_path):
    port = free_port()
    redis_child = start_redis(port, tmp_path / "redis", tmp_path / "logs")
    settings = with_api_port(
        Settings(redis_url=f"redis://127.0.0.1:{port}/0", topic_prefix="ready.")
    )
    api = start_api(env_of(settings), settings, tmp_path / "logs")
    base = api_url(settings)
    try:
        assert (
            "no state for topic prefix 'ready.'"
            in assert_problem(get(base, "/readyz"), 503)["detail"]
        )
        apply(settings, EVENTS[:1])
        assert get(base, "/readyz").json()["status"] == "ready"
        redis_child.stop()  # by its PID
        for path in ("/v1/reports?period=2024", "/v1/status", "/readyz"):
            started = time.monotonic()
            response = httpx.get(base + path, timeout=5)
            assert time.monotonic() - started < 1.0
            assert_problem(response, 503)
            assert response.headers["retry-after"] == "1"
        assert get(base, "/healthz").status_code == 200
        api.stop()  # SIGTERM: a graceful stop, said
        assert api.process.returncode == 0
        assert api.logged_since_start(b"stopped serving the HTTP API")
    finally:
        api.stop()
        redis_child.stop()


def counted(base: str, route: str, status: int) -> float:
    text = httpx.get(base + "/metrics").text
    found = re.search(
        rf'^portflow_api_requests_total\{{route="{re.escape(route)}",status="{status:d}"\}}'
        r" (\S+)$",
        text,
        flags=re.M,
    )
    return float(found[1]) if found else 0.0


def test_metrics_count_requests_by_route_template_and_status(served):
    _, base, _ = served
    before = counted(base, "/v1/status", 200), counted(base, "/v1/reports", 400)
    get(base, "/v1/status")
    get(base, "/v1/status")
    get(base, "/v1/reports", period="nope")
    assert (counted(base, "/v1/status", 200), counted(base, "/v1/reports", 400)) == (
        before[0] + 2,
        before[1] + 1,
    )
    text = httpx.get(base + "/metrics").text
    assert 'portflow_api_request_duration_seconds_bucket{le="0.01",route="/v1/status"}' in text
    get(base, "/no/such/path/42")
    assert "/no/such/path" not in httpx.get(base + "/metrics").text  # one label for all


# ---- schemathesis --------------------------------------------------------------------------------


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_and_no_response_outside_the_document(served):
    import hypothesis
    import schemathesis
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    _, base, _ = served
    schema = schemathesis.openapi.from_url(base + "/openapi.json")
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
    ]
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 8
    for operation in operations:

        @hypothesis.settings(
            max_examples=40,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
        @hypothesis.given(case=operation.as_strategy())
        def conforms(case):
            case.call_and_validate(base_url=base, checks=checks)

        conforms()


def test_answers_kept_a_moment_still_show_a_new_event_within_half_a_second_and_are_counted(
    redis_url, tmp_path
):
    settings = with_api_port(Settings(redis_url=redis_url, topic_prefix=unique_prefix()))
    apply(settings, [shipment("r1", "2024-06-05T10:00:00+08:00")])
    api = start_api(env_of(settings), settings, tmp_path, name="api-recent")
    try:
        base = api_url(settings)
        first = get(base, "/v1/reports", period="2024-06").json()["total"]["current"]
        apply(settings, [shipment("r2", "2024-06-06T10:00:00+08:00")], first_offset=1)
        applied, asked = time.monotonic(), 1
        while (
            get(base, "/v1/reports", period="2024-06").json()["total"]["current"] == first
            and time.monotonic() - applied < 5
        ):
            asked += 1
        assert time.monotonic() - applied < 0.5 + 0.5  # the windows, and a margin for the test
        assert counted(base, "/v1/reports", 200) == asked + 1  # kept answers counted too
    finally:
        api.stop()
