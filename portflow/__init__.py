"""portflow: a streaming monitor for port and trade throughput.

The package is split one way: ``portflow.domain`` is the pure core (events, periods, aggregates,
reports) and knows nothing of Kafka or Redis; ``portflow.adapters`` wraps the outside world around
it; ``streams`` (the Faust worker) and ``producers`` (replay and generators) are built on both;
``portflow.cli`` is the entry point.
"""

__version__ = "0.1.0"
