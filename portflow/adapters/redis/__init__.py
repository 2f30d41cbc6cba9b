"""The Redis store: aggregates, per-partition marks (last applied offsets) and the dedupe window.

The key layout is described once, in the README ("Redis layout"): every key starts with
``pf{<topic prefix>}``, a Redis Cluster hash tag, so every key one atomic step touches lives in
one slot. ``store`` holds the store and its atomic ``apply``; ``aggregates`` the reads of the
totals; ``progress`` the marks, epoch, topic ids, lost offsets and live workers; ``redrives``
the re-drive ledger and ``rates`` the USD rates, both kept apart from the state.

Effectively-once: ``apply`` runs one Lua script that checks the expected marks (so a
zombie worker after a rebalance cannot apply twice), checks that no event id was seen before,
and only then writes the increments, the event ids and the new marks together. (When an id was
seen before, the script writes nothing and names it, so the caller can drop that event and try
again.) Redis runs a script atomically, so a crash leaves either all of a batch or none of it.

The dedupe window is kept in buckets rather than one key per id: a set per event type and slice
of Redis time, ``DedupeWindow.BUCKETS`` slices to a window. A step checks its ids against the
window's buckets with one ``SMISMEMBER`` each and adds them to the current bucket with one
``SADD``: in the benchmark this cut Redis' dedupe time per event, and an id takes 64 bytes
instead of the 154 of a key with its own TTL. An id is remembered for the window and at most one
slice more.

Lost state: every step also checks the ``epoch`` token. Redis restarted empty (or ``portflow
rebuild``) has none, so no worker can add to a state that lost its history; each worker sees the
loss and re-reads its partitions from the start (see ``streams.positioning``).
"""

from portflow.adapters.redis.progress import (
    DROPPING,
    LAYOUT,
    LayoutConflict,
    Outcomes,
    TimeZoneConflict,
)
from portflow.adapters.redis.store import (
    ApplyOutcome,
    DedupeWindow,
    RedisStore,
    StateConflict,
    StateLost,
    lua,
)

__all__ = [
    "DROPPING",
    "LAYOUT",
    "ApplyOutcome",
    "DedupeWindow",
    "LayoutConflict",
    "Outcomes",
    "RedisStore",
    "StateConflict",
    "StateLost",
    "TimeZoneConflict",
    "lua",
]
