"""The worker process's own settings."""

import asyncio

import uvloop

from streams.worker import use_uvloop


def test_the_worker_makes_its_event_loops_with_uvloop():
    before = asyncio.get_event_loop_policy()
    try:
        use_uvloop()
        loop = asyncio.new_event_loop()  # also what Faust's consumer thread does
        try:
            assert isinstance(loop, uvloop.Loop)
        finally:
            loop.close()
    finally:
        asyncio.set_event_loop_policy(before)
