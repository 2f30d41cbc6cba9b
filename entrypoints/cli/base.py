"""The ``portflow`` command group and what every command shares: settings from the
environment, messages on stderr, and the one place where errors become exit codes."""

from __future__ import annotations

import logging
import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from portflow.config import ConfigError, Settings
from portflow.errors import EXIT_FAILURE, PortflowError, UsageError

if TYPE_CHECKING:
    from portflow.adapters.redis import RedisStore


def load_settings() -> Settings:
    return Settings.from_env()


def home() -> Path:
    return Path(os.environ.get("PORTFLOW_HOME", Path.home() / ".portflow")).expanduser()


def open_prefix_store(settings: Settings) -> RedisStore:
    """The Redis store of PORTFLOW_TOPIC_PREFIX, whether or not it has a state, in any time
    zone: for what is kept apart from the state (the re-drive ledger, the USD rates)."""
    from portflow.adapters.redis import RedisStore

    return RedisStore.from_url(settings.redis_url, settings.topic_prefix)


def say(message: str) -> None:
    click.echo(message, err=True)


def warn(message: str | None) -> None:
    if message:
        click.secho(f"portflow: warning: {message}", fg="yellow", err=True)


class WarningsAsLines(logging.Handler):
    """portflow's own log warnings (a server not answering yet, say) as ``portflow: warning:``
    lines, where nothing else shows them: a command that set up logging (the worker) has its
    own handlers on the root logger, and this one then stays quiet."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)

    def emit(self, record: logging.LogRecord) -> None:
        if not logging.getLogger().handlers:
            warn(record.getMessage())


def fail(message: str) -> click.exceptions.Exit:
    click.secho(f"portflow: {message}", fg="red", err=True)
    return click.exceptions.Exit(EXIT_FAILURE)


def os_error_message(exc: OSError) -> str:
    """One line for a file or system call that failed: the system's reason and the path(s)."""
    reason = exc.strerror or str(exc)
    paths = [repr(str(p)) for p in (exc.filename, exc.filename2) if p is not None]
    return f"{reason}: {' → '.join(paths)}" if paths else reason


class PortflowGroup(click.Group):
    """The one place where errors become messages and exit codes: a bad setting or option is a
    usage error (exit 2), any other ``PortflowError`` says what to do (exit 1, or its own),
    Redis or Kafka failing says which server (exit 1), and a file or directory the system
    refuses (missing, not writable, full disk) says which and why (exit 1). Anything else is a
    bug: a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            raise click.UsageError(f"configuration error: {exc}") from None
        except UsageError as exc:
            raise click.UsageError(str(exc)) from None
        except PortflowError as exc:
            click.secho(f"portflow: {exc}", fg="red", err=True)
            raise click.exceptions.Exit(exc.exit_code) from None
        except BrokenPipeError:
            raise  # stdout's reader went away (`| head`): click stops quietly, exit 1
        except Exception as exc:
            if raised_by(exc, "redis.exceptions", "RedisError"):
                url = load_settings().redacted_redis_url
                raise fail(f"cannot read Redis at {url}: {exc}") from None
            if raised_by(exc, "kafka.errors", "KafkaError"):
                raise fail(f"Kafka at {load_settings().kafka_bootstrap}: {exc}") from None
            if isinstance(exc, OSError):
                raise fail(os_error_message(exc)) from None
            raise


def raised_by(exc: Exception, module: str, error: str) -> bool:
    """Whether ``exc`` is a ``module.error``, without importing that client library: a command
    that never imported it cannot have raised its errors, and importing a client only to catch
    them would slow every command, ``--help`` included."""
    errors = sys.modules.get(module)
    return errors is not None and isinstance(exc, getattr(errors, error))


class Number(click.FloatRange):
    """A finite float in a range: click's FloatRange lets ``nan`` through (and ``inf`` when it
    has no maximum), which every option taking seconds, rates or scales must refuse."""

    name = "number"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        number: float = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


POSITIVE = Number(min=0, min_open=True)  # seconds, rates: above zero


@click.group(
    cls=PortflowGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(package_name="portflow")
def cli() -> None:
    """Streaming monitor for port and trade throughput.

    Producers publish shipment, train and customs events to Kafka; `portflow worker` aggregates
    them exactly once into Redis; `portflow report` answers year-over-year questions.
    Configure with PORTFLOW_* environment variables (PORTFLOW_KAFKA_BOOTSTRAP,
    PORTFLOW_REDIS_URL, PORTFLOW_TZ, ...); the defaults serve the embedded stack of `portflow up`.
    """


def dimensions(by: str) -> list[str]:
    return [d.strip() for d in by.split(",") if d.strip()]
