"""What every half of ``RedisStore`` reads: its client and its key names (the layout:
``portflow.adapters.redis``), declared once; ``RedisStore.__init__`` sets them."""

from __future__ import annotations

import redis
from redis.cluster import RedisCluster
from redis.commands.core import Script


class StoreKeys:
    """The client and key names shared by ``Aggregates``, ``Progress``, ``Redrives`` and
    ``Rates`` (the halves of ``RedisStore``)."""

    client: redis.Redis | RedisCluster
    root: str  # ``pf{<topic prefix>}``: every key starts with it
    marks_key: str
    meta_key: str
    topic_ids_key: str
    lost_key: str
    outcomes_key: str
    redrives_key: str
    rates_key: str
    aggregate_prefix: str
    versions_key: str
    _adopt_topic: Script


def text(value: bytes | str) -> str:
    """A key, field or value as read. Our clients leave replies as bytes; redis-py's types also
    allow for a client that decodes them."""
    return value.decode() if isinstance(value, bytes) else value
