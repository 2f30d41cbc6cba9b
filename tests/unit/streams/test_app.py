"""The Faust app's settings that Faust itself does not expose."""

import asyncio

import redis

from portflow.adapters.redis import RedisStore
from portflow.config import Settings
from streams.app import FETCH_MAX_WAIT_MS, FETCHES_QUEUED, QuietMonitor, create_app
from streams.intake import BatchingConsumer
from streams.metrics import WorkerMetrics


def test_the_worker_consumer_waits_for_fetches_only_briefly():
    settings = Settings()
    app = create_app(
        settings, RedisStore(redis.Redis(), settings.topic_prefix), WorkerMetrics()
    ).app

    async def created_wait() -> int:
        consumer = app.consumer._thread._create_worker_consumer(app.transport)
        try:
            return consumer._fetch_max_wait_ms
        finally:
            await consumer.stop()

    assert asyncio.run(created_wait()) == FETCH_MAX_WAIT_MS < 1500


def test_faust_monitor_keeps_no_per_record_bookkeeping():
    settings = Settings()
    app = create_app(
        settings, RedisStore(redis.Redis(), settings.topic_prefix), WorkerMetrics()
    ).app
    monitor = app.monitor
    assert isinstance(monitor, QuietMonitor)
    monitor.on_message_in(None, 0, None)  # Faust's own Monitor would count and time these
    assert monitor.on_stream_event_in(None, 0, None, None) is None
    assert monitor.messages_received_total == 0
    assert monitor.events_total == 0


def test_the_worker_consumes_whole_fetches_with_at_most_two_queued_per_agent():
    settings = Settings(batch_records=300)
    app = create_app(
        settings, RedisStore(redis.Redis(), settings.topic_prefix), WorkerMetrics()
    ).app

    async def agent_queue_sizes() -> list[int]:
        return [
            agent.channel.clone(is_iterator=True).queue.maxsize for agent in app.agents.values()
        ]

    assert isinstance(app.consumer, BatchingConsumer)
    assert app.conf.broker_max_poll_records == 300  # a fetch holds at most a batch of records
    assert asyncio.run(agent_queue_sizes()) == [FETCHES_QUEUED] * 3 == [2, 2, 2]


def test_the_worker_writes_no_data_directory_where_it_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    app = create_app(
        settings, RedisStore(redis.Redis(), settings.topic_prefix), WorkerMetrics()
    ).app
    asyncio.run(app.on_first_start())  # (Faust's own makes <group>-data/v1/tables)
    assert list(tmp_path.iterdir()) == []


def test_the_live_gauges_keep_to_the_event_time_guards_limit():
    for max_ahead_s in (None, 3600):
        settings = Settings(max_event_ahead_s=max_ahead_s)
        tracker = create_app(
            settings, RedisStore(redis.Redis(), settings.topic_prefix), WorkerMetrics()
        ).assignment
        assert tracker.yoy.max_ahead_s == tracker.drops.max_ahead_s == max_ahead_s
