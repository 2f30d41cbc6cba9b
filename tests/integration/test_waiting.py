"""``--wait``'s barrier against a real redis-server: it rides out Redis restarting under it (the
workers re-read what Redis lost) and times out saying why when Redis stays away."""

import threading
import time

import pytest

from entrypoints.embedded import start_redis
from entrypoints.processes import free_port
from portflow.adapters.redis import RedisStore
from portflow.services.progress import NotApplied, wait_until_applied

PARTITION = "t.shipments:0"


@pytest.fixture
def volatile_redis(tmp_path):
    port = free_port()
    started = []

    def start():
        started.append(start_redis(port, tmp_path / "data", tmp_path / "logs", name="volatile"))
        return started[-1]

    yield port, start
    for server in started:
        server.stop()


def test_waiting_rides_out_a_redis_restart(volatile_redis):
    port, start = volatile_redis
    server = start()
    store = RedisStore.from_url(f"redis://127.0.0.1:{port}/0", "t.")
    store.client.hset(store.marks_key, PARTITION, 3)
    waited = []
    waiting = threading.Thread(
        target=lambda: waited.append(
            wait_until_applied(store, {("t.shipments", 0): (0, 9)}, timeout_s=30, progress=False)
        )
    )
    waiting.start()
    time.sleep(0.5)
    server.kill()
    time.sleep(1.0)  # the waiting side meets a refused connection meanwhile
    start()  # (from this thread: a server dies with the thread that started it)
    store.client.hset(store.marks_key, PARTITION, 9)  # the workers re-read and catch up
    waiting.join(30)
    assert waited
    assert 1.5 < waited[0] < 30


def test_waiting_on_a_redis_that_stays_away_times_out_naming_it(volatile_redis):
    port, start = volatile_redis
    server = start()
    store = RedisStore.from_url(f"redis://127.0.0.1:{port}/0", "t.")
    store.client.ping()
    server.kill()
    with pytest.raises(NotApplied, match="Redis, where the workers' progress is, cannot be read"):
        wait_until_applied(store, {("t.shipments", 0): (0, 9)}, timeout_s=1.5, progress=False)
