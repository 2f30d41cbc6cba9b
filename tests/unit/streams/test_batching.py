"""The agents' batches: gathered while the previous one is handled, bounded, in order.

The scenarios run on a virtual clock (``tests/support/virtual_time.py``): the batcher's waits
and the tests' pauses take no wall-clock time and end in the same order on every run. One test
runs on the real clock, for the real wait."""

import asyncio
import time

import pytest

from streams.batching import Batcher
from tests.support.virtual_time import run_in_virtual_time


def run(coro):
    return run_in_virtual_time(asyncio.wait_for(coro, 5))


async def until(handler, condition) -> None:
    """Wait until ``condition()`` holds, looking again each time the handler takes a batch."""
    while not condition():
        handler.handed.clear()
        await handler.handed.wait()


def finished() -> asyncio.Future:
    done = asyncio.get_running_loop().create_future()
    done.set_result(None)
    return done


class Recorder:
    """A ``start`` that records its batches and finishes each itself, once ``release`` is set
    (so the next batch cannot start before)."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.started_at: list[float] = []  # the loop's time each batch started
        self.release = asyncio.Event()
        self.release.set()
        self.started = asyncio.Event()
        self.handed = asyncio.Event()  # set whenever a batch is handed over

    async def __call__(self, batch: list[int]) -> asyncio.Future:
        self.batches.append(batch)
        self.started_at.append(asyncio.get_running_loop().time())
        self.started.set()
        self.handed.set()
        await self.release.wait()
        return finished()


class Overlapping:
    """A ``start`` that returns at once with what finishes the batch: a future per batch, that
    the test resolves."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.finishing: list[asyncio.Future] = []
        self.handed = asyncio.Event()  # set whenever a batch is handed over

    async def __call__(self, batch: list[int]) -> asyncio.Future:
        self.batches.append(batch)
        self.finishing.append(asyncio.get_running_loop().create_future())
        self.handed.set()
        return self.finishing[-1]


async def settle(batcher: Batcher, handler: Recorder, items: int) -> None:
    await until(handler, lambda: sum(map(len, handler.batches)) >= items)
    await batcher.close()


async def handling_first_item(max_items: int) -> tuple[Recorder, Batcher]:
    """A batcher whose handler holds its first batch, ``[0]``, until released."""
    handler = Recorder()
    batcher = Batcher(handler, max_items=max_items, max_wait_s=0.0)
    handler.release.clear()
    await batcher.put(0)
    await handler.started.wait()
    return handler, batcher


def test_items_that_arrive_while_a_batch_is_handled_form_the_next_batch():
    async def scenario():
        handler, batcher = await handling_first_item(max_items=100)
        for i in range(1, 6):
            await batcher.put(i)
        handler.release.set()
        await settle(batcher, handler, 6)
        return handler.batches

    assert run(scenario()) == [[0], [1, 2, 3, 4, 5]]


def test_a_batch_waits_up_to_max_wait_for_more_items():
    async def scenario():
        handler = Recorder()
        batcher = Batcher(handler, max_items=100, max_wait_s=0.05)
        await batcher.put(0)
        await asyncio.sleep(0.01)
        await batcher.put(1)  # within the first item's wait: same batch
        await asyncio.sleep(0.1)
        await batcher.put(2)
        await settle(batcher, handler, 3)
        return handler.batches, handler.started_at

    batches, started_at = run(scenario())
    assert batches == [[0, 1], [2]]
    assert started_at == pytest.approx([0.05, 0.11 + 0.05])  # each a window after its first


def test_on_the_real_clock_a_lone_item_waits_max_wait_then_starts_its_batch():
    async def scenario():
        handler = Recorder()
        batcher = Batcher(handler, max_items=100, max_wait_s=0.05)
        put_at = time.monotonic()
        await batcher.put(0)
        await handler.started.wait()
        waited = time.monotonic() - put_at
        await batcher.close()
        return handler.batches, waited

    batches, waited = asyncio.run(asyncio.wait_for(scenario(), 5))
    assert batches == [[0]]
    assert waited >= 0.05 - 0.001  # (the loop may run a timer up to its resolution early)


def test_a_full_batch_starts_without_waiting_and_put_blocks_beyond_max_items():
    async def scenario():
        handler = Recorder()
        batcher = Batcher(handler, max_items=3, max_wait_s=60.0)
        handler.release.clear()
        for i in range(3):
            await batcher.put(i)  # the third fills the batch: it starts at once
        await handler.started.wait()
        for i in range(3, 5):
            await batcher.put(i)
        blocked = asyncio.ensure_future(batcher.put(5))  # the sixth: 3 wait already
        await asyncio.sleep(0.02)
        assert not blocked.done()
        handler.release.set()
        await blocked
        await settle(batcher, handler, 6)
        return handler.batches

    assert run(scenario()) == [[0, 1, 2], [3, 4, 5]]


async def failing(batch) -> asyncio.Future:
    raise RuntimeError("boom")


async def after_a_failed_batch() -> Batcher:
    """A batcher whose first batch failed."""
    batcher = Batcher(failing, max_items=10, max_wait_s=0.0)
    await batcher.put(1)
    await asyncio.sleep(0.01)
    return batcher


