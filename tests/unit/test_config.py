"""Configuration from the environment: defaults, parsing, and errors that name the variable."""

import subprocess

import faust
import pytest

from portflow.adapters.kafka import client_security, faust_credentials
from portflow.config import ConfigError, Settings
from tests.support.programs import program


def test_defaults_serve_the_embedded_stack():
    s = Settings.from_env({})
    assert s.kafka_bootstrap == "127.0.0.1:19092"
    assert s.redis_url == "redis://127.0.0.1:16379/0"
    assert s.tz_name == "Asia/Shanghai"
    assert s.dedupe_ttl_seconds == 7 * 86400
    assert s.metrics_addr == ("127.0.0.1", 9464)
    assert s.partitions == 8
    assert s.topic("shipment") == "portflow.shipments"
    assert s.dlq_topic == "portflow.dlq"


def test_values_are_read():
    s = Settings.from_env(
        {
            "PORTFLOW_TZ": "UTC",
            "PORTFLOW_DEDUPE_TTL": "12h",
            "PORTFLOW_TOPIC_PREFIX": "x.",
            "PORTFLOW_PARTITIONS": "12",
            "PORTFLOW_KAFKA_BOOTSTRAP": "k1:9092,k2:9092",
            "PORTFLOW_REDIS_URL": "rediss://user:pw@redis:6380/2",
            "PORTFLOW_METRICS_ADDR": "0.0.0.0:9000",
            "PORTFLOW_BATCH_RECORDS": "50",
        }
    )
    assert (s.tz_name, s.dedupe_ttl_seconds, s.topic("train"), s.partitions, s.batch_records) == (
        "UTC",
        43200,
        "x.trains",
        12,
        50,
    )
    assert s.metrics_addr == ("0.0.0.0", 9000)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORTFLOW_TZ", "Mars/Olympus"),
        ("PORTFLOW_DEDUPE_TTL", "soon"),
        ("PORTFLOW_DEDUPE_TTL", "0d"),
        ("PORTFLOW_KAFKA_BOOTSTRAP", "localhost"),
        ("PORTFLOW_REDIS_URL", "http://x"),
        ("PORTFLOW_METRICS_ADDR", "9464"),
        ("PORTFLOW_TOPIC_PREFIX", "bad prefix"),
        ("PORTFLOW_PARTITIONS", "0"),
        ("PORTFLOW_SESSION_TIMEOUT", "-1"),
        ("PORTFLOW_BATCH_RECORDS", "0"),
        ("PORTFLOW_BATCH_RECORDS", "10001"),
        ("PORTFLOW_TAKE_RECORDS", "many"),
        ("PORTFLOW_MAX_EVENT_AHEAD", "0"),
        ("PORTFLOW_MAX_EVENT_AHEAD", "-1d"),
        ("PORTFLOW_MAX_EVENT_AHEAD", "never"),
        ("PORTFLOW_MAX_EVENT_AGE", "10 years"),
    ],
)
def test_bad_values_name_the_variable(name, value):
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_password_is_not_echoed():
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"PORTFLOW_REDIS_URL": "http://u:secret@x"})
    assert "secret" not in str(info.value)


def test_kafka_defaults_to_plaintext():
    security = Settings.from_env({}).kafka_security
    assert client_security(security) == {"security_protocol": "PLAINTEXT"}
    assert faust_credentials(security) is None


