"""The marks a batch's first step expects, given the batch before it."""

import asyncio

from portflow.services.processing.handoff import Handoff, expected_marks
from portflow.services.processing.marks import PartitionMarks


def held(marks: dict[str, int]) -> PartitionMarks:
    held = PartitionMarks()
    held.read(marks)
    return held


def sent_batch(leaves: dict[str, int], moves: int = 0) -> Handoff:
    batch = Handoff()
    batch.all_sent(leaves, moves)
    return batch


def test_without_a_batch_before_the_marks_held_are_expected():
    assert asyncio.run(expected_marks(Handoff(), held({"t:0": 4}))) == {"t:0": 4}
    assert asyncio.run(expected_marks(None, held({"t:0": 4}))) == {"t:0": 4}


def test_a_batch_sent_behind_one_still_in_redis_expects_what_that_one_leaves():
    handoff = Handoff(sent_batch({"t:0": 9}))
    assert asyncio.run(expected_marks(handoff, held({"t:0": 4, "t:1": 2}))) == {
        "t:0": 9,
        "t:1": 2,
    }


def test_leaves_accumulate_over_batches_not_yet_through():
    first = sent_batch({"t:0": 9})
    second = Handoff(first)
    second.all_sent({"t:1": 5}, 0)
    assert second.leaves == {"t:0": 9, "t:1": 5}


async def expected_once_previous_is_done(previous: Handoff) -> tuple[bool, dict[str, int]]:
    """Whether ``expected_marks`` waited for ``previous`` to be through, and what it expected."""
    task = asyncio.ensure_future(expected_marks(Handoff(previous), held({"t:0": 4})))
    await asyncio.sleep(0.01)
    waited = not task.done()
    previous.done.set()
    return waited, await task


def test_after_a_batch_that_was_redone_the_next_waits_for_it():
    previous = sent_batch({"t:0": 9})
    previous.redone = True
    assert asyncio.run(expected_once_previous_is_done(previous)) == (True, {"t:0": 4})


def test_after_a_move_since_the_batch_before_was_sent_the_next_waits_for_it():
    previous = sent_batch({"t:0": 9}, moves=-1)  # sent before the move ``held`` counts none of
    assert asyncio.run(expected_once_previous_is_done(previous)) == (True, {"t:0": 4})
