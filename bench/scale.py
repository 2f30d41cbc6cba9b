"""How portflow scales: one worker against two, and Redis memory against the data it holds.

    python -m bench.scale [--only workers|memory] [--events N] [--scale X] [--json]

1. ``memory``   replays the xinjiang-2024h1 scenario (``--scale``, default 1.0: ~643k events)
                into a fresh tansu + redis-server with one worker, then counts the keys and hash
                fields by kind, reads ``MEMORY USAGE`` and ``OBJECT ENCODING`` of every aggregate
                hash and of sampled dedupe keys, and measures what each kind really costs by
                deleting it and reading ``INFO memory`` before and after. From these constants it
                projects the memory of other data sizes (see ``project``).
2. ``workers``  publishes N shipment events in batch records (``--events``, default 200,000) to
                a topic, times one worker on it, then two workers started together on a fresh
                copy (``bench.pipeline.worker.measure_worker``), with the CPU of every process
                in between.

The memory measurement runs first: its figures do not depend on timing. Both start their own
servers on free 127.0.0.1 ports and stop them by PID. Progress goes to stderr; stdout gets one
JSON line (``--json``) or a short table. See bench/README.md, "Scale: workers and Redis memory".
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import redis
from redis.client import Pipeline

from bench.harness import (
    Bench,
    Machine,
    add_output_arguments,
    add_seed_argument,
    emit,
    generate_events,
    parser_of,
    progress,
    publish,
    run_in_workdir,
    write_jsonl,
)
from bench.pipeline.worker import WorkerRun, measure_worker
from entrypoints.embedded import wait_for_assignment
from portflow.adapters.kafka import ensure_topics
from portflow.adapters.redis import RedisStore
from portflow.domain.aggregates import CELL_LAYOUT, STORED_MEASURES
from portflow.services.progress import wait_until_applied
from producers.replay import DEFAULT_BATCH
from producers.scenarios.xinjiang import generate_xinjiang

SEEN_SAMPLES = 2000
CHUNK = 1000
WEEK_S = 7 * 86400

# The national-scale year of the projection (assumptions, stated in bench/README.md).
NATIONAL = {
    "ports": 100,
    "modes": 5,
    "directions": 2,
    "partners": 200,
    "trade_modes": 5,
    "zone_sets": 4,
    "shipments_per_day": 300_000,
    "days": 365,
}


# ------------------------------------------------------------------------------ 1. Redis memory
def single_server(store: RedisStore) -> redis.Redis:
    """The store's client: the benchmark starts one redis-server, never a cluster."""
    client = store.client
    if not isinstance(client, redis.Redis):
        raise TypeError(f"bench.scale measures one redis-server, not {type(client).__name__}")
    return client


def used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def replay_scenario(bench: Bench, scale: float, seed: int) -> tuple[RedisStore, int, int]:
    """The xinjiang-2024h1 scenario applied by one worker, as ``portflow demo`` does it; returns
    the store, the events and the empty server's ``used_memory`` (the baseline).

    The worker is stopped before returning, so nothing changes Redis while it is measured.
    """
    settings, env = bench.namespace("x")
    store = RedisStore.from_url(settings.redis_url, settings.topic_prefix)
    empty = used_memory(single_server(store))
    path = bench.workdir / "xinjiang-2024h1.jsonl"
    progress(f"generating the xinjiang-2024h1 scenario (scale {scale:g})")
    events = generate_xinjiang(str(path), seed=seed, scale=scale)
    ensure_topics(settings)
    worker = bench.start_worker(env, "worker-memory")
    try:
        wait_for_assignment(settings, worker, timeout_s=90)
        progress(f"replaying {events:,} events (Replayer, batch {DEFAULT_BATCH})")
        published = publish(settings, path, batch=DEFAULT_BATCH)
        waited = wait_until_applied(store, published.offsets, 600 + events / 500, progress=False)
        progress(
            f"applied {published.events:,} events {published.seconds + waited:.1f}s after "
            "the replay began"
        )
    finally:
        bench.stop(worker)
    return store, events, empty


