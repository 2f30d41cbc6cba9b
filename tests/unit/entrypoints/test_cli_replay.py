"""`portflow replay` checks its options, its files and what --wait needs before it reaches for
Kafka (unreachable here: reaching for it would fail only after 30 seconds, and say so)."""

import gzip

import pytest

from tests.support.cli import invoke_unreachable

EVENT = b'{"type":"train","event_id":"t-1"}\n'


def replay(*args):
    return invoke_unreachable("replay", *args)


@pytest.fixture
def good_file(tmp_path):
    path = tmp_path / "good.jsonl"
    path.write_bytes(EVENT)
    return str(path)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--wait", "--timeout", "-1"], "-1.0 is not in the range x>0"),
        (["--wait", "--timeout", "0"], "0.0 is not in the range x>0"),
        (["--wait", "--timeout", "nan"], "'nan' is not a finite number"),
        (["--wait", "--timeout", "soon"], "'soon' is not a valid number"),
        (["--batch", "0"], "0 is not in the range 1<=x<=1000"),
        (["--batch", "1001"], "1001 is not in the range 1<=x<=1000"),
        (["--rate", "0"], "0.0 is not in the range x>0"),
        (["--speed", "inf"], "'inf' is not a finite number"),
        (["--rate", "5", "--speed", "2"], "choose one of --speed, --rate and --max"),
        (["--fail-on-rejection"], "--fail-on-rejection needs --wait"),
    ],
)
def test_a_bad_option_exits_2_before_anything_is_published(good_file, args, message):
    result = replay(good_file, *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Kafka" not in result.output
    assert "Redis" not in result.output


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("t.jsonl.gz", gzip.compress(EVENT * 5000)[:200], "is truncated"),
        ("plain.jsonl.gz", EVENT, "is not gzip-compressed"),
        ("binary.jsonl", b"\x00\x01\x02\xff" * 10, "is not a JSON Lines text file"),
    ],
)
def test_a_file_that_is_not_what_its_name_says_exits_2_before_anything_is_published(
    tmp_path, good_file, name, content, message
):
    path = tmp_path / name
    path.write_bytes(content)
    result = replay(good_file, str(path))
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "nothing was published" in result.output
    assert "Kafka" not in result.output


def test_wait_without_redis_fails_before_anything_is_published(good_file):
    result = replay(good_file, "--wait")
    assert result.exit_code == 1, result.output
    assert (
        "--wait reads the workers' progress in Redis, which cannot be read at "
        "redis://127.0.0.1:1/0" in result.output
    )
    assert "nothing was published" in result.output
    assert "Kafka" not in result.output
