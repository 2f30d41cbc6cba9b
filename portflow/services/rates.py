"""The USD rates table: loading a rates file into Redis whole, and showing what is loaded."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypedDict

from portflow.adapters.redis import RedisStore
from portflow.domain.rates import RateEntry, months_text, parse_rates
from portflow.errors import UsageError

MAX_RATES_FILE_BYTES: Final = 1_000_000  # a century of months is 5 KB
PROBLEMS_SHOWN: Final = 10


class BadRatesFile(UsageError):
    """A rates file with problems: nothing of it is loaded."""


def read_rates_file(path: Path) -> dict[str, RateEntry]:
    """Month → ``{"rate", "source"}`` of a rates file, in month order; ``BadRatesFile`` naming
    its problems (file, line and what is wrong; the first ``PROBLEMS_SHOWN`` of them) if it
    has any. ``OSError`` if it cannot be read."""
    if path.stat().st_size > MAX_RATES_FILE_BYTES:
        raise BadRatesFile(
            f"{path}: larger than {MAX_RATES_FILE_BYTES:,} bytes: not a rates "
            "file (month,rate,source; one line a month)"
        )
    parsed = parse_rates(path.read_bytes())
    if parsed.problems:
        shown = "; ".join(f"line {line}: {what}" for line, what in parsed.problems[:PROBLEMS_SHOWN])
        more = len(parsed.problems) - PROBLEMS_SHOWN
        raise BadRatesFile(
            f"{path}: nothing loaded, {len(parsed.problems)} problem(s): {shown}"
            + (f"; and {more} more" if more > 0 else "")
        )
    return {month: rate.as_json() for month, rate in parsed.rates.items()}


@dataclass(frozen=True)
class RatesLoaded:
    """What ``load_rates`` did: the file's months, new or replacing a different entry or the
    same as stored, and the stored months not in the file, dropped (``replace``) or kept."""

    path: Path
    months: list[str]
    new: list[str]
    changed: list[str]
    unchanged: list[str]
    others: list[str]
    replace: bool

    def summary(self) -> str:
        said = (
            f"loaded {months_text(self.months)} from {self.path}: {len(self.new)} new, "
            f"{len(self.changed)} replaced (another rate or source), "
            f"{len(self.unchanged)} unchanged"
        )
        if self.others:
            what = "dropped" if self.replace else "kept"
            said += f"; {what} {months_text(self.others)} not in the file"
        return said


def load_rates(store: RedisStore, path: Path, replace: bool = False) -> RatesLoaded:
    """Check the whole rates file, then store all its months in one step: added to the table
    (a month already there takes the file's rate), or with ``replace`` as the whole table."""
    rates = read_rates_file(path)
    stored = store.rate_entries()
    store.put_rates(rates, replace)
    return RatesLoaded(
        path,
        list(rates),
        new=[m for m in rates if m not in stored],
        changed=[m for m in rates if m in stored and stored[m] != rates[m]],
        unchanged=[m for m in rates if stored.get(m) == rates[m]],
        others=[m for m in stored if m not in rates],
        replace=replace,
    )


class RatesJson(TypedDict):
    """``portflow rates show --json``, ``GET /v1/rates``: month → its entry, in month order."""

    rates: dict[str, RateEntry]


def rates_json(store: RedisStore) -> RatesJson:
    """``{"rates": {month: {"rate": "7.2570", "source": ...}}}``, in month order; the rate a
    string, exactly as loaded."""
    return {"rates": store.rate_entries()}


def rates_table(rates: RatesJson) -> str:
    """The loaded rates, a month a line, or a line saying there are none."""
    entries = rates["rates"]
    if not entries:
        return "no USD rates loaded (portflow rates load FILE.csv)"
    width = max(len("CNY/USD"), *(len(e["rate"]) for e in entries.values()))
    lines = [f"{'month':<7}  {'CNY/USD':>{width}}  source"]
    lines += [f"{month:<7}  {e['rate']:>{width}}  {e['source']}" for month, e in entries.items()]
    return "\n".join([*lines, months_text(list(entries))])