def kind_of(store: RedisStore, key: str) -> str:
    """``dedupe:<type>``, ``agg:<type>:day|month`` or ``other`` (marks, meta, workers…)."""
    parts = key[len(store.root) + 1 :].split(":")
    if parts[0] == "dedupe":
        return f"dedupe:{parts[1]}"
    if parts[0] == "agg":
        return f"agg:{parts[1]}:{'day' if len(parts[3]) == 10 else 'month'}"
    return "other"


def keys_by_kind(store: RedisStore) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for key in store.client.scan_iter(match=f"{store.root}:*", count=10_000):
        key = key.decode()
        found[kind_of(store, key)].append(key)
    return found


def pipelined(
    client: redis.Redis, keys: list[str], command: Callable[[Pipeline, str], object]
) -> list[Any]:
    """One reply per key, ``CHUNK`` commands per round trip."""
    replies: list[Any] = []
    for i in range(0, len(keys), CHUNK):
        pipe = client.pipeline(transaction=False)
        for key in keys[i : i + CHUNK]:
            command(pipe, key)
        replies += pipe.execute()
    return replies


def describe_hashes(client: redis.Redis, keys: list[str]) -> list[dict[str, Any]]:
    """Per aggregate hash: fields, encoding, ``MEMORY USAGE`` (all fields counted) and the sum
    of its values when it is a count hash (= events of that granule)."""
    fields = pipelined(client, keys, lambda p, k: p.hlen(k))
    encodings = pipelined(client, keys, lambda p, k: p.object("encoding", k))
    usage = pipelined(client, keys, lambda p, k: p.memory_usage(k, samples=0))
    return [
        {"key": k, "fields": f, "encoding": e.decode() if isinstance(e, bytes) else e, "bytes": u}
        for k, f, e, u in zip(keys, fields, encodings, usage, strict=True)
    ]


def describe_seen(client: redis.Redis, keys: list[str]) -> dict[str, Any]:
    """Dedupe buckets: how many, the ids they hold, the ids' mean length (of a sample), their
    ``MEMORY USAGE`` and encodings, and the TTL of one."""
    sizes = pipelined(client, keys, lambda p, k: p.scard(k))
    usage = pipelined(client, keys, lambda p, k: p.memory_usage(k, samples=0))
    encodings = pipelined(client, keys, lambda p, k: p.object("encoding", k))
    samples = pipelined(client, keys, lambda p, k: p.srandmember(k, SEEN_SAMPLES))
    ids: list[bytes] = [member for sample in samples for member in sample]
    return {
        "buckets": len(keys),
        "ids": sum(sizes),
        "mean_id_chars": round(statistics.fmean(map(len, ids)), 1) if ids else None,
        "memory_usage_bytes": sum(usage),
        "encodings": dict(Counter(e.decode() if isinstance(e, bytes) else e for e in encodings)),
        "ttl_s_of_a_bucket": client.ttl(keys[0]) if keys else None,
    }


def freed_by_deleting(client: redis.Redis, keys: list[str]) -> int:
    """``used_memory`` released by deleting ``keys``: their full cost, including the dictionary
    entries and the share of the key space's (and the expiry table's) bucket arrays that
    ``MEMORY USAGE`` leaves out. Waits for serverCron to shrink the emptied tables."""
    before = used_memory(client)
    for i in range(0, len(keys), CHUNK):
        client.delete(*keys[i : i + CHUNK])
    time.sleep(2)
    return before - used_memory(client)


def per_field_fit(hashes: list[dict[str, Any]]) -> dict[str, Any]:
    """``MEMORY USAGE`` ≈ per-hash + fields × per-field, fitted per encoding (least squares)."""
    fits = {}
    for encoding in sorted({h["encoding"] for h in hashes}):
        group = [h for h in hashes if h["encoding"] == encoding]
        fields, sizes = [h["fields"] for h in group], [h["bytes"] for h in group]
        fit = {
            "hashes": len(group),
            "fields": sum(fields),
            "mean_bytes_per_field": round(sum(sizes) / sum(fields), 1),
            "fields_min_max": [min(fields), max(fields)],
        }
        if len(set(fields)) > 1:
            slope, intercept = statistics.linear_regression(fields, sizes)
            fit.update(fit_bytes_per_field=round(slope, 1), fit_bytes_per_hash=round(intercept))
        fits[encoding] = fit
    return fits


