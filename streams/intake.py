"""Faust's consumer, handing each agent what one fetch returned instead of one record at a time.

Faust moves every record alone from the consumer to an agent: a drain task, the conductor, the
channel queue and the stream each take their turn per record, about four times what portflow's
own work on a single-event record costs (docs/faust-batch-intake.md). ``BatchingConsumer``
keeps Faust's consumer, group, rebalancing, positions and commits, and replaces only that drain:
per fetch, each agent's channel gets one ``Fetched`` holding that fetch's records of the
partitions it reads, in offset order. Agents see a plain value (not an Event: nothing for Faust
to acknowledge); they acknowledge ranges with ``ack_applied`` once Redis holds them.

What the stock drain guarantees is kept: records below a partition's read offset (from before a
seek) are dropped, delivery stops when the flow stops or the generation changes (a rebalance),
records fetched while the flow is stopped are dropped and the partitions sought again, and a
full channel queue blocks the fetching (memory stays bounded) while a rebalance can still stop
it. Values already queued when a rebalance starts are cleared by Faust's flow control; one an
agent holds already names its generation, and the agent drops it when that is past.

Every agent of an app using this consumer receives ``Fetched`` values. The private Faust names
used here are pinned with faust-streaming's version, and a unit test fails if one goes away.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import faust
from aiokafka.errors import KafkaError
from faust.transport.conductor import Conductor
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.types import TP, TopicT
from faust.types.tuples import ack_lock
from mode import Service, ServiceT

# How long the drain waits before fetching again after a fetch failed.
FETCH_RETRY_S = 1.0

# A fetch's records per partition: aiokafka's ``ConsumerRecord``s (aiokafka ships no types).
Records = Mapping[TP, list[Any]]


@dataclass(frozen=True, slots=True)
class Fetched:
    """One fetch's records for one agent: per partition, a list in offset order (aiokafka's
    ``ConsumerRecord``s: ``topic``, ``partition``, ``offset``, ``key``, ``value``)."""

    generation_id: int
    parts: Records

    def is_current(self, app: faust.App) -> bool:
        """Whether it was fetched in the consumer's current generation and the flow still
        runs: else a rebalance came since, and the new positions read these records again."""
        return self.generation_id == app.consumer_generation_id and app.flow_control.is_active()


class BatchingConsumer(AIOKafkaConsumer):
    """Faust's aiokafka consumer with a drain that delivers per fetch (see the module)."""

    async def _drain_messages(self, fetcher: ServiceT) -> None:
        consumer_stopped = self._stopped.is_set
        fetcher_stopped = cast(Service, fetcher)._stopped.is_set  # Faust's Fetcher service
        try:
            while not (consumer_stopped() or fetcher_stopped()):
                self.diag.set_flag(CONSUMER_FETCHING)
                try:
                    records, active = await self._wait_next_records(1.0)
                except KafkaError as exc:
                    # Faust's drain lets this stop the fetcher, and the worker with it. Seen:
                    # aiokafka's AssertionError when the topics were recreated with other
                    # partitions during a rebalance. The group settles, and the worker's
                    # topic check restarts it if the topics are new.
                    self.log.warning(
                        "fetching failed (%r); fetching again in %.0f s", exc, FETCH_RETRY_S
                    )
                    await self.sleep(FETCH_RETRY_S)
                    continue
                await asyncio.sleep(0)  # a fetch that returns at once still yields the loop
                if records and not self.should_stop:
                    if self.flow_active:
                        await self._deliver_fetch(records, active)
                    else:  # fetched across a rebalance: read again from the new positions
                        await self.perform_seek()
                await self._commit_if_due()
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    async def _deliver_fetch(self, records: Records, active: set[TP] | None) -> None:
        """One ``Fetched`` per channel; a partition's read offset moves once it is delivered."""
        app = self.app
        generation = app.consumer_generation_id
        read_offset = self._read_offset
        channels_of = cast(Conductor, app.topics)._tp_index  # Faust's type: ConductorT
        inbound = app.monitor.stream_inbound_time
        now = time.monotonic()
        by_channel: dict[TopicT, dict[TP, list[Any]]] = {}
        for tp, batch in records.items():
            if active is not None and tp not in active:
                continue
            start = read_offset[tp]
            if start is not None and batch[0].offset < start:
                batch = [record for record in batch if record.offset >= start]
                if not batch:
                    continue
            channels = channels_of.get(tp)
            if not channels:
                self.log.warning("records of %r, which no agent reads, were dropped", tp)
                continue
            for channel in channels:
                by_channel.setdefault(channel, {})[tp] = batch
            inbound[tp] = now  # Faust's stalled-stream detector watches this
        for channel, parts in by_channel.items():
            if not self.flow_active or app.consumer_generation_id != generation:
                return
            if not await self._put(channel.queue, Fetched(generation, parts)):
                return
            for tp, batch in parts.items():
                read_offset[tp] = batch[-1].offset

    async def _put(self, queue: asyncio.Queue[Fetched], item: Fetched) -> bool:
        """Queue ``item``, waiting for room unless the flow stops or the consumer does first.

        Not ``Service.wait_first``: Faust's flow control cancels a blocked putter when it clears
        the queues at a rebalance, and ``wait_first`` would raise that cancellation here and
        stop the fetcher; ``asyncio.wait`` only reports it."""
        if not queue.full():
            queue.put_nowait(item)
            return True
        waits = [
            asyncio.ensure_future(queue.put(item)),
            asyncio.ensure_future(self.suspend_flow.wait()),
            asyncio.ensure_future(self._stopped.wait()),
        ]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
        put = waits[0]
        return put.done() and not put.cancelled() and put.exception() is None

    async def _commit_if_due(self) -> None:
        """Faust's ``broker_commit_every``: commit once that many offsets were acknowledged
        (its timer commits every ``broker_commit_interval`` as well)."""
        every = self._commit_every
        if every is not None and self._n_acked >= every:
            self._n_acked = 0
            await self.commit()

    def ack_applied(self, tp: TP, first: int, last: int) -> None:
        """Acknowledge offsets ``first``..``last`` of ``tp``, which Redis holds: what
        ``Consumer.ack`` does per message, for a range. Faust commits the contiguous
        acknowledged offsets as before; a partition no longer assigned is left alone."""
        with ack_lock:
            if tp not in self.assignment():
                return
            committed = self._committed_offset[tp]
            if committed is not None:
                first = max(first, committed)
            index = self._acked_index[tp]
            new = [offset for offset in range(first, last + 1) if offset not in index]
            if new:
                index.update(new)
                self._acked[tp].extend(new)
                self._n_acked += len(new)


def batching_consumer(app: faust.App) -> BatchingConsumer:
    """``app.consumer``, which ``streams.app`` makes a ``BatchingConsumer`` (Faust types it as
    its abstract ``ConsumerT``)."""
    return cast(BatchingConsumer, app.consumer)
