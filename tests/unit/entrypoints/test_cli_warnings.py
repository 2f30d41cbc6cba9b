"""portflow's log warnings in a command: one ``portflow: warning:`` line each where nothing else
shows them, and left to the command's own logging where it set some up (the worker)."""

import subprocess
import sys

WARN = """
import logging
from entrypoints.cli.base import WarningsAsLines
{setup}
logging.getLogger("portflow").addHandler(WarningsAsLines())
logging.getLogger("portflow.adapters.kafka").warning("Kafka at %s does not answer", "x:1")
"""


def stderr_of(setup: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", WARN.format(setup=setup)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stderr


def test_a_warning_is_one_portflow_line_where_no_logging_is_set_up():
    assert stderr_of("") == "portflow: warning: Kafka at x:1 does not answer\n"


def test_a_warning_is_left_to_the_logging_a_command_set_up():
    setup = 'logging.basicConfig(format="[%(levelname)s] %(message)s")'
    assert stderr_of(setup) == "[WARNING] Kafka at x:1 does not answer\n"
