"""Redis with ACL users: portflow works with credentials in PORTFLOW_REDIS_URL, and fails clearly
(without echoing the password) when they are wrong."""

import asyncio
import json

import pytest
from click.testing import CliRunner

from portflow.adapters.redis_store import RedisStore
from portflow.cli import cli
from portflow.config import Settings
from portflow.embedded import free_port, start_redis
from streams.processor import BatchProcessor, SourceRecord


@pytest.fixture(scope="module")
def secured_redis(tmp_path_factory):
    port = free_port()
    run = tmp_path_factory.mktemp("secured-redis")
    child = start_redis(port, run / "data", run / "logs", extra_args=(
        "--user", "default", "off",
        "--user", "portflow", "on", ">s3cret-pass", "~*", "&*", "+@all"))
    yield port
    child.stop()


def test_worker_side_and_report_work_with_an_acl_user(secured_redis):
    url = f"redis://portflow:s3cret-pass@127.0.0.1:{secured_redis}/0"
    settings = Settings(redis_url=url, topic_prefix="secure.")
    store = RedisStore.from_url(url, settings.topic_prefix)

    async def no_letters(letters):
        raise AssertionError(letters)

    event = {"type": "train", "event_id": "t1", "ts": "2024-05-01T10:00:00+08:00",
             "port": "khorgos", "service": "china-asia", "direction": "inbound", "teu": 60}
    stats = asyncio.run(BatchProcessor(settings, store, no_letters).process(
        [SourceRecord("secure.trains", 0, 0, None, json.dumps(event).encode())]))
    assert stats.applied_events == 1
    result = CliRunner().invoke(cli, ["report", "--period", "2024-05", "--measure", "trains",
                                      "--json"],
                                env={"PORTFLOW_REDIS_URL": url, "PORTFLOW_TOPIC_PREFIX": "secure."})
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["total"]["current"] == 1


def test_wrong_password_is_a_clear_error_without_the_password(secured_redis):
    url = f"redis://portflow:wrong-pass@127.0.0.1:{secured_redis}/0"
    result = CliRunner().invoke(cli, ["report", "--period", "2024"],
                                env={"PORTFLOW_REDIS_URL": url})
    assert result.exit_code == 1
    assert "cannot read Redis" in result.output and "wrong-pass" not in result.output