def test_a_failing_handler_fails_the_next_put():
    async def scenario():
        batcher = await after_a_failed_batch()
        await batcher.put(2)

    with pytest.raises(RuntimeError, match="boom"):
        run(scenario())


def test_a_put_waiting_for_room_learns_that_the_handler_failed():
    async def scenario():
        started = asyncio.Event()

        async def failing_later(batch) -> asyncio.Future:
            started.set()
            await asyncio.sleep(0.01)
            raise RuntimeError("boom")

        batcher = Batcher(failing_later, max_items=1, max_wait_s=0.0)
        await batcher.put(1)
        await started.wait()
        await batcher.put(2)  # full: waits for the running batch, which fails

    with pytest.raises(RuntimeError, match="boom"):
        run(scenario())


def test_close_cancels_the_running_batch():
    async def scenario():
        handler = Recorder()
        handler.release.clear()
        batcher = Batcher(handler, max_items=10, max_wait_s=0.0)
        await batcher.put(1)
        await handler.started.wait()
        await batcher.close()
        return handler.batches

    assert run(scenario()) == [[1]]


def test_max_items_must_be_positive():
    with pytest.raises(ValueError, match="max_items must be at least 1"):
        Batcher(Recorder(), max_items=0, max_wait_s=0.0)


def test_close_after_a_failed_batch_does_not_raise_it_again(caplog):
    async def scenario():
        batcher = await after_a_failed_batch()
        await batcher.close()

    run(scenario())
    assert "handling a batch failed" in caplog.text  # said when it happened, not at the next put


def test_a_fetch_put_at_once_stays_in_one_batch_and_blocks_once_max_items_wait():
    async def scenario():
        handler, batcher = await handling_first_item(max_items=3)
        second = asyncio.ensure_future(batcher.put_many([1, 2, 3, 4]))
        await asyncio.sleep(0.01)
        blocked = not second.done()
        handler.release.set()
        await second
        await settle(batcher, handler, 5)
        return blocked, handler.batches

    blocked, batches = run(scenario())
    assert blocked  # four wait, more than max_items: the put waits for the next batch
    assert batches == [[0], [1, 2, 3, 4]]


def test_the_next_batch_starts_while_the_one_before_is_finishing():
    async def scenario():
        start = Overlapping()
        batcher = Batcher(start, max_items=2, max_wait_s=0.0)
        await batcher.put_many([0, 1])
        await until(start, lambda: len(start.batches) == 1)
        await batcher.put_many([2, 3])
        await until(start, lambda: len(start.batches) == 2)
        return start.batches, start.finishing[0].done()

    assert run(scenario()) == ([[0, 1], [2, 3]], False)


def test_a_third_batch_waits_until_the_first_is_finished():
    async def scenario():
        start = Overlapping()
        batcher = Batcher(start, max_items=1, max_wait_s=0.0)
        for item in range(2):
            await batcher.put(item)
            await until(start, lambda batches=item + 1: len(start.batches) == batches)
        third = asyncio.ensure_future(batcher.put(2))
        await asyncio.sleep(0.05)
        before = list(start.batches)
        start.finishing[0].set_result(None)
        await until(start, lambda: len(start.batches) == 3)
        await third
        await batcher.close()
        return before, start.batches

    assert run(scenario()) == ([[0], [1]], [[0], [1], [2]])


async def first_batch_started(max_items: int) -> tuple[Overlapping, Batcher]:
    """A batcher whose first batch, ``[0]``, is started and not finished."""
    start = Overlapping()
    batcher = Batcher(start, max_items=max_items, max_wait_s=0.0)
    await batcher.put(0)
    await until(start, lambda: len(start.batches) == 1)
    return start, batcher


def test_items_that_come_while_the_last_batch_finishes_start_the_next_at_once():
    async def scenario():
        start, batcher = await first_batch_started(max_items=10)
        await asyncio.sleep(0.01)  # nothing waits: the batcher waits for [0] to finish
        await batcher.put(1)
        await until(start, lambda: len(start.batches) == 2)
        return start.batches, start.finishing[0].done()

    assert run(scenario()) == ([[0], [1]], False)


def test_a_batch_that_fails_while_finishing_fails_the_next_put():
    async def scenario():
        start, batcher = await first_batch_started(max_items=1)
        start.finishing[0].set_exception(RuntimeError("boom"))
        await asyncio.sleep(0.01)
        await batcher.put(1)

    with pytest.raises(RuntimeError, match="boom"):
        run(scenario())


def test_close_cancels_the_batches_being_finished():
    async def scenario():
        start, batcher = await first_batch_started(max_items=1)
        await batcher.put(1)
        await until(start, lambda: len(start.batches) == 2)
        await batcher.close()
        return [future.cancelled() for future in start.finishing]

    assert run(scenario()) == [True, True]  # ([0] with the run that awaits it)


def test_closing_as_the_batch_fills_up_starts_no_batch_after_it():
    async def scenario():
        handler = Recorder()
        batcher = Batcher(handler, max_items=10, max_wait_s=60)
        await batcher.put(1)  # waits for more items, or a minute
        await asyncio.sleep(0)
        batcher._full.set()  # the batch fills up just as the worker stops
        await asyncio.sleep(0)
        await batcher.close()
        return handler.batches

    assert run(scenario()) == []
