"""What the scenarios share in writing a replay file: time stamps, exact decimals, the file."""

from __future__ import annotations

import gzip
import random
from datetime import datetime, timedelta, timezone

CST = timezone(timedelta(hours=8))  # China Standard Time, the ports' clocks


def rfc3339(moment: datetime, rng: random.Random) -> str:
    """RFC 3339: mostly local +08:00, sometimes the same instant in UTC (Z)."""
    if rng.random() < 0.15:
        return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%S+08:00")


def decimal_text(units: int, places: int) -> str:
    """Integer ``units`` of 10^-places as a decimal with that many places (fen → yuan)."""
    return f"{units // 10**places}.{units % 10**places:0{places}d}"


def write_replay_file(path: str, body: bytes) -> None:
    """``body`` to ``path``, gzip-compressed for ``.gz`` with no name or time in the header:
    the same seed gives the same bytes."""
    with open(path, "wb") as out:
        if path.endswith(".gz"):
            with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as packed:
                packed.write(body)
        else:
            out.write(body)