def test_kafka_sasl_over_tls_is_passed_to_every_client(tmp_path):
    ca = tmp_path / "ca.pem"
    subprocess.run(
        [
            program("openssl"),
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=test-ca",
            "-keyout",
            str(tmp_path / "ca.key"),
            "-out",
            str(ca),
        ],
        check=True,
        capture_output=True,
    )
    security = Settings.from_env(
        {
            "PORTFLOW_KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
            "PORTFLOW_KAFKA_SASL_MECHANISM": "scram-sha-512",
            "PORTFLOW_KAFKA_SASL_USERNAME": "portflow",
            "PORTFLOW_KAFKA_SASL_PASSWORD": "s3cret",
            "PORTFLOW_KAFKA_SSL_CAFILE": str(ca),
        }
    ).kafka_security
    assert client_security(security) == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "portflow",
        "sasl_plain_password": "s3cret",
        "ssl_cafile": str(ca),
        "ssl_certfile": None,
        "ssl_keyfile": None,
    }
    credentials = faust_credentials(security)
    assert isinstance(credentials, faust.SASLCredentials)
    assert (credentials.protocol.value, credentials.mechanism.value, credentials.username) == (
        "SASL_SSL",
        "SCRAM-SHA-512",
        "portflow",
    )
    assert credentials.ssl_context is not None
    assert "s3cret" not in repr(security)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PORTFLOW_KAFKA_SECURITY_PROTOCOL": "TLS"}, "PORTFLOW_KAFKA_SECURITY_PROTOCOL"),
        ({"PORTFLOW_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"}, "PORTFLOW_KAFKA_SASL_USERNAME"),
        (
            {
                "PORTFLOW_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "PORTFLOW_KAFKA_SASL_USERNAME": "u",
                "PORTFLOW_KAFKA_SASL_PASSWORD": "p",
                "PORTFLOW_KAFKA_SASL_MECHANISM": "GSSAPI",
            },
            "PORTFLOW_KAFKA_SASL_MECHANISM",
        ),
        ({"PORTFLOW_KAFKA_SSL_CAFILE": "/etc/hostname"}, "does not use TLS"),
        (
            {
                "PORTFLOW_KAFKA_SECURITY_PROTOCOL": "SSL",
                "PORTFLOW_KAFKA_SSL_CAFILE": "/nonexistent.pem",
            },
            "no such file",
        ),
        (
            {
                "PORTFLOW_KAFKA_SECURITY_PROTOCOL": "SSL",
                "PORTFLOW_KAFKA_SSL_CERTFILE": "/etc/hostname",
            },
            "go together",
        ),
    ],
)
def test_bad_kafka_security_names_the_variable(env, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_the_batch_size_is_still_read_under_its_old_name_and_the_new_name_wins():
    assert Settings.from_env({"PORTFLOW_TAKE_RECORDS": "70"}).batch_records == 70
    assert (
        Settings.from_env(
            {"PORTFLOW_TAKE_RECORDS": "70", "PORTFLOW_BATCH_RECORDS": "90"}
        ).batch_records
        == 90
    )


def test_the_event_time_guard_looks_a_day_ahead_and_not_back_unless_told():
    defaults = Settings.from_env({})
    assert (defaults.max_event_ahead_s, defaults.max_event_age_s) == (86400, None)
    told = Settings.from_env({"PORTFLOW_MAX_EVENT_AHEAD": "OFF", "PORTFLOW_MAX_EVENT_AGE": "10y"})
    assert (told.max_event_ahead_s, told.max_event_age_s) == (None, 10 * 365 * 86400)
    assert Settings.from_env({"PORTFLOW_MAX_EVENT_AHEAD": "2h"}).max_event_ahead_s == 7200


def test_a_bad_guard_value_says_off_is_allowed():
    with pytest.raises(ConfigError, match=r"PORTFLOW_MAX_EVENT_AGE='soon'.* or off"):
        Settings.from_env({"PORTFLOW_MAX_EVENT_AGE": "soon"})


def test_no_secret_setting_appears_in_the_settings_repr():
    settings = Settings.from_env(
        {
            "PORTFLOW_REDIS_URL": "redis://portflow:redis-s3cret@127.0.0.1:6379/0",
            "PORTFLOW_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "PORTFLOW_KAFKA_SASL_USERNAME": "portflow",
            "PORTFLOW_KAFKA_SASL_PASSWORD": "kafka-s3cret",
            "PORTFLOW_API_TOKEN": "api-s3cret",
        }
    )
    shown = repr(settings)
    assert "s3cret" not in shown
    assert "portflow." in shown
    assert settings.redacted_redis_url == "redis://portflow:***@127.0.0.1:6379/0"
