"""portflow's benchmarks, each run as a module from the repository's root (see bench/README.md
for what each measures and its current figures):

    python -m bench.pipeline    the pipeline end to end: throughput, latency, memory, CPU
    python -m bench.peers       the worker against the idiomatic Quix Streams app
    python -m bench.core        the worker's pure core, without Kafka, Redis or Faust
    python -m bench.scale       one worker against two, and Redis memory against the data
    python -m bench.api         the HTTP API under load, beside DuckDB and the CLI
    python -m bench.soak        the rate a one-worker stack sustains for minutes, per broker
    python -m bench.detection   false alarms and power of the drop detection (--speed: its time)

``bench.harness`` is what they share (arguments, servers, events, timing, printing).
"""
