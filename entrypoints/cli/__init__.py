"""``portflow``: the command line. Configuration comes from the environment (see README).

Each command parses its options, calls one service and prints; the commands live by what they
do (``publishing``, ``reading``, ``operating``, ``rates``, ``serving``), the group and the error
mapping in ``base``.
"""

from __future__ import annotations

import logging
import signal
import sys

import click

# (they register their commands)
from entrypoints.cli import operating, publishing, rates, reading, serving  # noqa: F401
from entrypoints.cli.base import WarningsAsLines, cli
from portflow.errors import EXIT_FAILURE, EXIT_USAGE

__all__ = ["cli", "main"]


def main() -> None:
    """Run ``portflow``: every failure ends in one ``portflow: …`` line and an exit code (2: a
    usage error, 1: a failure, 130: interrupted), never click's usage block or ``Aborted!``."""
    # Ctrl-C (SIGINT) stops every command, also one started in the background by a script
    # (`portflow up &`): the shell starts it with SIGINT ignored, and Python keeps it ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    logging.getLogger("portflow").addHandler(WarningsAsLines())
    try:
        status = cli.main(prog_name="portflow", standalone_mode=False)
    except click.UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
        click.secho(f"portflow: {exc.format_message()}{hint}", fg="red", err=True)
        sys.exit(EXIT_USAGE)
    except click.ClickException as exc:
        click.secho(f"portflow: {exc.format_message()}", fg="red", err=True)
        sys.exit(exc.exit_code)
    except click.Abort:  # a question answered with Ctrl-D or "no"
        click.secho("portflow: stopped; nothing more was done", fg="yellow", err=True)
        sys.exit(EXIT_FAILURE)
    except KeyboardInterrupt:
        click.secho("\nportflow: interrupted", fg="yellow", err=True)
        sys.exit(130)
    sys.exit(status if isinstance(status, int) else 0)