def cells_per_granule(client: redis.Redis, hashes: list[dict[str, Any]]) -> dict[str, Any]:
    """Per type and granule kind, from the count hashes (every event adds 1 to its cell): the
    granules, cells and events per granule, and the cells a uniform spread would fill."""
    out = {}
    for event_type in CELL_LAYOUT:
        for kind in ("day", "month"):
            group = [
                h
                for h in hashes
                if h["key"].split(":")[-2] == "count"
                and h["key"].split(":")[-3] == event_type
                and len(h["key"].rsplit(":", 1)[1]) == (10 if kind == "day" else 7)
            ]
            if not group:
                continue
            keys = [h["key"] for h in group]
            events = [
                sum(int(v) for v in values)
                for values in pipelined(client, keys, lambda p, k: p.hvals(k))
            ]
            cells = [h["fields"] for h in group]
            bound, longest = dimension_bound(client, keys)
            uniform = [bound * (1 - math.exp(-e / bound)) for e in events]
            out[f"{event_type}:{kind}"] = {
                "granules": len(group),
                "events_mean": round(statistics.fmean(events)),
                "cells_mean": round(statistics.fmean(cells), 1),
                "cells_max": max(cells),
                "dimension_bound": bound,
                "longest_cell_chars": longest,
                "cells_if_uniform_mean": round(statistics.fmean(uniform), 1),
                "skew_factor": round(sum(cells) / sum(uniform), 3),
            }
    return out


def dimension_bound(client: redis.Redis, keys: list[str]) -> tuple[int, int]:
    """The product of the distinct values of each dimension over the cells of ``keys`` (the
    most cells a granule could hold with the ports, partners, modes… this data has), and the
    longest cell: one longer than ``hash-max-listpack-value`` makes its hash a hashtable."""
    distinct: dict[int, set[str]] = defaultdict(set)
    longest = 0
    for fields in pipelined(client, keys, lambda p, k: p.hkeys(k)):
        for cell in fields:
            longest = max(longest, len(cell))
            for i, value in enumerate(cell.decode().split("|")):
                distinct[i].add(value)
    return math.prod(len(values) for values in distinct.values()), longest


def measure_memory(bench: Bench, scale: float, seed: int) -> dict[str, Any]:
    bench.start_servers()
    store, events, empty = replay_scenario(bench, scale, seed)
    client = single_server(store)
    full = client.info("memory")
    dbsize = client.dbsize()
    keyspace = client.info("keyspace").get("db0", {})
    limits = {
        name: int(value or 0) for name, value in client.config_get("hash-max-listpack-*").items()
    }
    kinds = keys_by_kind(store)
    progress("census: " + ", ".join(f"{k} {len(v):,}" for k, v in sorted(kinds.items())))
    agg_keys = [k for kind, keys in kinds.items() if kind.startswith("agg:") for k in keys]
    seen_keys = [k for kind, keys in kinds.items() if kind.startswith("dedupe:") for k in keys]
    hashes = describe_hashes(client, agg_keys)
    by_kind: dict[str, dict[str, Any]] = {
        kind: {"keys": len(keys)} for kind, keys in sorted(kinds.items())
    }
    for kind, stats in by_kind.items():
        group = [h for h in hashes if kind_of(store, h["key"]) == kind]
        if group:
            stats.update(
                fields=sum(h["fields"] for h in group),
                memory_usage_bytes=sum(h["bytes"] for h in group),
                encodings=dict(Counter(h["encoding"] for h in group)),
            )
    seen = describe_seen(client, seen_keys)
    cells = cells_per_granule(client, hashes)
    fits = per_field_fit(hashes)
    seen_freed = freed_by_deleting(client, seen_keys)
    agg_freed = freed_by_deleting(client, agg_keys)
    used = int(full["used_memory"]) - empty
    seen["freed_bytes_per_id"] = round(seen_freed / seen["ids"], 1)
    fields = sum(h["fields"] for h in hashes)
    result = {
        "scenario": "xinjiang-2024h1",
        "scale": scale,
        "events": events,
        "dbsize": dbsize,
        "keyspace": keyspace,
        "hash_max_listpack": limits,
        "used_memory_empty": empty,
        "used_memory": int(full["used_memory"]),
        "used_memory_growth": used,
        "used_memory_dataset": int(full["used_memory_dataset"]),
        "used_memory_rss": int(full["used_memory_rss"]),
        "seen_bytes_freed": seen_freed,
        "agg_bytes_freed": agg_freed,
        "agg_fields": fields,
        "agg_freed_bytes_per_field": round(agg_freed / fields, 1),
        "rest_bytes": used - seen_freed - agg_freed,
        "by_kind": by_kind,
        "seen": seen,
        "hash_fits": fits,
        "cells_per_granule": cells,
    }
    result["projection"] = project(result)
    return result


