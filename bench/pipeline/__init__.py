"""End-to-end throughput and latency benchmark of the portflow pipeline.

    python -m bench.pipeline [--events N] [--broker tansu|apache-kafka] [--json] [--profile]
                             [--keep]

Starts its own broker (tansu by default, or a one-node Apache Kafka) and redis-server on free
127.0.0.1 ports (stopped by PID at the end, also on errors), generates N deterministic shipment
events and measures, on those same events:

1. ``raw_consume_per_s``     a group-less aiokafka consumer reading and ``json.loads``-ing N
                             single-event records (the client's ceiling);
2. ``faust_noop_per_s``      a Faust agent that only counts the same records (first → last record),
                             on asyncio's event loop; ``faust_noop_uvloop_per_s`` the same on
                             uvloop, which the worker uses;
3. ``worker_single_per_s``   the real ``portflow worker`` on those single-event records, from the
                             first move of the marks in Redis to their reaching the
                             published end offsets;
4. ``worker_batched_per_s``  the same on batch records (replay's default batch of 500);
5. ``p50/p99_latency_ms``    producer acknowledgement → observed in the Redis marks, at a steady
                             5,000 events/s of single-event records for ~10 s;
6. ``worker_peak_rss_mb``    VmHWM of the worker process of the batched run;
7. ``replay_events_per_s``   the publish rate Replayer reported for the batched publish;

and, to explain them: the same latency with paced batch records (as ``replay --rate`` sends), a
raw consumer's fetch latency beside the worker, worker and Redis CPU per event, the time Redis
spends in the apply script, and the worker's batches (from its /metrics).

Progress goes to stderr; stdout gets one JSON line (``--json``) or a table. ``--profile`` adds a
py-spy profile of the worker on a second batched run (if py-spy is installed) and a cProfile of
``BatchProcessor.process`` against the running Redis, printed to stderr. See bench/README.md.

Modules, by what they measure: ``ceilings`` (1, 2), ``worker`` (3, 4, 6), ``latency`` (5),
``profiling`` (``--profile``), ``report`` (the figures, the table, the goals).
"""
