"""Fault isolation: no record can stop the processor.

A failure is either the infrastructure's (``is_transient``: the caller retries the batch) or a
record's. For the latter, ``find_failing_record`` applies the batch up to the record that fails
and proves that record fails alone; the processor then quarantines it, so the next try
dead-letters it as ``internal_error`` and applies the rest.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

import redis

from portflow.domain.events import Rejection
from portflow.services.processing.records import SourceRecord

log = logging.getLogger(__name__)

# A record is quarantined only after failing this many times on its own (then it is not chance).
FAULT_CONFIRMATIONS = 3

# Failures of the store and the network: retried, never blamed on a record. A caller whose
# dead-letter sink fails in ways of its own adds those (``streams.processor``).
STORE_ERRORS = (redis.RedisError, OSError, TimeoutError, asyncio.TimeoutError)

# (partition, offset) -> the rejection of a record that failed on its own
Quarantine = dict[tuple[str, int], Rejection]


def is_store_failure(exc: BaseException) -> bool:
    """Whether a failure is the store's or the network's: retry it."""
    return isinstance(exc, STORE_ERRORS)


def forget_passed(quarantine: Quarantine, marks: Mapping[str, tuple[int, int]]) -> None:
    """A quarantined record a step passed (``marks``: expected, new) is on the DLQ now."""
    for key in [k for k in quarantine if k[0] in marks and k[1] <= marks[k[0]][1]]:
        del quarantine[key]


Attempt = Callable[[list[SourceRecord]], Awaitable[Exception | None]]


async def find_failing_record(
    records: list[SourceRecord], failure: BaseException, attempt: Attempt, retry_delay_s: float
) -> tuple[SourceRecord, BaseException] | None:
    """``records`` failed with ``failure``: apply the longest prefix that succeeds (a bisection
    by ``attempt``, which processes records and returns its failure; the marks make running
    again safe), then try the next record alone until it has failed ``FAULT_CONFIRMATIONS``
    times. Returns that record and its last failure, or None if it passed alone."""
    good, bad = 0, len(records)  # records[:good] are applied; records[:bad] fail
    while bad - good > 1:
        middle = (good + bad) // 2
        fault = await attempt(records[:middle])
        if fault is None:
            good = middle
        else:
            bad, failure = middle, fault
    suspect = records[good]
    for confirmation in range(FAULT_CONFIRMATIONS):
        fault = await attempt([suspect])
        if fault is None:
            return None
        failure = fault
        await asyncio.sleep(retry_delay_s * confirmation)
    log.error(
        "%s@%d fails on its own (%s: %s): dead-lettered as internal_error",
        suspect.partition_name,
        suspect.offset,
        type(failure).__name__,
        failure,
    )
    return suspect, failure
