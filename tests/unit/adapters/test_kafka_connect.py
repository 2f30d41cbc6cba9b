"""``connect``: a broker that does not answer yet is waited for, and said so once."""

import logging

from kafka.errors import KafkaTimeoutError

from portflow.adapters.kafka import connect
from portflow.config import Settings


def test_a_broker_that_does_not_answer_is_said_once_while_connect_keeps_trying(monkeypatch, caplog):
    monkeypatch.setenv("PORTFLOW_KAFKA_BOOTSTRAP", "127.0.0.1:1")
    monkeypatch.setattr("portflow.retry.time.sleep", lambda seconds: None)
    attempts: list[int] = []

    def make(bootstrap_timeout_ms: int) -> str:
        attempts.append(bootstrap_timeout_ms)
        if len(attempts) < 3:
            raise KafkaTimeoutError("Unable to bootstrap")
        return "client"

    with caplog.at_level(logging.WARNING, logger="portflow"):
        assert connect(Settings.from_env(), make, timeout_s=30) == "client"

    assert len(attempts) == 3
    assert [r.getMessage() for r in caplog.records] == [
        "Kafka at 127.0.0.1:1 does not answer (KafkaTimeoutError: Unable to bootstrap); "
        "trying again for up to 30 s"
    ]
