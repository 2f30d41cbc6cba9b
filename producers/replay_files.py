"""The files ``portflow replay`` reads: checked whole before the first record is sent, then read
line by line.

A file must be what its name says: ``.gz`` means gzip (read to its end up front, so a truncated
or damaged file is refused before anything of it is published) and anything else plain text; its
first ``SNIFF_BYTES`` must be UTF-8 text (no NUL byte), so a binary file or UTF-16 text is refused
rather than published line by line as rejections. Lines that are not events further in are still
published for the worker to reject (the contract's "Replay files"). A leading UTF-8 byte-order
mark, as Windows tools write, is skipped.
"""

from __future__ import annotations

import codecs
import gzip
import os
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import BinaryIO

from tqdm import tqdm

from portflow.errors import UsageError
from portflow.services.progress import progress_bar_disabled

GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = codecs.BOM_UTF8
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
SNIFF_BYTES = 64 * 1024
_CHUNK = 1024 * 1024


class NotAReplayFile(UsageError, ValueError):
    """A file that cannot be replayed as it is: missing, unreadable, or not what its name says."""


class UnreadablePart(Exception):
    """Reading a file failed part-way (it changed after the check, or the disk failed)."""


def is_gzip_name(path: str) -> bool:
    return path.endswith(".gz")


def check_replay_files(paths: list[str], progress: bool | None = None) -> None:
    """``check_replay_file`` each, with a progress bar over the gzip files read whole."""
    compressed = [p for p in paths if is_gzip_name(p)]
    total = sum(os.path.getsize(p) for p in compressed if os.path.isfile(p))
    with tqdm(
        total=total,
        unit="B",
        unit_scale=True,
        desc="check",
        disable=progress_bar_disabled(progress) if compressed else True,
    ) as bar:
        for path in paths:
            check_replay_file(path, bar.update)


def check_replay_file(path: str, read: Callable[[int], object] = lambda n: None) -> None:
    """Refuse a file that replay could publish only in part, or only as rejections; ``read``
    is told how many more bytes of the file were read."""
    try:
        with open(path, "rb") as raw:
            _check_compression(path, raw.read(len(GZIP_MAGIC)))
            raw.seek(0)
            position = 0
            with _content(path, raw) as content:
                _check_text(path, content.read(SNIFF_BYTES))
                while content.read(_CHUNK):  # a truncated or damaged gzip stream raises
                    read(raw.tell() - position)
                    position = raw.tell()
    except EOFError:
        raise NotAReplayFile(
            f"{path} is truncated: its compressed data ends early (an "
            "interrupted download or copy?); nothing was published"
        ) from None
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise NotAReplayFile(f"{path} is damaged ({exc}); nothing was published") from None
    except OSError as exc:
        raise NotAReplayFile(f"cannot read {path}: {exc.strerror or exc}") from None


def _check_compression(path: str, magic: bytes) -> None:
    if is_gzip_name(path) and magic != GZIP_MAGIC:
        raise NotAReplayFile(
            f"{path} is not gzip-compressed although its name ends in .gz: "
            "rename it without .gz; nothing was published"
        )
    if not is_gzip_name(path) and magic == GZIP_MAGIC:
        raise NotAReplayFile(
            f"{path} is gzip-compressed: name it {path}.gz (or decompress "
            "it); nothing was published"
        )


def _check_text(path: str, head: bytes) -> None:
    """The start of a file must be UTF-8 text (an incomplete character at the cut is fine)."""
    if head.startswith(UTF16_BOMS):
        raise NotAReplayFile(f"{path} is UTF-16 text: save it as UTF-8; nothing was published")
    nul = head.find(b"\x00")
    if nul >= 0:
        raise NotAReplayFile(
            f"{path} is not a JSON Lines text file (a NUL byte at byte "
            f"{nul + 1:,}); nothing was published"
        )
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError as exc:
        line = head.count(b"\n", 0, exc.start) + 1
        raise NotAReplayFile(
            f"{path} is not UTF-8 text (line {line:,}, byte {exc.start + 1:,}): "
            "save it as UTF-8; nothing was published"
        ) from None


@contextmanager
def _content(path: str, raw: BinaryIO) -> Iterator[BinaryIO | gzip.GzipFile]:
    if not is_gzip_name(path):
        yield raw
        return
    with gzip.open(raw, "rb") as content:
        yield content


def read_lines(path: str, raw: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """``(line number, line)`` of the file open as ``raw``, the byte-order mark skipped. A read
    that fails part-way raises ``UnreadablePart`` naming the first line not read."""
    number = 0
    try:
        with _content(path, raw) as content:
            for number, line in enumerate(content, 1):
                if number == 1 and line.startswith(UTF8_BOM):
                    line = line[len(UTF8_BOM) :]
                yield number, line
    except EOFError:
        raise UnreadablePart(
            f"{path} line {number + 1:,}: the compressed data ends early (the file was cut?)"
        ) from None
    except (OSError, zlib.error) as exc:
        raise UnreadablePart(f"{path} line {number + 1:,}: {exc}") from None
