"""The worker's correctness core: a batch of Kafka records in, its effects in Redis exactly once.

It needs no Faust and no Kafka client: the worker (``streams``) hands it plain records and
acknowledges them only after ``BatchProcessor.process`` returns, so Kafka's committed offset
never passes what Redis holds. Each module is one concept, to be read alone:

- ``records``   the records it receives and the dead letters it makes of what it rejects;
- ``marks``     the partition marks, and which records continue them;
- ``steps``     records parsed into chunks, each chunk summed into one atomic step;
- ``handoff``   how a batch overlaps the one before it;
- ``faults``    fault isolation: no record can stop the processor;
- ``store``     the store it applies steps to (a typed protocol) and its retries;
- ``processor`` the processor itself, putting these together.

Terms (each means this, and only this, throughout):

record
    One Kafka record (``SourceRecord``): a single event, or a batch of them as a JSON array.
batch
    The records of one ``process`` call: what the worker took from Kafka at once.
chunk
    A run of a batch's whole records holding at most ``MAX_EVENTS_PER_APPLY`` events (or one
    record): what one step applies.
step
    One chunk's atomic Redis call (``Step``, ``RedisStore.apply``): it checks the expected
    marks, then the event ids, and only then writes increments, ids and new marks together.
    Up to ``STEPS_IN_FLIGHT`` are sent and not yet answered.
mark
    Per partition, the offset of the last record applied (-1: none), kept in Redis. A record at
    or below it is skipped; the next record applied is the mark + 1, with no gap.
expected
    The marks a step (or a batch's first step) counts on finding in Redis: Redis refuses a step
    whose expected marks are not there (``StateConflict``), and it is prepared again.
leaves
    The marks once a step or a batch is applied: what the next one expects.
gap
    A partition whose next record (the mark + 1) is not in the batch: its later records are
    held back, and the caller re-reads it from the mark.
move, resume_at
    The consumer of a partition positioned elsewhere than the mark + 1 (after retention
    deleted offsets): the record at ``resume_at`` continues the mark, and records in flight from
    before the move are dropped until it is reached. ``moves`` counts them.
handoff
    The link between a batch and the one before it (``Handoff``): the batch is prepared and
    sent, expecting the marks that batch leaves, while that batch is still in Redis.
redone
    A step sent again (its expected marks were wrong, or some ids were seen before).
seen before
    Event ids Redis already holds within the dedupe window: the step writes nothing and names
    them; they count as duplicates when it is prepared again.
counted
    A step's events that are not duplicates: their effect is added (``applied`` once Redis
    has them).
dead letter
    A rejected record or event (``DeadLetter``), published before the step that moves the mark
    past it, so a crash re-sends it rather than losing it.
transient
    A failure of the infrastructure (Redis, Kafka, the network): the caller retries the batch.
    Any other failure is a record's fault.
quarantine
    The records proven to fail on their own (``isolate``): the next try dead-letters each as
    ``internal_error`` instead of processing it; forgotten once a step passes it.
probes
    The stats of the calls ``isolate`` made that applied part of a batch, folded into the
    batch's stats (``BatchStats.absorb``).
epoch
    The token of the state Redis holds: every step names it, so nothing is added to a Redis
    that lost its state (``StateLost``).
"""

from portflow.services.processing.faults import FAULT_CONFIRMATIONS, is_store_failure
from portflow.services.processing.handoff import Handoff
from portflow.services.processing.processor import STEPS_IN_FLIGHT, BatchProcessor, BatchStats
from portflow.services.processing.records import (
    DEAD_LETTER_HEADROOM,
    MAX_DEAD_LETTER_BYTES,
    DeadLetter,
    DeadLetterSink,
    SourceRecord,
)
from portflow.services.processing.steps import MAX_EVENTS_PER_APPLY
from portflow.services.processing.store import Store

__all__ = [
    "DEAD_LETTER_HEADROOM",
    "FAULT_CONFIRMATIONS",
    "MAX_DEAD_LETTER_BYTES",
    "MAX_EVENTS_PER_APPLY",
    "STEPS_IN_FLIGHT",
    "BatchProcessor",
    "BatchStats",
    "DeadLetter",
    "DeadLetterSink",
    "Handoff",
    "SourceRecord",
    "Store",
    "is_store_failure",
]
