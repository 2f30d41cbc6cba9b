"""Settings made directly (not from the environment) refuse what cannot work, as ``from_env``
does: the message names the field and the variable that sets it."""

import dataclasses

import pytest

from portflow.config import ConfigError, KafkaSecurity, Settings


@pytest.mark.parametrize(
    ("field", "value", "variable"),
    [
        ("kafka_bootstrap", "localhost", "PORTFLOW_KAFKA_BOOTSTRAP"),
        ("kafka_bootstrap", "k1:9092,k2", "PORTFLOW_KAFKA_BOOTSTRAP"),
        ("redis_url", "http://x", "PORTFLOW_REDIS_URL"),
        ("tz_name", "Mars/Olympus", "PORTFLOW_TZ"),
        ("topic_prefix", "bad prefix", "PORTFLOW_TOPIC_PREFIX"),
        ("group_id", "a/b", "PORTFLOW_GROUP_ID"),
        ("dedupe_ttl_seconds", 0, "PORTFLOW_DEDUPE_TTL"),
        ("metrics_addr", ("127.0.0.1", 0), "PORTFLOW_METRICS_ADDR"),
        ("metrics_addr", ("", 9464), "PORTFLOW_METRICS_ADDR"),
        ("partitions", 0, "PORTFLOW_PARTITIONS"),
        ("partitions", 10001, "PORTFLOW_PARTITIONS"),
        ("session_timeout_s", -1, "PORTFLOW_SESSION_TIMEOUT"),
        ("batch_records", 0, "PORTFLOW_BATCH_RECORDS"),
        ("batch_records", 10001, "PORTFLOW_BATCH_RECORDS"),
        ("max_event_ahead_s", 0, "PORTFLOW_MAX_EVENT_AHEAD"),
        ("max_event_age_s", -3600, "PORTFLOW_MAX_EVENT_AGE"),
        ("api_addr", ("0.0.0.0", 65536), "PORTFLOW_API_ADDR"),
    ],
)
def test_a_value_that_cannot_work_is_refused_naming_the_field_and_its_variable(
    field, value, variable
):
    with pytest.raises(ConfigError, match=rf"^{field}=") as info:
        Settings(**{field: value})
    assert variable in str(info.value)


def test_a_replaced_value_is_checked_too():
    with pytest.raises(ConfigError, match="partitions=0"):
        dataclasses.replace(Settings(), partitions=0)


def test_the_time_zone_follows_its_name_when_replaced():
    assert dataclasses.replace(Settings(), tz_name="UTC").tz.key == "UTC"


def test_the_limits_that_mean_no_limit_are_accepted():
    settings = Settings(max_event_ahead_s=None, max_event_age_s=None, partitions=10000)
    assert (settings.max_event_ahead_s, settings.max_event_age_s) == (None, None)


def test_a_refused_redis_url_does_not_show_its_password():
    with pytest.raises(ConfigError) as info:
        Settings(redis_url="http://user:s3cret@redis:6379/0")
    assert "s3cret" not in str(info.value)
    assert "PORTFLOW_REDIS_URL" in str(info.value)


@pytest.mark.parametrize(
    ("security", "message"),
    [
        ({"protocol": "TLS"}, "PORTFLOW_KAFKA_SECURITY_PROTOCOL='TLS'"),
        ({"sasl_mechanism": "GSSAPI"}, "PORTFLOW_KAFKA_SASL_MECHANISM='GSSAPI'"),
        ({"protocol": "SASL_SSL", "sasl_username": "u"}, "PORTFLOW_KAFKA_SASL_PASSWORD"),
        ({"ssl_cafile": "/etc/hostname"}, "does not use TLS"),
        ({"protocol": "SSL", "ssl_cafile": "/nonexistent.pem"}, "no such file"),
        ({"protocol": "SSL", "ssl_keyfile": "/etc/hostname"}, "go together"),
    ],
)
def test_kafka_security_made_directly_refuses_what_cannot_work(security, message):
    with pytest.raises(ConfigError, match=message):
        KafkaSecurity(**security)