def project(measured: dict[str, Any]) -> dict[str, Any]:
    """Memory for other sizes from the measured constants (the formula of bench/README.md):

        bytes ≈ S × b_seen + Σ over aggregate hashes of fields × b_field

    S = event ids applied within the dedupe window (wall time, not event time); a granule's
    fields = its cells × the measures of its type. Both constants are what deleting the keys
    freed, per key and per field (per-hash overhead included; nearly all fields are in
    hashtable-encoded hashes at this size).
    """
    b_seen = measured["seen"]["freed_bytes_per_id"]
    b_field = measured["agg_freed_bytes_per_field"]
    skews: dict[str, float] = {
        kind: measured["cells_per_granule"][f"shipment:{kind}"]["skew_factor"]
        for kind in ("day", "month")
    }
    n = NATIONAL
    bound = (
        n["ports"]
        * n["modes"]
        * n["directions"]
        * n["partners"]
        * n["trade_modes"]
        * n["zone_sets"]
    )
    measures = len(STORED_MEASURES["shipment"])

    def cells(events: float, kind: str) -> float:  # a granule's cells, skewed like Xinjiang's
        return skews[kind] * bound * (1 - math.exp(-events / bound))

    per_day = n["shipments_per_day"]
    day_cells = cells(per_day, "day")
    month_cells = cells(per_day * n["days"] / 12, "month")
    agg = (n["days"] * day_cells + 12 * month_cells) * measures * b_field
    return {
        "b_seen": b_seen,
        "b_field": b_field,
        "national": {
            **n,
            "dimension_bound": bound,
            "skew_factors": skews,
            "cells_per_day": round(day_cells),
            "cells_per_month": round(month_cells),
            "agg_bytes_per_year": round(agg),
            "seen_bytes_7d_live": round(per_day * 7 * b_seen),
            "seen_bytes_after_year_rebuild": round(per_day * n["days"] * b_seen),
        },
        "seen_bytes_7d_by_rate": {
            str(rate): round(rate * WEEK_S * b_seen) for rate in (10, 100, 1000, 10_000)
        },
    }


# -------------------------------------------------------------------------------- 2. workers
def measure_workers(bench: Bench, events: int, seed: int) -> dict[str, Any]:
    """The same N shipment events (batch records) applied by one worker, then by two."""
    bench.start_servers()
    progress(f"generating {events:,} shipment events")
    path = bench.workdir / "events.jsonl"
    write_jsonl(path, generate_events(events, seed=seed, id_prefix="ev"))
    runs = {}
    for workers in (1, 2):
        settings, env = bench.namespace(f"w{workers}")
        ensure_topics(settings)
        published = publish(settings, path, batch=DEFAULT_BATCH)
        progress(
            f"published {published.events:,} events in {published.records} records to "
            f"{settings.topic('shipment')}"
        )
        run = measure_worker(
            bench, settings, env, published.offsets, events, f"workers-{workers}", workers=workers
        )
        runs[workers] = summarise_run(run, events)
    return {
        "events": events,
        "one": runs[1],
        "two": runs[2],
        "ratio": round(runs[2]["events_per_s"] / runs[1]["events_per_s"], 3),
    }


