"""What the scenarios share in writing a replay file: time stamps, exact decimals, the file."""

from __future__ import annotations

import gzip
import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from typing import BinaryIO

CST = timezone(timedelta(hours=8))  # China Standard Time, the ports' clocks


def rfc3339(moment: datetime, rng: random.Random) -> str:
    """RFC 3339: mostly local +08:00, sometimes the same instant in UTC (Z)."""
    if rng.random() < 0.15:
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%S+08:00")


def decimal_text(units: int, places: int) -> str:
    """Integer ``units`` of 10^-places as a decimal with that many places (fen → yuan)."""
    return f"{units // 10**places}.{units % 10**places:0{places}d}"


def companion_path(path: str, suffix: str) -> str:
    """The file written beside the replay file ``path``: its name without ``.jsonl(.gz)``,
    then ``suffix`` (``out/drill.jsonl.gz``, ``.expected.json``: ``out/drill.expected.json``)."""
    for replay_suffix in (".jsonl.gz", ".jsonl"):
        if path.endswith(replay_suffix):
            return path[: -len(replay_suffix)] + suffix
    return path + suffix


def write_replay_file(path: str, body: bytes) -> None:
    with replay_file_writer(path) as out:
        out.write(body)


@contextmanager
def replay_file_writer(path: str) -> Iterator[BinaryIO | gzip.GzipFile]:
    """``path`` open for writing, gzip-compressed for ``.gz`` with no name or time in the
    header: the same seed gives the same bytes."""
    with open(path, "wb") as out:
        if not path.endswith(".gz"):
            yield out
            return
        with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as packed:
            yield packed
