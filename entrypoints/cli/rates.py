"""The USD rates table: ``portflow rates load`` and ``portflow rates show``."""

from __future__ import annotations

from pathlib import Path

import click

from entrypoints.cli.base import cli, load_settings, open_prefix_store, say, warn


@cli.group()
def rates() -> None:
    """The USD rates table: yuan per U.S. dollar by month, for reports in dollars.

    A rates file is CSV with the header month,rate,source and one line a month, such as
    "2024-06,7.2570,where it comes from" (see the README, "Dollars"). The rates are kept per
    PORTFLOW_TOPIC_PREFIX in Redis, apart from the state: `portflow rebuild` keeps them.
    """


@rates.command("load")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--replace",
    is_flag=True,
    help="Make the file the whole table: drop the loaded months not in it.",
)
def rates_load(file: str, replace: bool) -> None:
    """Load a rates file: every line is checked first, then all its months are stored at once.

    A month already loaded takes the file's rate; months not in the file are kept unless
    --replace. A file with any bad line loads nothing and names each problem (exit 2).
    """
    from portflow.services.rates import load_rates

    settings = load_settings()
    store = open_prefix_store(settings)
    loaded = load_rates(store, Path(file), replace)
    say(loaded.summary())
    if store.epoch() is None:
        warn(
            f"topic prefix {settings.topic_prefix!r} has no state in Redis database "
            f"{store.database} yet (no worker has opened one): the rates wait for it; check "
            "PORTFLOW_TOPIC_PREFIX if you expected one"
        )


@rates.command("show")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='Print one JSON object: {"rates": {month: {"rate", "source"}}}.',
)
def rates_show(as_json: bool) -> None:
    """The loaded rates, month by month: yuan per dollar and where each comes from."""
    from portflow.domain.report import to_json
    from portflow.services.rates import rates_json, rates_table

    result = rates_json(open_prefix_store(load_settings()))
    click.echo(to_json(result) if as_json else rates_table(result))
