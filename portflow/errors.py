"""The errors a user can act on, with the exit code of the command that meets them.

Every module raises these (or subclasses) with a message that says what to do; the command
line maps them to a red ``portflow: …`` line and the exit code in one place
(``entrypoints.cli.PortflowGroup``). Anything else is a bug and shows its traceback.
"""

from __future__ import annotations

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_REJECTIONS = 3  # `replay --wait --fail-on-rejection`: the worker rejected some events
EXIT_INTERRUPTED = 130  # Ctrl-C (SIGINT), as shells report a process it stopped


class PortflowError(Exception):
    """Something failed that the user can mend; the message says how."""

    exit_code = EXIT_FAILURE


class UsageError(PortflowError):
    """A value the user gave cannot work (a setting, an option, a period)."""

    exit_code = EXIT_USAGE
