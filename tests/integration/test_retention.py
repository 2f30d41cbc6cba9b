"""Offsets Kafka deleted before they were applied: recorded in Redis, refused by `report`.

tansu implements neither retention nor DeleteRecords, so the consumer here is a stand-in that
reports an earliest offset past the mark; Redis, the positioner and the CLI are real.
"""

import asyncio
import json

from click.testing import CliRunner
from faust.types import TP

from portflow.adapters.redis_store import RedisStore
from portflow.cli import cli
from streams.positioning import Positioner
from streams.processor import BatchProcessor


class ConsumerAfterRetention:
    """Faust's consumer as the positioner sees it, for a topic whose start was deleted."""

    def __init__(self, tps, earliest):
        self.tps, self.earliest, self.seeks = tps, earliest, {}

    def assignment(self):
        return set(self.tps)

    async def seek_to_committed(self):
        return {tp: 0 for tp in self.tps}

    async def earliest_offsets(self, *tps):
        return {tp: self.earliest[tp] for tp in tps}

    async def seek_wait(self, targets):
        self.seeks.update(targets)


class App:
    def __init__(self, consumer):
        self.consumer = consumer


async def no_letters(letters):
    raise AssertionError("no dead letters expected")


def test_deleted_offsets_are_recorded_and_the_report_refuses_to_pretend(settings):
    store = RedisStore.from_url(settings.redis_url, settings.topic_prefix)
    topic = settings.topic("shipment")
    kept, deleted = TP(topic, 0), TP(topic, 1)
    store.client.hset(store.hwm_key, f"{topic}:0", 9)  # applied up to 9; Kafka starts at 5
    consumer = ConsumerAfterRetention([kept, deleted], {kept: 5, deleted: 120})
    processor = BatchProcessor(settings, store, no_letters)
    lost = []
    positioner = Positioner(App(consumer), settings, store, processor, topic_ids=lambda: {},
                            on_lost=lambda t, n: lost.append((t, n)))
    positioner.install()

    asyncio.run(consumer.seek_to_committed())  # what Faust does after every rebalance

    assert consumer.seeks == {kept: 10, deleted: 120}
    assert store.lost_offsets() == {f"{topic}:1": [[0, 119]]}
    assert lost == [(topic, 120)]
    assert processor.applied_offset(f"{topic}:1") == -1

    env = {"PORTFLOW_REDIS_URL": settings.redis_url, "PORTFLOW_TOPIC_PREFIX": settings.topic_prefix,
           "PORTFLOW_TZ": "Asia/Shanghai"}
    runner = CliRunner()
    refused = runner.invoke(cli, ["report", "--period", "2024", "--json"], env=env)
    assert refused.exit_code != 0
    assert f"{topic}:1 offsets 0-119" in refused.output and "incomplete" in refused.output
    allowed = runner.invoke(cli, ["report", "--period", "2024", "--json", "--allow-incomplete"],
                            env=env)
    assert allowed.exit_code == 0, allowed.output
    body = json.loads(allowed.stdout)
    assert body["incomplete"] == {"lost_offsets": {f"{topic}:1": [[0, 119]]}}
