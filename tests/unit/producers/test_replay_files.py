"""Replay files are checked whole before anything is published, and read with their line numbers."""

import gzip
import os

import pytest

from producers.replay_files import NotAReplayFile, UnreadablePart, check_replay_file, read_lines

LINES = [b'{"type":"train","event_id":"t-%d"}' % n for n in range(2000)]


def write(tmp_path, name, content: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(content)
    return str(path)


def gzipped(lines=LINES) -> bytes:
    return gzip.compress(b"\n".join(lines) + b"\n")


def lines_of(path):
    with open(path, "rb") as raw:
        return list(read_lines(path, raw))


def test_plain_and_gzip_files_that_are_what_their_names_say_pass(tmp_path):
    check_replay_file(write(tmp_path, "a.jsonl", b"\n".join(LINES)))
    check_replay_file(write(tmp_path, "a.jsonl.gz", gzipped()))
    check_replay_file(write(tmp_path, "empty.jsonl", b""))


def test_a_leading_byte_order_mark_is_skipped(tmp_path):
    for name, content in [
        ("bom.jsonl", b"\xef\xbb\xbf" + LINES[0] + b"\n" + LINES[1]),
        ("bom.jsonl.gz", gzip.compress(b"\xef\xbb\xbf" + LINES[0])),
    ]:
        path = write(tmp_path, name, content)
        check_replay_file(path)
        assert lines_of(path)[0] == (1, LINES[0] + (b"\n" if "gz" not in name else b""))


def test_a_truncated_gzip_file_is_refused_before_anything_is_published(tmp_path):
    whole = gzipped()
    path = write(tmp_path, "t.jsonl.gz", whole[: len(whole) // 2])
    with pytest.raises(NotAReplayFile, match=r"t\.jsonl\.gz is truncated.*nothing was published"):
        check_replay_file(path)


def test_a_damaged_gzip_file_is_refused(tmp_path):
    whole = bytearray(gzipped())
    whole[len(whole) // 2] ^= 0xFF
    with pytest.raises(NotAReplayFile, match="is damaged"):
        check_replay_file(write(tmp_path, "d.jsonl.gz", bytes(whole)))


def test_a_file_named_gz_that_is_not_gzip_is_refused(tmp_path):
    with pytest.raises(NotAReplayFile, match=r"not gzip-compressed.*rename it without \.gz"):
        check_replay_file(write(tmp_path, "plain.jsonl.gz", b"\n".join(LINES)))


def test_a_gzip_file_not_named_gz_is_refused(tmp_path):
    with pytest.raises(NotAReplayFile, match=r"is gzip-compressed: name it .*zipped.jsonl.gz"):
        check_replay_file(write(tmp_path, "zipped.jsonl", gzipped()))


def test_a_binary_file_is_refused(tmp_path):
    with pytest.raises(NotAReplayFile, match="not a JSON Lines text file"):
        check_replay_file(write(tmp_path, "binary.jsonl", os.urandom(2000) + b"\x00"))


def test_utf16_text_is_refused_with_what_to_do(tmp_path):
    with pytest.raises(NotAReplayFile, match="UTF-16 text: save it as UTF-8"):
        check_replay_file(
            write(
                tmp_path,
                "u16.jsonl",
                "\n".join(line.decode() for line in LINES[:3]).encode("utf-16"),
            )
        )


def test_text_that_is_not_utf8_is_refused_naming_the_line(tmp_path):
    content = LINES[0] + b"\n" + b'{"partner":"\xe9"}\n'
    with pytest.raises(NotAReplayFile, match=r"not UTF-8 text \(line 2, byte 47\)"):
        check_replay_file(write(tmp_path, "latin.jsonl", content))


def test_an_unreadable_file_is_refused(tmp_path):
    with pytest.raises(NotAReplayFile, match="cannot read"):
        check_replay_file(str(tmp_path))


def test_a_file_cut_after_the_check_stops_reading_naming_the_first_line_not_read(tmp_path):
    whole = gzipped()
    path = write(tmp_path, "cut.jsonl.gz", whole[: len(whole) // 2])
    read = []

    def read_all(raw):
        for number, _line in read_lines(path, raw):
            read.append(number)

    with (
        open(path, "rb") as raw,
        pytest.raises(
            UnreadablePart, match=r"cut.jsonl.gz line ([\d,]+): the compressed data ends early"
        ) as stopped,
    ):
        read_all(raw)
    assert f"line {read[-1] + 1:,}:" in str(stopped.value)


def test_the_sample_scenario_written_to_gz_is_a_gzip_replay_file(tmp_path):
    from producers.sample import generate_sample

    plain, packed = str(tmp_path / "s.jsonl"), str(tmp_path / "s.jsonl.gz")
    generate_sample(plain, events=50)
    generate_sample(packed, events=50)
    check_replay_file(packed)
    assert [line for _, line in lines_of(packed)] == [line for _, line in lines_of(plain)]
