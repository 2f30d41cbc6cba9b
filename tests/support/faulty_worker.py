"""`portflow worker` with faults injected for chosen event ids, as bugs nobody foresaw would
cause them (tests only; the production code has no such hook):

- ``PORTFLOW_TEST_SUM_FAULT_IDS``: summing a set of events that holds one of these raises;
- ``PORTFLOW_TEST_STEP_FAULT_IDS``: the Redis step counting one of these raises before it is
  sent (not as Redis would fail: no ``redis`` exception).

    PORTFLOW_TEST_SUM_FAULT_IDS=s-1,s-2 python -m tests.support.faulty_worker
"""

import os
import sys

from entrypoints.cli import main
from portflow.adapters.redis import RedisStore
from portflow.domain import aggregates
from portflow.services.processing import steps

SUM_FAULT_IDS = set(filter(None, os.environ.get("PORTFLOW_TEST_SUM_FAULT_IDS", "").split(",")))
STEP_FAULT_IDS = set(filter(None, os.environ.get("PORTFLOW_TEST_STEP_FAULT_IDS", "").split(",")))


class FaultyIncrements(aggregates.Increments):
    def add(self, events):
        events = list(events)
        if any(event.event_id in SUM_FAULT_IDS for event in events):
            raise ArithmeticError("injected fault in the sum")
        return super().add(events)


real_apply = RedisStore.apply


async def faulty_apply(self, marks, event_ids, *rest):
    if any(event_id in STEP_FAULT_IDS for _, event_id in event_ids):
        raise LookupError("injected fault in the step")
    return await real_apply(self, marks, event_ids, *rest)


steps.Increments = FaultyIncrements
RedisStore.apply = faulty_apply

if __name__ == "__main__":
    sys.argv = ["portflow", "worker"]
    main()
