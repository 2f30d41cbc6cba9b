"""`portflow serve` for tests: settings with a free API port, and the environment it runs in."""

from __future__ import annotations

from pathlib import Path

from entrypoints.processes import free_port
from portflow.config import Settings
from tests.support.cli import UNREACHABLE

UNREACHABLE_KAFKA = UNREACHABLE["PORTFLOW_KAFKA_BOOTSTRAP"]
TOKEN = "s3cret-token"


def env_of(settings: Settings, token: str = "") -> dict[str, str]:
    return {
        "PORTFLOW_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "PORTFLOW_REDIS_URL": settings.redis_url,
        "PORTFLOW_TOPIC_PREFIX": settings.topic_prefix,
        "PORTFLOW_TZ": settings.tz_name,
        "PORTFLOW_API_ADDR": "{}:{}".format(*settings.api_addr),
        "PORTFLOW_API_TOKEN": token,
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }


def with_api_port(settings: Settings, kafka_bootstrap: str = UNREACHABLE_KAFKA) -> Settings:
    return Settings(
        redis_url=settings.redis_url,
        topic_prefix=settings.topic_prefix,
        tz_name=settings.tz_name,
        api_addr=("127.0.0.1", free_port()),
        kafka_bootstrap=kafka_bootstrap,
    )
