"""Finding the record that fails on its own, and forgetting a quarantined record once passed."""

import asyncio

from portflow.domain.events import Rejection
from portflow.services.processing.faults import (
    FAULT_CONFIRMATIONS,
    find_failing_record,
    forget_passed,
    is_store_failure,
)
from portflow.services.processing.records import SourceRecord

RECORDS = [SourceRecord("t", 0, offset, None, b"{}") for offset in range(10)]


def attempts_failing_with(bad: set[int], tried: list[list[int]]):
    async def attempt(records: list[SourceRecord]) -> Exception | None:
        tried.append([r.offset for r in records])
        return ValueError("bad") if bad & {r.offset for r in records} else None

    return attempt


def test_the_first_record_that_fails_alone_is_found_and_confirmed():
    tried: list[list[int]] = []
    found = asyncio.run(
        find_failing_record(RECORDS, ValueError(), attempts_failing_with({6, 8}, tried), 0)
    )
    assert found is not None
    assert found[0].offset == 6
    assert tried[-FAULT_CONFIRMATIONS:] == [[6]] * FAULT_CONFIRMATIONS


def test_a_record_that_passes_alone_is_not_blamed():
    tried: list[list[int]] = []
    found = asyncio.run(
        find_failing_record(RECORDS, ValueError(), attempts_failing_with(set(), tried), 0)
    )
    assert found is None
    assert tried[-1] == [9]  # every prefix passed: the last record was tried alone, and passed


def test_a_quarantined_record_is_forgotten_once_a_step_passed_it():
    rejection = Rejection("fails alone", "internal_error", b"{}")
    quarantine = {("t:0", 3): rejection, ("t:0", 9): rejection, ("t:1", 0): rejection}
    forget_passed(quarantine, {"t:0": (-1, 5)})
    assert set(quarantine) == {("t:0", 9), ("t:1", 0)}


def test_the_store_and_the_network_fail_transiently_a_bug_does_not():
    import redis

    assert is_store_failure(redis.ConnectionError())
    assert is_store_failure(ConnectionResetError())
    assert not is_store_failure(ZeroDivisionError())
