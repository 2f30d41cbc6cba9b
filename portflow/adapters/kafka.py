"""Kafka plumbing shared by the worker and the producers: topic creation and client settings.

Plain Kafka only. Topics are created explicitly with the configured partition count because a
broker that auto-creates them (tansu does, with 4) would otherwise fix the count on first use.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Final, TypedDict, TypeVar

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import (
    KafkaError,
    SaslAuthenticationFailedError,
    TopicAlreadyExistsError,
    UnsupportedSaslMechanismError,
)

from portflow.config import KafkaSecurity, Settings
from portflow.errors import PortflowError
from portflow.retry import Backoff, retry

if TYPE_CHECKING:
    from faust.types.auth import CredentialsT

log = logging.getLogger(__name__)


class ClientSecurity(TypedDict, total=False):
    """kafka-python's security settings, the same for its admin, producer and consumer."""

    security_protocol: str
    sasl_mechanism: str
    sasl_plain_username: str
    sasl_plain_password: str
    ssl_cafile: str | None
    ssl_certfile: str | None
    ssl_keyfile: str | None


def client_security(security: KafkaSecurity) -> ClientSecurity:
    """kafka-python client settings (admin, producer, consumer) for the configured security."""
    options: ClientSecurity = {"security_protocol": security.protocol}
    if security.uses_sasl:
        options.update(
            {
                "sasl_mechanism": security.sasl_mechanism,
                "sasl_plain_username": security.sasl_username,
                "sasl_plain_password": security.sasl_password,
            }
        )
    if security.uses_ssl:
        options.update(
            {
                "ssl_cafile": security.ssl_cafile or None,
                "ssl_certfile": security.ssl_certfile or None,
                "ssl_keyfile": security.ssl_keyfile or None,
            }
        )
    return options


def faust_credentials(security: KafkaSecurity) -> CredentialsT | None:
    """Faust's ``broker_credentials`` (aiokafka) for the configured security, or None."""
    import faust

    context = None
    if security.uses_ssl:
        context = ssl.create_default_context(cafile=security.ssl_cafile or None)
        if security.ssl_certfile:
            context.load_cert_chain(security.ssl_certfile, security.ssl_keyfile)
    if security.uses_sasl:
        return faust.SASLCredentials(
            username=security.sasl_username,
            password=security.sasl_password,
            mechanism=security.sasl_mechanism,
            ssl_context=context,
        )
    return faust.SSLCredentials(context) if context else None


class BrokerUnavailable(PortflowError, RuntimeError):
    """The Kafka cluster could not be reached within the allowed time."""


class BrokerRefused(BrokerUnavailable):
    """The broker answered but refused our credentials or we refused its certificate: retrying
    cannot help; the message names the setting to fix."""


Client = TypeVar("Client")


ATTEMPT_MS: Final = 5_000  # one bootstrap attempt of ``connect``


def connect(settings: Settings, make: Callable[[int], Client], timeout_s: float = 30.0) -> Client:
    """``make(bootstrap_timeout_ms)`` a kafka-python client (it contacts the broker as it is
    made), retried until the broker answers or ``timeout_s`` passes. kafka-python only logs why a
    connection failed, then times out: the reason is caught from its log, so that a refusal
    fails after one attempt, naming the setting to fix."""

    failed_before = False

    def attempt() -> Client:
        nonlocal failed_before
        with _connection_failures() as failures:
            try:
                return make(ATTEMPT_MS)
            except (KafkaError, OSError) as exc:
                refusal = next(filter(None, map(_refusal(settings), failures)), None)
                if refusal:
                    raise BrokerRefused(refusal) from None
                if not failed_before:  # said once: the wait is long enough to look like a hang
                    failed_before = True
                    log.warning(
                        "Kafka at %s does not answer (%s); trying again for up to %.0f s",
                        settings.kafka_bootstrap,
                        exc,
                        timeout_s,
                    )
                raise

    return retry(
        attempt,
        (KafkaError, OSError),
        Backoff(0.5, 0.5, timeout_s),
        lambda exc: BrokerUnavailable(
            f"cannot reach Kafka at {settings.kafka_bootstrap} ({exc}); "
            "is the broker running? (`portflow up` starts the embedded "
            "one; see PORTFLOW_KAFKA_BOOTSTRAP)"
        ),
    )


