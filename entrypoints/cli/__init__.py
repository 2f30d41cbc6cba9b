"""``portflow``: the command line. Configuration comes from the environment (see README).

Each command parses its options, calls one service and prints; the commands live by what they
do (``publishing``, ``reading``, ``operating``), the group and the error mapping in ``base``.
"""

from __future__ import annotations

import signal
import sys

from entrypoints.cli import operating, publishing, reading  # noqa: F401 (they register commands)
from entrypoints.cli.base import cli

__all__ = ["cli", "main"]


def main() -> None:
    # Ctrl-C (SIGINT) stops every command, also one started in the background by a script
    # (`portflow up &`): the shell starts it with SIGINT ignored, and Python keeps it ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        cli.main(prog_name="portflow", standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)
