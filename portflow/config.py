"""Configuration from the environment, with messages that name the variable.

Every variable has a default that serves the embedded stack (``portflow up``). ``Settings`` and
``KafkaSecurity`` refuse a value that cannot work however they are made: ``from_env`` names the
variable and the text it read, a direct construction the field and the variable that sets it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final, NoReturn
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from portflow.errors import UsageError

DEFAULT_KAFKA_BOOTSTRAP: Final = "127.0.0.1:19092"
DEFAULT_REDIS_URL: Final = "redis://127.0.0.1:16379/0"
DEFAULT_METRICS_ADDR: Final = "127.0.0.1:9464"
DEFAULT_API_ADDR: Final = "127.0.0.1:8080"
MAX_PARTITIONS: Final = 10000
MAX_BATCH_RECORDS: Final = 10000

_DURATION = re.compile(r"^(\d+)\s*([smhdwy]?)$")
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 365 * 86400}
_TOPIC_PREFIX = re.compile(r"^[A-Za-z0-9._-]{0,200}$")
_HOST_PORT = re.compile(r"^\[?([A-Za-z0-9.:_-]+?)\]?:(\d{1,5})$")
_HOST = re.compile(r"^[A-Za-z0-9.:_-]+$")

# What a refused value should have been (the messages of both ``from_env`` and the objects).
_EXPECT_HOST_PORT: Final = "expected host:port, e.g. 127.0.0.1:9464"
_EXPECT_NAME: Final = "only letters, digits, '.', '_' and '-' allowed"
_EXPECT_REDIS_URL: Final = "expected redis://[user:password@]host:port/db or rediss://…"
_EXPECT_TIME_ZONE: Final = "not an IANA time zone (e.g. Asia/Shanghai, UTC)"


class ConfigError(UsageError, ValueError):
    """A configuration value that cannot work; the message says which variable and why."""


def _refuse(field_name: str, shown: object, expected: str, variable: str) -> NoReturn:
    """Refuse a field's value given directly, naming the variable that sets it too."""
    raise ConfigError(f"{field_name}={shown!r}: {expected} (the setting of {variable})")


def _check_name(field_name: str, name: str, variable: str) -> None:
    if not _TOPIC_PREFIX.match(name):
        _refuse(field_name, name, _EXPECT_NAME, variable)


def _check_address(field_name: str, address: tuple[str, int], variable: str) -> None:
    if not _is_host_port(*address):
        _refuse(field_name, address, "expected (host, port), a port of 1 to 65535", variable)


def _check_count(field_name: str, count: int, highest: int, variable: str) -> None:
    if not 1 <= count <= highest:
        _refuse(field_name, count, f"expected 1 to {highest}", variable)


def _check_seconds(field_name: str, seconds: int, variable: str) -> None:
    if seconds <= 0:
        _refuse(field_name, seconds, "expected a positive number of seconds", variable)


def _is_host_port(host: str, port: int) -> bool:
    return bool(_HOST.match(host)) and 0 < port < 65536


def _is_redis_url(url: str) -> bool:
    parsed = urlparse(url)
    return parsed.scheme in ("redis", "rediss", "unix") and bool(parsed.hostname or parsed.path)