def summarise_run(run: WorkerRun, events: int) -> dict[str, Any]:
    """Rate, and CPU seconds and utilisation (CPU ÷ wall) of every process over the run."""
    wall = run.wall_s
    ours = sum(run.worker_cpu_s_each) + run.redis_cpu_s + run.broker_cpu_s + run.bench_cpu_s
    cpu = {
        "workers": [round(c, 2) for c in run.worker_cpu_s_each],
        "redis": round(run.redis_cpu_s, 2),
        "tansu": round(run.broker_cpu_s, 2),
        "bench": round(run.bench_cpu_s, 2),
        "machine": round(run.machine_busy_cpu_s, 2),
    }
    return {
        "events_per_s": round(run.events_per_s),
        "seconds": round(run.seconds, 2),
        "wall_s": round(wall, 2),
        "partitions": run.partitions_each,
        "applied_at_assignment": run.applied_at_assignment,
        "cpu_s": cpu,
        "utilisation": {
            "workers": [round(c / wall, 2) for c in run.worker_cpu_s_each],
            "redis": round(run.redis_cpu_s / wall, 2),
            "tansu": round(run.broker_cpu_s / wall, 2),
            "bench": round(run.bench_cpu_s / wall, 2),
            "ours_of_2_cores": round(ours / wall / 2, 2),
            "others": round((run.machine_busy_cpu_s - ours) / wall, 2),
            "machine_of_2_cores": round(run.machine_busy_cpu_s / wall / 2, 2),
        },
        "lua_us_per_event": round(1e6 * run.lua_s / events, 1),
        "peak_rss_mb": [round(p) for p in run.peak_rss_mb_each],
    }


# ----------------------------------------------------------------------------------------- main
def table(result: dict[str, Any]) -> str:
    lines = []
    if "memory" in result:
        m = result["memory"]
        lines.append(
            f"memory: {m['events']:,} events, DBSIZE {m['dbsize']:,}, used_memory "
            f"+{m['used_memory_growth'] / 1e6:.1f} MB (dedupe ids "
            f"{m['seen_bytes_freed'] / 1e6:.1f} MB = {m['seen']['freed_bytes_per_id']}"
            f" B/id; aggregates {m['agg_bytes_freed'] / 1e6:.1f} MB = "
            f"{m['agg_freed_bytes_per_field']} B/field)"
        )
        for kind, stats in m["by_kind"].items():
            lines.append(
                f"  {kind:<20} {stats['keys']:>9,} keys "
                f"{stats.get('fields', 0):>9,} fields  {stats.get('encodings', '')}"
            )
        for encoding, fit in m["hash_fits"].items():
            lines.append(f"  {encoding:<20} {fit}")
        lines.append(f"  projection: {json.dumps(m['projection'])}")
    if "workers" in result:
        w = result["workers"]
        for label in ("one", "two"):
            run = w[label]
            lines.append(
                f"{label} worker(s): {run['events_per_s']:,} events/s, CPU s "
                f"{run['cpu_s']}, utilisation {run['utilisation']}"
            )
        lines.append(f"two ÷ one: {w['ratio']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = parser_of("bench.scale", __doc__)
    parser.add_argument("--only", choices=("workers", "memory"), help="one measurement only")
    parser.add_argument(
        "--events",
        type=int,
        default=200_000,
        help="shipment events of the workers runs (default 200000)",
    )
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="xinjiang-2024h1 scale of the memory run (default 1.0, ~643k events)",
    )
    add_seed_argument(parser)
    add_output_arguments(parser)
    args = parser.parse_args(argv)
    if args.events < 1000:
        parser.error("--events must be at least 1000")

    def measure(workdir: Path) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for name in ("memory", "workers"):  # memory first: its figures do not depend on timing
            if args.only in (None, name):
                (workdir / name).mkdir()
                bench = Bench(workdir / name)
                try:
                    result[name] = (
                        measure_memory(bench, args.scale, args.seed)
                        if name == "memory"
                        else measure_workers(bench, args.events, args.seed)
                    )
                finally:
                    bench.close()
        return result

    status, result = run_in_workdir("portflow-scale-", args.keep, measure)
    if result is None:
        return status
    result.update(asdict(Machine.now()))
    emit(result, args.json, lambda: table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
