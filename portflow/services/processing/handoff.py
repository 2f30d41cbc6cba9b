"""The handoff between overlapping batches: a batch's CPU work overlaps the one before's Redis
time, and Redis' check of every step's expected marks keeps that safe."""

from __future__ import annotations

import asyncio

from portflow.services.processing.marks import PartitionMarks


class Handoff:
    """Links a batch to the one before it, so that its CPU work overlaps the other's Redis time.

    A batch is prepared and sent while the batch before it is still in Redis, expecting the
    marks that batch's steps leave (``leaves``); its steps are collected only once that batch is
    through (``done``, set by the caller: applied and acknowledged, or given up). Redis checks
    every step's expected marks, so an expectation that proves wrong costs a retry of the step,
    never a wrong total. Made by the caller, one per batch, in order.
    """

    def __init__(self, previous: Handoff | None = None) -> None:
        self._previous = previous
        self.leaves: dict[str, int] = {}  # the marks once this batch's steps are applied
        self.moves = -1  # ``PartitionMarks.moves`` when this batch was sent
        self.sent = asyncio.Event()  # all this batch's steps are sent
        # a step was sent again (conflict, ids seen before): the next batch waits for this one,
        # or each batch would find the one before redone after it was sent, and be redone too
        self.redone = False
        self.done = asyncio.Event()

    def pending_previous(self) -> Handoff | None:
        """The batch before, if it is not through yet."""
        previous = self._previous
        if previous is not None and previous.done.is_set():
            previous = self._previous = None  # (no chain of finished batches is kept)
        return previous

    async def previous_done(self) -> None:
        previous = self.pending_previous()
        if previous is not None:
            await previous.done.wait()
            self._previous = None

    def all_sent(self, leaves: dict[str, int], moves: int) -> None:
        """Every step of this batch is sent; applied, they leave ``leaves``."""
        previous = self.pending_previous()
        self.leaves = {**(previous.leaves if previous else {}), **leaves}
        self.moves = moves
        self.sent.set()


async def expected_marks(handoff: Handoff | None, marks: PartitionMarks) -> dict[str, int]:
    """The marks a batch's first step expects: those the batch before it leaves while it is in
    Redis, unless that batch was redone or the consumer was moved since it was sent (then this
    one waits for it)."""
    previous = handoff.pending_previous() if handoff is not None else None
    if handoff is None or previous is None:
        return marks.copy()
    if previous.sent.is_set() and not previous.redone and previous.moves == marks.moves:
        return {**marks.copy(), **previous.leaves}
    await handoff.previous_done()
    return marks.copy()
