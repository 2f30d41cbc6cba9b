"""Configuration from the environment: defaults, parsing, and errors that name the variable."""

import pytest

from portflow.config import ConfigError, Settings


def test_defaults_serve_the_embedded_stack():
    s = Settings.from_env({})
    assert s.kafka_bootstrap == "127.0.0.1:19092"
    assert s.redis_url == "redis://127.0.0.1:16379/0"
    assert s.tz_name == "Asia/Shanghai"
    assert s.dedupe_ttl_seconds == 7 * 86400
    assert s.metrics_addr == ("127.0.0.1", 9464)
    assert s.partitions == 8
    assert s.topic("shipment") == "portflow.shipments" and s.dlq_topic == "portflow.dlq"


def test_values_are_read():
    s = Settings.from_env({"PORTFLOW_TZ": "UTC", "PORTFLOW_DEDUPE_TTL": "12h",
                           "PORTFLOW_TOPIC_PREFIX": "x.", "PORTFLOW_PARTITIONS": "12",
                           "PORTFLOW_KAFKA_BOOTSTRAP": "k1:9092,k2:9092",
                           "PORTFLOW_REDIS_URL": "rediss://user:pw@redis:6380/2",
                           "PORTFLOW_METRICS_ADDR": "0.0.0.0:9000"})
    assert (s.tz_name, s.dedupe_ttl_seconds, s.topic("train"), s.partitions) == \
        ("UTC", 43200, "x.trains", 12)
    assert s.metrics_addr == ("0.0.0.0", 9000)


@pytest.mark.parametrize("name, value", [
    ("PORTFLOW_TZ", "Mars/Olympus"), ("PORTFLOW_DEDUPE_TTL", "soon"),
    ("PORTFLOW_DEDUPE_TTL", "0d"), ("PORTFLOW_KAFKA_BOOTSTRAP", "localhost"),
    ("PORTFLOW_REDIS_URL", "http://x"), ("PORTFLOW_METRICS_ADDR", "9464"),
    ("PORTFLOW_TOPIC_PREFIX", "bad prefix"), ("PORTFLOW_PARTITIONS", "0"),
    ("PORTFLOW_SESSION_TIMEOUT", "-1"),
])
def test_bad_values_name_the_variable(name, value):
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_password_is_not_echoed():
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"PORTFLOW_REDIS_URL": "http://u:secret@x"})
    assert "secret" not in str(info.value)
