"""Batches of Kafka records for Redis, gathered while the previous batch is being applied.

Faust's ``take`` stops reading while the batch it yielded is processed, so the worker would
idle while Redis runs a step. Here reading goes on: records arriving while a batch is in Redis form
the next batch, which starts when it holds ``max_items`` or its first record has waited
``max_wait_s``, whichever comes first (a batch costs a Redis round trip and some bookkeeping,
so single-event records are worth gathering for a moment). A batch may start while the one
before it is still finishing (``start`` says when), so that the worker's work on one overlaps
Redis' on the other.

Time is the running event loop's clock (``loop.time()``, its timers the waits): the clock is
injected with the loop, so a loop on a virtual clock runs a batcher deterministically (the
tests do), at no cost here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

Item = TypeVar("Item")

log = logging.getLogger(__name__)


class Batcher(Generic[Item]):
    """Hands items to ``start`` one batch at a time, in arrival order. ``start`` returns when
    the next batch may start, with what finishes its batch: at most two batches are handled at
    once, and a batch is taken only once the one two before it is finished. Once ``max_items``
    wait, ``put`` and ``put_many`` block until the next batch takes them."""

    def __init__(
        self,
        start: Callable[[list[Item]], Awaitable[asyncio.Future[None]]],
        max_items: int,
        max_wait_s: float,
    ) -> None:
        if max_items < 1:
            raise ValueError("max_items must be at least 1")
        self._start = start
        self.max_items = max_items
        self.max_wait_s = max_wait_s
        self._waiting: list[Item] = []
        self._first_waiting_at = 0.0  # loop time the oldest waiting item arrived
        self._full = asyncio.Event()  # set while max_items wait
        self._taken = asyncio.Event()  # set whenever a batch took the waiting items
        self._running: asyncio.Task[None] | None = None
        self._finishing: asyncio.Future[None] | None = None  # the last batch started
        self._arrived = asyncio.Event()  # set whenever items are put

    async def put(self, item: Item) -> None:
        """Queue an item; raises what handling an earlier batch raised."""
        await self.put_many([item])

    async def put_many(self, items: list[Item]) -> None:
        """Queue items in order (a fetch's records, kept together: the batch that takes them
        may exceed ``max_items`` by up to ``len(items) - 1``); raises what handling an
        earlier batch raised."""
        self._raise_failure()
        waiting = self._waiting
        if not waiting:
            self._first_waiting_at = asyncio.get_running_loop().time()
        waiting += items
        self._arrived.set()
        if self._running is None or self._running.done():
            self._running = asyncio.ensure_future(self._run())
        if len(waiting) >= self.max_items:
            self._full.set()
            self._taken.clear()
            await self._taken.wait()
            self._raise_failure()

    def _raise_failure(self) -> None:
        running = self._running
        if running is not None and running.done() and not running.cancelled():
            running.result()  # raises what handling a batch raised, if it did

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                if not self._waiting:
                    if self._finishing is None:
                        return
                    await self._finish_or_arrival(self._finishing)
                    continue
                if not self._full.is_set():
                    wait_s = self._first_waiting_at + self.max_wait_s - loop.time()
                    if wait_s > 0:
                        await self._until_full(wait_s)
                batch, self._waiting = self._waiting, []
                self._full.clear()
                self._taken.set()
                finishing, self._finishing = self._finishing, await self._start(batch)
                if finishing is not None:
                    await finishing
        except Exception:
            # said now: the next ``put`` raises it, but none may come for a while
            log.exception("handling a batch failed")
            raise
        finally:
            self._taken.set()  # a ``put`` waiting for room learns of a failure too

    async def _until_full(self, timeout_s: float) -> None:
        """Wait until ``max_items`` wait, at most ``timeout_s``. (Not ``asyncio.wait_for``: on
        Python 3.11 it swallows a cancellation that comes as the event is set, and a stopping
        worker's batch loop would then go on.)"""
        full = asyncio.ensure_future(self._full.wait())
        try:
            await asyncio.wait([full], timeout=timeout_s)
        finally:
            full.cancel()

    async def _finish_or_arrival(self, finishing: asyncio.Future[None]) -> None:
        """Wait until the last batch started, ``finishing``, is finished (raising what it
        raised) or items come: those may start the next batch at once."""
        if not finishing.done():
            self._arrived.clear()
            arrival = asyncio.ensure_future(self._arrived.wait())
            either: list[asyncio.Future[Any]] = [finishing, arrival]
            try:
                await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            finally:
                arrival.cancel()
        if finishing.done():
            self._finishing = None
            finishing.result()

    async def close(self) -> None:
        """Stop handling: the batches being handled are cancelled, waiting items are dropped
        (none was acknowledged, and Redis' marks have them read again). Every task is cancelled
        before any is awaited: a batch may be waiting for the one before it."""
        running, self._running, self._waiting = self._running, None, []
        finishing, self._finishing = self._finishing, None
        tasks = [task for task in (running, finishing) if task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            # a batch's failure was logged when it happened, and nobody waits for it now
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
