"""``portflow worker``: prepare topics and Redis, then run the Faust worker until stopped."""

from __future__ import annotations

import logging

from faust import Worker

from portflow.adapters.kafka import ensure_topics
from portflow.adapters.redis_store import RedisStore
from portflow.config import Settings
from streams.app import create_app


def run_worker(settings: Settings, loglevel: str = "info") -> None:
    logging.basicConfig(level=loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ensure_topics(settings)
    store = RedisStore.from_url(settings.redis_url, settings.topic_prefix)
    store.claim_time_zone(settings.tz_name)
    app = create_app(settings, store)
    Worker(app, loglevel=loglevel, quiet=True).execute_from_commandline()
