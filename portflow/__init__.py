"""portflow: a streaming monitor for port and trade throughput.

The code is split one way (import-linter keeps it: pyproject.toml): ``portflow.domain`` is the
pure core (events, periods, aggregates, reports, detection) and knows nothing of Kafka or Redis;
``portflow.adapters`` wraps the outside world around it; ``portflow.services`` are the use cases
over both; ``streams`` (the Faust worker) and ``producers`` (replay and generators) are built on
portflow; ``entrypoints`` (the CLI, the embedded stack, the terminal view) sits on top.
"""

__version__ = "0.1.0"