class _FailureLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.failures: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        for logged in (a for a in args if isinstance(a, BaseException)):
            failure: BaseException | None = logged
            while failure is not None and failure not in self.failures:  # with what it wraps
                self.failures.append(failure)  # (an SSL error hides in a connection error)
                failure = failure.__cause__ or failure.__context__


@contextlib.contextmanager
def _connection_failures() -> Iterator[list[BaseException]]:
    """The exceptions kafka-python logs while the block runs."""
    handler, logger = _FailureLog(), logging.getLogger("kafka")
    logger.addHandler(handler)
    try:
        yield handler.failures
    finally:
        logger.removeHandler(handler)


def _refusal(settings: Settings) -> Callable[[BaseException], str | None]:
    """What to say of a failure that retrying cannot mend (None for any other)."""
    security, where = settings.kafka_security, f"Kafka at {settings.kafka_bootstrap}"

    def explain(failure: BaseException) -> str | None:
        if isinstance(failure, (SaslAuthenticationFailedError, UnsupportedSaslMechanismError)):
            return (
                f"{where} refused the credentials ({failure}): check "
                f"PORTFLOW_KAFKA_SASL_USERNAME (now {security.sasl_username!r}), "
                "PORTFLOW_KAFKA_SASL_PASSWORD and PORTFLOW_KAFKA_SASL_MECHANISM "
                f"(now {security.sasl_mechanism})"
            )
        if isinstance(failure, ssl.SSLCertVerificationError):
            return (
                f"the TLS certificate of {where} is not trusted "
                f"({failure.verify_message}): set PORTFLOW_KAFKA_SSL_CAFILE to the "
                "certificate of the CA that signed it"
            )
        if isinstance(failure, ssl.SSLError):
            return (
                f"TLS with {where} failed ({failure}): does its listener use "
                f"PORTFLOW_KAFKA_SECURITY_PROTOCOL={security.protocol}?"
            )
        return None

    return explain


def admin_client(settings: Settings, timeout_s: float = 30.0) -> KafkaAdminClient:
    """An admin client, retrying until the broker answers or ``timeout_s`` passes."""
    return connect(
        settings,
        lambda wait_ms: KafkaAdminClient(
            bootstrap_servers=settings.kafka_bootstrap.split(","),
            bootstrap_timeout_ms=wait_ms,
            client_id="portflow-admin",
            request_timeout_ms=10_000,
            **client_security(settings.kafka_security),
        ),
        timeout_s,
    )


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
                    [
                        NewTopic(t, num_partitions=settings.partitions, replication_factor=-1)
                        for t in missing
                    ],
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
                    "at most %d workers will share it",
                    topic,
                    count,
                    settings.partitions,
                    count,
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
        return {
            t["name"]: (str(t["topic_id"]), len(t["partitions"]))
            for t in found
            if not t.get("error_code") and str(t.get("topic_id") or 0).strip("0-")
        }

    def close(self) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None


class EndOffsets:
    """The end offsets of the event topics' partitions (the offset Kafka gives the next record),
    through one consumer kept open between calls (it joins no group)."""

    def __init__(self, settings: Settings, timeout_s: float = 5.0) -> None:
        self.settings, self.timeout_s = settings, timeout_s
        self._consumer: KafkaConsumer | None = None

    def __call__(self) -> dict[tuple[str, int], int]:
        """(topic, partition) → end offset; raises ``BrokerUnavailable`` or ``KafkaError``."""
        if self._consumer is None:
            self._consumer = connect(
                self.settings,
                lambda wait_ms: KafkaConsumer(
                    bootstrap_servers=self.settings.kafka_bootstrap.split(","),
                    bootstrap_timeout_ms=wait_ms,
                    request_timeout_ms=int(self.timeout_s * 1000),
                    enable_auto_commit=False,
                    client_id="portflow-offsets",
                    **client_security(self.settings.kafka_security),
                ),
                self.timeout_s,
            )
        try:
            partitions = [
                TopicPartition(topic, p)
                for topic in self.settings.event_topics
                for p in sorted(self._consumer.partitions_for_topic(topic) or ())
            ]
            ends = self._consumer.end_offsets(partitions) if partitions else {}
        except Exception:
            self.close()
            raise
        return {(tp.topic, tp.partition): end for tp, end in ends.items()}

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
