"""Helpers shared by the tests; test modules import from here, never from one another.

- ``events``: the event factory (``shipment``, ``train``, ``customs``, ``encoded``);
- ``cli``: the ``portflow`` command as a process or in this one;
- ``oracle``: expected report figures computed from a replay file without portflow's code;
- ``pipeline``: end to end over worker processes (replay files, reports, metrics, letters);
- ``processing``: the worker's processor on a real Redis, without Kafka;
- ``api``: ``portflow serve`` settings and environment;
- ``up``: ``portflow up`` started and awaited as a user would;
- ``drops``: daily traffic for the drop judge;
- ``prefixes``: a fresh topic prefix (it namespaces every Redis key too);
- ``programs``: other programs tests run (openssl, kcat), by their full path;
- ``virtual_time``: an event loop whose clock moves only when every task waits;
- ``faulty_worker``: a worker process with faults injected (``python -m``).

Fixtures live in ``tests/conftest.py`` (servers, settings, workers) and
``tests/integration/conftest.py`` (the processor's harness).
"""
