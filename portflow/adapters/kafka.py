"""Kafka plumbing shared by the worker and the producers: topic creation and client settings.

Plain Kafka only. Topics are created explicitly with the configured partition count because a
broker that auto-creates them (tansu does, with 4) would otherwise fix the count on first use.
"""

from __future__ import annotations

import logging
import ssl
import time

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from portflow.config import KafkaSecurity, Settings

log = logging.getLogger(__name__)


def client_security(security: KafkaSecurity) -> dict:
    """kafka-python client settings (admin, producer, consumer) for the configured security."""
    options: dict = {"security_protocol": security.protocol}
    if security.uses_sasl:
        options.update(sasl_mechanism=security.sasl_mechanism,
                       sasl_plain_username=security.sasl_username,
                       sasl_plain_password=security.sasl_password)
    if security.uses_ssl:
        options.update(ssl_cafile=security.ssl_cafile or None,
                       ssl_certfile=security.ssl_certfile or None,
                       ssl_keyfile=security.ssl_keyfile or None)
    return options


def faust_credentials(security: KafkaSecurity):
    """Faust's ``broker_credentials`` (aiokafka) for the configured security, or None."""
    import faust

    context = None
    if security.uses_ssl:
        context = ssl.create_default_context(cafile=security.ssl_cafile or None)
        if security.ssl_certfile:
            context.load_cert_chain(security.ssl_certfile, security.ssl_keyfile)
    if security.uses_sasl:
        return faust.SASLCredentials(username=security.sasl_username,
                                     password=security.sasl_password,
                                     mechanism=security.sasl_mechanism, ssl_context=context)
    return faust.SSLCredentials(context) if context else None


class BrokerUnavailable(RuntimeError):
    """The Kafka cluster could not be reached within the allowed time."""


def admin_client(settings: Settings, timeout_s: float = 30.0) -> KafkaAdminClient:
    """An admin client, retrying until the broker answers or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return KafkaAdminClient(
                bootstrap_servers=settings.kafka_bootstrap.split(","),
                client_id="portflow-admin",
                request_timeout_ms=10_000,
                **client_security(settings.kafka_security),
            )
        except (KafkaError, OSError) as exc:
            if time.monotonic() > deadline:
                raise BrokerUnavailable(
                    f"cannot reach Kafka at {settings.kafka_bootstrap} ({exc}); is the broker "
                    "running? (`portflow up` starts the embedded one; see PORTFLOW_KAFKA_BOOTSTRAP)"
                ) from None
            time.sleep(0.5)


def ensure_topics(settings: Settings, timeout_s: float = 30.0) -> None:
    """Create the event topics and the DLQ with ``settings.partitions`` partitions if missing."""
    wanted = [*settings.event_topics, settings.dlq_topic]
    admin = admin_client(settings, timeout_s)
    try:
        existing = set(admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        if missing:
            try:
                admin.create_topics(
                    [NewTopic(t, num_partitions=settings.partitions, replication_factor=-1)
                     for t in missing],
                    timeout_ms=10_000,
                )
                log.info("created topics %s with %d partitions", missing, settings.partitions)
            except TopicAlreadyExistsError:
                pass  # created concurrently by another worker or a replay
        for topic in wanted:
            found = admin.describe_topics([topic])
            count = len(found[0].get("partitions", [])) if found else 0
            if 0 < count < settings.partitions:
                log.warning(
                    "topic %s has %d partitions, fewer than PORTFLOW_PARTITIONS=%d; "
                    "at most %d workers will share it", topic, count, settings.partitions, count,
                )
    finally:
        admin.close()


class TopicIds:
    """The Kafka id and partition count of the event topics (a topic deleted and created again
    gets a new id), through one admin client kept open between calls."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._admin: KafkaAdminClient | None = None

    def __call__(self) -> dict[str, tuple[str, int]]:
        if self._admin is None:
            self._admin = admin_client(self.settings, timeout_s=5.0)
        try:
            found = self._admin.describe_topics(list(self.settings.event_topics))
        except Exception:
            self.close()
            raise
        # (brokers older than Kafka 2.8 have no topic ids: all zeros, or none)
        return {t["name"]: (str(t["topic_id"]), len(t["partitions"]))
                for t in found if not t.get("error_code") and str(t.get("topic_id") or 0).strip("0-")}

    def close(self) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None
