"""USD exchange rates by month: the table ``currency=USD`` converts yuan with, read from CSV.

A rates file is UTF-8 CSV (a leading BOM and CRLF line ends are fine) with the header
``month,rate,source`` and one line a month, ``2024-06,7.2570,where it comes from``: ``rate``
is yuan per U.S. dollar. Every line is checked and every problem kept, each with its line
number, so one pass over a bad file names all that is wrong; nothing here raises on bad input.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final, TypedDict

HEADER: Final = ("month", "rate", "source")
MAX_RATE_PLACES: Final = 6
# Yuan per dollar has stayed between 1.5 and 8.7 since 1980; the bounds catch a rate written
# the other way round (dollars per yuan, about 0.14) or per 100 dollars (about 725).
MIN_RATE: Final = Decimal("1")
MAX_RATE: Final = Decimal("20")
MAX_SOURCE_CHARS: Final = 200

_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])", re.ASCII)
_DECIMAL = re.compile(r"\d+(\.\d+)?", re.ASCII)


class RateEntry(TypedDict):
    """A month's rate as stored and shown: the rate exactly as written, and its source."""

    rate: str  # yuan per U.S. dollar, e.g. "7.2570"
    source: str


@dataclass(frozen=True)
class Rate:
    """A month's rate: yuan per U.S. dollar, exactly as written, and where it comes from."""

    rate: Decimal
    source: str

    def as_json(self) -> RateEntry:
        return {"rate": str(self.rate), "source": self.source}


@dataclass
class RatesFile:
    """What a rates file holds: month → ``Rate`` (in month order) and its problems, each
    ``(line number, what is wrong)``. Only a file without problems should be loaded."""

    rates: dict[str, Rate] = field(default_factory=dict)
    problems: list[tuple[int, str]] = field(default_factory=list)

    @property
    def months(self) -> list[str]:
        return list(self.rates)


def _shown(value: str, limit: int = 40) -> str:
    """A value quoted for a message, cut short if long."""
    return repr(value if len(value) <= limit else value[:limit] + "…")


def check_month(text: str) -> str | None:
    """What is wrong with a month, or None."""
    if not _MONTH.fullmatch(text):
        return f"month {_shown(text)} is not a month like 2024-06"
    if text < "1900":
        return f"month {_shown(text)} is before 1900"
    return None


def parse_rate(text: str) -> Decimal | str:
    """The rate (yuan per dollar) written in ``text``, or what is wrong with it."""
    match = _DECIMAL.fullmatch(text)
    if not match:
        return f"rate {_shown(text)} is not a decimal number like 7.2570"
    rate = Decimal(text)
    if len(match[1] or ".") - 1 > MAX_RATE_PLACES:  # the digits after the point
        return f"rate {_shown(text)} has more than {MAX_RATE_PLACES} decimal places"
    if not MIN_RATE <= rate <= MAX_RATE:
        return (
            f"rate {_shown(text)} is not between {MIN_RATE} and {MAX_RATE} yuan per dollar "
            "(a rate in dollars per yuan, or per 100 dollars?)"
        )
    return rate


def check_source(text: str) -> str | None:
    if not text:
        return "source is empty: say where the rate comes from"
    if len(text) > MAX_SOURCE_CHARS:
        return f"source is longer than {MAX_SOURCE_CHARS} characters"
    if any(not ch.isprintable() for ch in text):
        return f"source {_shown(text)} has control characters"
    return None


def _check_header(row: list[str]) -> str | None:
    names = tuple(cell.strip().lower() for cell in row)
    if names != HEADER:
        return f"the header must be {','.join(HEADER)}, not {_shown(','.join(row))}"
    return None


def _row(row: list[str], line: int, parsed: RatesFile, first_line: dict[str, int]) -> None:
    """Check one line and add its rate, or its problems, to ``parsed``."""
    if len(row) != len(HEADER):
        parsed.problems.append(
            (line, f"{len(row)} field(s), expected {len(HEADER)} ({','.join(HEADER)})")
        )
        return
    month, rate_text, source = (cell.strip() for cell in row)
    rate = parse_rate(rate_text)
    checks = [check_month(month), rate if isinstance(rate, str) else None, check_source(source)]
    if checks[0] is None:
        if month in first_line:
            checks.append(f"month {month} is given again (first on line {first_line[month]})")
        first_line.setdefault(month, line)
    problems = [p for p in checks if p]
    parsed.problems.extend((line, p) for p in problems)
    if not problems and isinstance(rate, Decimal):
        parsed.rates[month] = Rate(rate, source)


def month_runs(months: list[str]) -> str:
    """Sorted months as runs of consecutive ones: ``2023-01 to 2023-06, 2024-01 to 2024-06``."""
    runs: list[list[str]] = []
    for month in months:
        if runs and _next_month(runs[-1][-1]) == month:
            runs[-1].append(month)
        else:
            runs.append([month])
    return ", ".join(run[0] if len(run) == 1 else f"{run[0]} to {run[-1]}" for run in runs)


def _next_month(month: str) -> str:
    year, number = int(month[:4]), int(month[5:])
    return f"{year + number // 12:04d}-{number % 12 + 1:02d}"


def months_text(months: list[str]) -> str:
    return f"{len(months)} month{'' if len(months) == 1 else 's'} ({month_runs(months)})"


def decode(data: bytes) -> str | None:
    """The text of a rates file (a leading UTF-8 BOM dropped), or None if it is not UTF-8."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None


def parse_rates(data: bytes) -> RatesFile:
    """Every month's rate in a rates file's bytes, and every problem by line."""
    parsed = RatesFile()
    text = decode(data)
    if text is None:
        parsed.problems.append((1, "not UTF-8 text: a rates file is CSV in UTF-8"))
        return parsed
    if "\0" in text:
        parsed.problems.append(
            (
                text[: text.index("\0")].count("\n") + 1,
                "a NUL character: this is not a CSV text file",
            )
        )
        return parsed
    reader = csv.reader(io.StringIO(text, newline=""))
    first_line: dict[str, int] = {}
    header_seen = False
    try:
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue  # a blank line
            if not header_seen:
                header_seen = True
                problem = _check_header(row)
                if problem:
                    parsed.problems.append((line, problem))
                    return parsed
                continue
            _row(row, line, parsed, first_line)
    except csv.Error as exc:
        parsed.problems.append((reader.line_num, f"not CSV: {exc}"))
        return parsed
    if not header_seen:
        parsed.problems.append((1, f"the file is empty: the first line must be {','.join(HEADER)}"))
    elif not parsed.rates and not parsed.problems:
        parsed.problems.append((reader.line_num, "no rates after the header"))
    parsed.rates = dict(sorted(parsed.rates.items()))
    return parsed
