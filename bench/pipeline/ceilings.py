"""The ceilings the worker is measured against, on the same single-event records: a group-less
aiokafka consumer that only reads and ``json.loads`` them (the Kafka client's ceiling), and a
Faust agent that only counts them (the framework's), on asyncio's loop or on uvloop."""

from __future__ import annotations

import asyncio
import json
import time

from bench.harness import (
    PARTITIONS,
    SESSION_TIMEOUT_S,
    Bench,
    Offsets,
    progress,
    run_stamped,
)

FAUST_NOOP = """
import os, sys, time
import faust

if sys.argv[6] == "uvloop":  # the event loop the portflow worker runs on
    import asyncio, uvloop
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())

bootstrap, topic_name, app_id, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
# Faust redirects sys.stdout into its log: write the time stamps to our own file descriptor.
stamps = os.open(sys.argv[5], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)


def stamp(*words):
    os.write(stamps, (" ".join(str(w) for w in words) + "\\n").encode())


app = faust.App(
    app_id, broker=f"kafka://{bootstrap}", store="memory://", web_enabled=False,
    topic_partitions=%(partitions)d, topic_allow_declare=False,
    consumer_auto_offset_reset="earliest",
    broker_session_timeout=%(session)d, broker_heartbeat_interval=2, broker_rebalance_timeout=12,
)
topic = app.topic(topic_name, key_type=bytes, value_type=bytes,
                  key_serializer="raw", value_serializer="raw")


@app.agent(topic)
async def count(stream):
    seen = 0
    async for _value in stream:
        seen += 1
        if seen == 1:
            stamp("FIRST", repr(time.perf_counter()))
        if seen >= n:
            stamp("LAST", repr(time.perf_counter()), seen)
            os._exit(0)


if __name__ == "__main__":
    stamp("STARTING", repr(time.perf_counter()))
    faust.Worker(app, loglevel="WARNING", quiet=True).execute_from_commandline()
"""


def measure_raw_consume(bench: Bench, offsets: Offsets, n: int) -> float:
    """Records/s of a group-less aiokafka consumer reading and decoding the published records."""
    progress("raw aiokafka consume + json.loads ...")
    rate, seconds = asyncio.run(_raw_consume(bench.bootstrap, offsets, n, 120 + n / 5000))
    progress(f"raw consume: {n:,} records in {seconds:.2f}s = {rate:,.0f}/s")
    return rate


async def _raw_consume(
    bootstrap: str, offsets: Offsets, n: int, timeout_s: float
) -> tuple[float, float]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        topic = next(iter(offsets))[0]
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, offsets.get((topic, tp.partition), (0, 0))[0])
        loads = json.loads
        count = 0
        started = time.perf_counter()
        while count < n:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for messages in batches.values():
                for message in messages:
                    loads(message.value)
                count += len(messages)
            if time.perf_counter() - started > timeout_s:
                raise RuntimeError(f"raw consumer read only {count} of {n} records")
        seconds = time.perf_counter() - started
        return count / seconds, seconds
    finally:
        await consumer.stop()


def measure_faust_noop(bench: Bench, topic: str, n: int, loop: str = "asyncio") -> float:
    """Records/s of a do-nothing Faust agent on ``topic``, on asyncio's default event loop or on
    uvloop (``loop="uvloop"``, which the portflow worker uses)."""
    progress(f"faust no-op agent on {loop} (subprocess) ...")
    script = bench.workdir / "faust_noop.py"
    script.write_text(FAUST_NOOP % {"partitions": PARTITIONS, "session": SESSION_TIMEOUT_S})
    stamps = run_stamped(
        bench,
        [str(script), bench.bootstrap, topic, f"bench-noop-{bench.run_id}-{loop}", str(n)],
        "faust-noop",
        [loop],
        120 + n / 2000,
        f"the faust no-op agent counting {n:,} records",
    )
    seconds = stamps["LAST"] - stamps["FIRST"]
    rate = (n - 1) / seconds
    progress(
        f"faust no-op on {loop}: start-up + join {stamps['FIRST'] - stamps['STARTING']:.1f}s, then "
        f"{n:,} records in {seconds:.2f}s = {rate:,.0f}/s"
    )
    return rate
