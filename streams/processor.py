"""The worker's batch processor: ``portflow.services.processing`` (where its terms are defined)
on the worker's Redis store, told which failures are the infrastructure's.

The processor itself needs no Faust; the worker publishes its dead letters through Faust's
producer to Kafka, so Kafka's and Faust's failures are the infrastructure's too (retried, never
blamed on a record). That classification, which needs their error types, is made here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import aiokafka.errors
import kafka.errors
from faust.exceptions import ProducerSendError

from portflow.adapters.redis import RedisStore
from portflow.adapters.redis.store import AsyncRedisStore
from portflow.config import Settings
from portflow.services import processing
from portflow.services.processing import DeadLetterSink
from portflow.services.processing.faults import STORE_ERRORS

__all__ = ["INFRASTRUCTURE_ERRORS", "BatchProcessor", "is_transient"]

P = ParamSpec("P")
T = TypeVar("T")

# Failures of the services the worker uses (Redis, Kafka, Faust's producer, the network).
INFRASTRUCTURE_ERRORS = (
    *STORE_ERRORS,
    kafka.errors.KafkaError,
    aiokafka.errors.KafkaError,
    ProducerSendError,
)


def is_transient(exc: BaseException) -> bool:
    """Whether a failure is the infrastructure's (Redis, Kafka, the network): retry it."""
    return isinstance(exc, INFRASTRUCTURE_ERRORS)


class BatchProcessor(processing.BatchProcessor):
    """The processor on a ``RedisStore``, with the worker's ``is_transient``."""

    def __init__(
        self, settings: Settings, store: RedisStore, dead_letters: DeadLetterSink, **options: Any
    ) -> None:
        """``options``: those of ``processing.BatchProcessor`` but ``is_transient``."""
        super().__init__(
            settings, AsyncRedisStore(store), dead_letters, is_transient=is_transient, **options
        )

    async def run_with_retries(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """A blocking call of the Redis store, in a thread off the event loop, again while
        Redis is unreachable."""
        return await self.retried(lambda: asyncio.to_thread(fn, *args, **kwargs))
