"""`portflow simulate` feeds a real stack: its events are valid, live and all applied."""

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from itertools import islice

import pytest

from portflow.adapters.redis import RedisStore
from portflow.config import Settings
from portflow.domain.events import parse_event
from producers.simulate import Simulator

pytestmark = pytest.mark.slow


def test_simulated_events_are_valid_and_varied():
    lines = list(islice(Simulator(seed=3).events(), 3000))
    events = [parse_event(line, json.loads(line)["type"]) for line in lines]
    kinds = {e.type for e in events}
    assert kinds == {"shipment", "train", "customs"}
    assert len({e.port for e in events}) >= 6
    assert len({e.mode for e in events if e.type == "shipment"}) >= 4
    assert any(e.zones for e in events if e.type == "shipment")
    assert len({e.event_id for e in events}) == len(events)
    now = datetime.now(UTC)
    assert all(abs((now - e.ts).total_seconds()) < 120 for e in events)


def test_simulate_feeds_the_stack(stack_env, worker_factory):
    worker_factory()
    done = subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", "simulate", "--rate", "400", "--events", "1500"],
        env=stack_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "published 1,500 events" in done.stderr
    settings = Settings.from_env(stack_env)
    store = RedisStore.from_url(settings.redis_url, settings.topic_prefix)
    today = datetime.now(settings.tz).date()
    days = [(today - timedelta(days=1)).isoformat(), today.isoformat()]  # a run across midnight

    def applied() -> int:
        return sum(
            sum(store.cells(t, "count", days).values()) for t in ("shipment", "train", "customs")
        )

    import time

    deadline = time.monotonic() + 60
    while applied() < 1500:
        assert time.monotonic() < deadline, f"only {applied()} of 1500 simulated events applied"
        time.sleep(0.2)
    assert applied() == 1500