def _time_zone(name: str) -> ZoneInfo | None:
    """The IANA time zone of that name, or None if there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def parse_duration(text: str, name: str) -> int:
    """Seconds in ``30``, ``30s``, ``15m``, ``12h``, ``7d``, ``2w`` or ``10y`` (365 days)."""
    match = _DURATION.match(text.strip().lower())
    if not match or int(match[1]) <= 0:
        raise ConfigError(f"{name}={text!r}: expected a positive duration such as 7d, 12h, 30m")
    return int(match[1]) * _DURATION_UNITS[match[2]]


def parse_optional_duration(text: str, name: str) -> int | None:
    """``parse_duration``, or None for ``off`` (no limit)."""
    if text.strip().lower() == "off":
        return None
    try:
        return parse_duration(text, name)
    except ConfigError as exc:
        raise ConfigError(f"{exc} or off") from None


def parse_host_port(text: str, name: str) -> tuple[str, int]:
    address = _host_port(text)
    if address is None:
        raise ConfigError(f"{name}={text!r}: {_EXPECT_HOST_PORT}")
    return address


def _host_port(text: str) -> tuple[str, int] | None:
    match = _HOST_PORT.match(text.strip())
    if not match or not _is_host_port(match[1], int(match[2])):
        return None
    return match[1], int(match[2])


KAFKA_SECURITY_PROTOCOLS: Final = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
KAFKA_SASL_MECHANISMS: Final = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True)
class KafkaSecurity:
    """How the Kafka clients authenticate and encrypt (``PORTFLOW_KAFKA_*``)."""

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "PLAIN"
    sasl_username: str = ""
    sasl_password: str = field(default="", repr=False)
    ssl_cafile: str = ""
    ssl_certfile: str = ""
    ssl_keyfile: str = ""

    @property
    def uses_sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    @property
    def uses_ssl(self) -> bool:
        return self.protocol.endswith("SSL")

    def __post_init__(self) -> None:
        """Refuse settings that cannot work, naming the variables that set them."""
        if self.protocol not in KAFKA_SECURITY_PROTOCOLS:
            raise ConfigError(
                f"PORTFLOW_KAFKA_SECURITY_PROTOCOL={self.protocol!r}: expected one of "
                f"{', '.join(KAFKA_SECURITY_PROTOCOLS)}"
            )
        if self.sasl_mechanism not in KAFKA_SASL_MECHANISMS:
            raise ConfigError(
                f"PORTFLOW_KAFKA_SASL_MECHANISM={self.sasl_mechanism!r}: expected one of "
                f"{', '.join(KAFKA_SASL_MECHANISMS)}"
            )
        if self.uses_sasl and not (self.sasl_username and self.sasl_password):
            raise ConfigError(
                f"PORTFLOW_KAFKA_SECURITY_PROTOCOL={self.protocol}: set "
                "PORTFLOW_KAFKA_SASL_USERNAME and PORTFLOW_KAFKA_SASL_PASSWORD"
            )
        files = {
            "PORTFLOW_KAFKA_SSL_CAFILE": self.ssl_cafile,
            "PORTFLOW_KAFKA_SSL_CERTFILE": self.ssl_certfile,
            "PORTFLOW_KAFKA_SSL_KEYFILE": self.ssl_keyfile,
        }
        for name, path in files.items():
            if path and not self.uses_ssl:
                raise ConfigError(
                    f"{name} is set but PORTFLOW_KAFKA_SECURITY_PROTOCOL={self.protocol} "
                    "does not use TLS (SSL or SASL_SSL)"
                )
            if path and not os.path.isfile(path):
                raise ConfigError(f"{name}={path!r}: no such file")
        if bool(self.ssl_certfile) != bool(self.ssl_keyfile):
            raise ConfigError(
                "PORTFLOW_KAFKA_SSL_CERTFILE and PORTFLOW_KAFKA_SSL_KEYFILE go "
                "together (a client certificate and its key)"
            )

    @classmethod
    def from_env(cls, get: Callable[[str, str], str]) -> KafkaSecurity:
        return cls(
            get("PORTFLOW_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT").upper(),
            get("PORTFLOW_KAFKA_SASL_MECHANISM", "PLAIN").upper(),
            get("PORTFLOW_KAFKA_SASL_USERNAME", ""),
            get("PORTFLOW_KAFKA_SASL_PASSWORD", ""),
            get("PORTFLOW_KAFKA_SSL_CAFILE", ""),
            get("PORTFLOW_KAFKA_SSL_CERTFILE", ""),
            get("PORTFLOW_KAFKA_SSL_KEYFILE", ""),
        )


@dataclass(frozen=True)
class Settings:
    """What every portflow process is configured with (``from_env``: the ``PORTFLOW_*``
    variables)."""

    kafka_bootstrap: str = DEFAULT_KAFKA_BOOTSTRAP
    redis_url: str = field(default=DEFAULT_REDIS_URL, repr=False)  # may hold a password
    tz_name: str = "Asia/Shanghai"
    topic_prefix: str = "portflow."
    dedupe_ttl_seconds: int = 7 * 86400
    metrics_addr: tuple[str, int] = ("127.0.0.1", 9464)
    partitions: int = 8
    group_id: str = "portflow"
    session_timeout_s: int = 30
    # Most Kafka records in a batch (``streams.batching``): more amortises the per-batch cost
    # (single-event records); two batches are in memory at once (one applied, one filling).
    batch_records: int = 500
    # The event-time guard: events further ahead of the worker's clock, or further behind it, are
    # dead-lettered (``event_time_ahead``, ``event_time_behind``); None means no limit.
    max_event_ahead_s: int | None = 86400
    max_event_age_s: int | None = None
    kafka_security: KafkaSecurity = field(default_factory=KafkaSecurity)
    # The HTTP API (``portflow serve``): where it listens, and the bearer token it requires
    # (required to listen anywhere but loopback; never shown)
    api_addr: tuple[str, int] = ("127.0.0.1", 8080)
    api_token: str = field(default="", repr=False)
    # ``portflow up --data``'s directory (Kafka's log, Redis' append-only file), whose size the
    # worker exports; empty for a stack that keeps nothing, or servers run elsewhere
    data_dir: str = ""
    tz: ZoneInfo = field(init=False, compare=False, repr=False)  # of ``tz_name``

    def __post_init__(self) -> None:
        """Refuse a value that cannot work (as ``from_env`` does), naming the field."""
        if any(_host_port(server) is None for server in self.kafka_bootstrap.split(",")):
            _refuse(
                "kafka_bootstrap",
                self.kafka_bootstrap,
                "expected host:port[,host:port…]",
                "PORTFLOW_KAFKA_BOOTSTRAP",
            )
        if not _is_redis_url(self.redis_url):
            _refuse("redis_url", _redact(self.redis_url), _EXPECT_REDIS_URL, "PORTFLOW_REDIS_URL")
        tz = _time_zone(self.tz_name)
        if tz is None:
            _refuse("tz_name", self.tz_name, _EXPECT_TIME_ZONE, "PORTFLOW_TZ")
        object.__setattr__(self, "tz", tz)
        _check_name("topic_prefix", self.topic_prefix, "PORTFLOW_TOPIC_PREFIX")
        _check_name("group_id", self.group_id, "PORTFLOW_GROUP_ID")
        _check_address("metrics_addr", self.metrics_addr, "PORTFLOW_METRICS_ADDR")
        _check_address("api_addr", self.api_addr, "PORTFLOW_API_ADDR")
        _check_count("partitions", self.partitions, MAX_PARTITIONS, "PORTFLOW_PARTITIONS")
        _check_count(
            "batch_records", self.batch_records, MAX_BATCH_RECORDS, "PORTFLOW_BATCH_RECORDS"
        )
        _check_seconds("dedupe_ttl_seconds", self.dedupe_ttl_seconds, "PORTFLOW_DEDUPE_TTL")
        _check_seconds("session_timeout_s", self.session_timeout_s, "PORTFLOW_SESSION_TIMEOUT")
        if self.max_event_ahead_s is not None:  # None: no limit
            _check_seconds("max_event_ahead_s", self.max_event_ahead_s, "PORTFLOW_MAX_EVENT_AHEAD")
        if self.max_event_age_s is not None:
            _check_seconds("max_event_age_s", self.max_event_age_s, "PORTFLOW_MAX_EVENT_AGE")

    def topic(self, event_type: str) -> str:
        """The topic of an event type (``shipment`` → ``portflow.shipments``) or ``dlq``."""
        suffix = {"shipment": "shipments", "train": "trains", "customs": "customs"}.get(
            event_type, event_type
        )
        return f"{self.topic_prefix}{suffix}"

    @property
    def event_topics(self) -> dict[str, str]:
        """Topic name → the event type it carries."""
        return {self.topic(t): t for t in ("shipment", "train", "customs")}

    @property
    def redacted_redis_url(self) -> str:
        """The Redis URL without its password, for messages and logs."""
        return _redact(self.redis_url)

    @property
    def dlq_topic(self) -> str:
        return self.topic("dlq")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        get = _getter(env)
        bootstrap = _kafka_bootstrap(get)
        redis_url = _redis_url(get)
        tz_name = _tz_name(get)
        prefix = _name(env.get("PORTFLOW_TOPIC_PREFIX", "portflow."), "PORTFLOW_TOPIC_PREFIX")
        group_id = _name(get("PORTFLOW_GROUP_ID", "portflow"), "PORTFLOW_GROUP_ID")
        return cls(
            kafka_bootstrap=bootstrap,
            redis_url=redis_url,
            tz_name=tz_name,
            topic_prefix=prefix,
            dedupe_ttl_seconds=_duration(get, "PORTFLOW_DEDUPE_TTL", "7d"),
            metrics_addr=_address(get, "PORTFLOW_METRICS_ADDR", DEFAULT_METRICS_ADDR),
            partitions=_count(get, "PORTFLOW_PARTITIONS", "8", MAX_PARTITIONS),
            group_id=group_id,
            session_timeout_s=_duration(get, "PORTFLOW_SESSION_TIMEOUT", "30s"),
            batch_records=_batch_records(get),
            kafka_security=KafkaSecurity.from_env(get),
            max_event_ahead_s=parse_optional_duration(
                get("PORTFLOW_MAX_EVENT_AHEAD", "1d"), "PORTFLOW_MAX_EVENT_AHEAD"
            ),
            max_event_age_s=parse_optional_duration(
                get("PORTFLOW_MAX_EVENT_AGE", "off"), "PORTFLOW_MAX_EVENT_AGE"
            ),
            api_addr=_address(get, "PORTFLOW_API_ADDR", DEFAULT_API_ADDR),
            api_token=get("PORTFLOW_API_TOKEN", ""),
            data_dir=get("PORTFLOW_DATA_DIR", ""),
        )


# A variable's value, stripped, or the default when it is unset or blank.
_Getter = Callable[[str, str], str]


def _getter(env: Mapping[str, str]) -> _Getter:
    def get(name: str, default: str) -> str:
        value = env.get(name, "").strip()
        return value or default

    return get


def _kafka_bootstrap(get: _Getter) -> str:
    bootstrap = get("PORTFLOW_KAFKA_BOOTSTRAP", DEFAULT_KAFKA_BOOTSTRAP)
    for server in bootstrap.split(","):
        parse_host_port(server, "PORTFLOW_KAFKA_BOOTSTRAP")
    return bootstrap


def _redis_url(get: _Getter) -> str:
    redis_url = get("PORTFLOW_REDIS_URL", DEFAULT_REDIS_URL)
    if not _is_redis_url(redis_url):
        raise ConfigError(f"PORTFLOW_REDIS_URL={_redact(redis_url)!r}: {_EXPECT_REDIS_URL}")
    return redis_url


def _tz_name(get: _Getter) -> str:
    tz_name = get("PORTFLOW_TZ", "Asia/Shanghai")
    if _time_zone(tz_name) is None:
        raise ConfigError(f"PORTFLOW_TZ={tz_name!r}: {_EXPECT_TIME_ZONE}")
    return tz_name


def _name(value: str, variable: str) -> str:
    """A topic prefix or group id: ``value``, if only of the characters Kafka allows."""
    if not _TOPIC_PREFIX.match(value):
        raise ConfigError(f"{variable}={value!r}: {_EXPECT_NAME}")
    return value


def _duration(get: _Getter, variable: str, default: str) -> int:
    return parse_duration(get(variable, default), variable)


def _address(get: _Getter, variable: str, default: str) -> tuple[str, int]:
    return parse_host_port(get(variable, default), variable)


def _count(get: _Getter, variable: str, default: str, highest: int) -> int:
    text = get(variable, default)
    if not text.isdigit() or not 1 <= int(text) <= highest:
        raise ConfigError(f"{variable}={text!r}: expected 1 to {highest}")
    return int(text)


def _batch_records(get: _Getter) -> int:
    """``PORTFLOW_BATCH_RECORDS``, or its old name ``PORTFLOW_TAKE_RECORDS`` when only that
    one is set."""
    variable = (
        "PORTFLOW_BATCH_RECORDS"
        if get("PORTFLOW_BATCH_RECORDS", "") or not get("PORTFLOW_TAKE_RECORDS", "")
        else "PORTFLOW_TAKE_RECORDS"
    )
    return _count(get, variable, "500", MAX_BATCH_RECORDS)


def _redact(url: str) -> str:
    """The URL without its password, for error messages and logs."""
    parsed = urlparse(url)
    if parsed.password:
        return url.replace(f":{parsed.password}@", ":***@", 1)
    return url
