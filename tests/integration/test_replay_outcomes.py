"""`portflow replay` against real Kafka, redis-server and a worker: with --wait it says what the
worker did to this replay's lines, by file and line; stopped by Ctrl-C it says up to which line
it published, and running it again counts nothing twice."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time

import pytest

from portflow.adapters.redis import RedisStore
from portflow.config import Settings
from portflow.errors import EXIT_INTERRUPTED, EXIT_REJECTIONS
from tests.support import events
from tests.support.events import encoded

pytestmark = pytest.mark.slow


def train(n: int, **fields) -> bytes:
    return encoded(events.train(**{"event_id": f"t-{n}", "teu": 2, **fields}))


def replay(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", "replay", *args, "--no-progress"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_wait_tells_applied_duplicates_and_rejections_by_line(stack_env, tmp_path, worker_factory):
    lines = [b"\xef\xbb\xbf" + train(1)]  # a byte-order mark before the first event
    lines += [train(n) for n in range(2, 40)]
    lines += [b"not json", train(40, teu=-1), train(3), train(41, pad="x" * 2_000_000)]
    lines += [b"", train(42)]
    path = tmp_path / "mine.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    worker_factory()

    first = replay(stack_env, str(path), "--batch", "7", "--wait", "--fail-on-rejection")
    assert first.returncode == EXIT_REJECTIONS, first.stderr
    said = first.stderr.splitlines()
    assert (
        "the worker applied 40 event(s), skipped 1 duplicate(s) and rejected 3 (1 invalid_field, "
        "1 not_json, 1 too_large)" in said
    )
    rejected = [line for line in said if line.startswith(f"  {path}:")]
    assert [line.split(": ")[0] for line in rejected] == [
        f"  {path}:40",
        f"  {path}:41",
        f"  {path}:43 (a line of {len(lines[42]):,} bytes, published cut)",
    ]
    assert [line.split(": ")[1] for line in rejected] == ["not_json", "invalid_field", "too_large"]
    assert "teu" in rejected[1]
    assert said[-1] == (
        "portflow: the worker rejected 3 of this replay's lines (--fail-on-rejection)"
    )

    again = replay(stack_env, str(path), "--wait")
    assert again.returncode == 0, again.stderr
    assert (
        "the worker applied 0 event(s), skipped 41 duplicate(s) and rejected 3 (1 invalid_field, "
        "1 not_json, 1 too_large)" in again.stderr.splitlines()
    )


def test_ctrl_c_mid_replay_says_up_to_which_line_it_published_and_exits_130(
    stack_env, tmp_path, worker_factory
):
    path = tmp_path / "long.jsonl"
    path.write_bytes(b"".join(train(n) + b"\n" for n in range(1, 20_001)))
    worker_factory()
    settings = Settings.from_env(stack_env)
    store = RedisStore.from_url(settings.redis_url, settings.topic_prefix)

    running = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "entrypoints.cli",
            "replay",
            str(path),
            "--rate",
            "2000",
            "--wait",
            "--no-progress",
        ],
        env=stack_env,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while store.outcomes().applied < 1000:
        assert running.poll() is None, "nothing was applied"
        assert time.monotonic() < deadline, "nothing was applied"
        time.sleep(0.05)
    running.send_signal(signal.SIGINT)
    _, stderr = running.communicate(timeout=60)
    assert running.returncode == EXIT_INTERRUPTED, stderr
    assert "Aborted" not in stderr
    assert "Traceback" not in stderr
    said = re.search(
        rf"replay stopped part-way, interrupted \(Ctrl-C\): every line up to "
        rf"{re.escape(str(path))}:([\d,]+) is published: ([\d,]+) events in "
        rf"[\d,]+ records; running it again is safe",
        stderr,
    )
    assert said, stderr
    up_to, events = (int(group.replace(",", "")) for group in said.groups())
    assert up_to == events < 20_000

    deadline = time.monotonic() + 60
    while store.outcomes().applied < events:
        assert time.monotonic() < deadline, f"only {store.outcomes().applied} of {events} applied"
        time.sleep(0.1)
    time.sleep(1)
    assert store.outcomes().applied == events  # nothing beyond the line it named

    again = replay(stack_env, str(path), "--wait")
    assert again.returncode == 0, again.stderr
    assert (
        f"the worker applied {20_000 - events:,} event(s), skipped {events:,} duplicate(s) and "
        "rejected 0"
    ) in again.stderr.splitlines()


def test_ctrl_c_while_waiting_says_what_the_worker_did_so_far_and_exits_130(stack_env, tmp_path):
    path = tmp_path / "few.jsonl"
    path.write_bytes(b"".join(train(n) + b"\n" for n in range(1, 11)))
    waiting = subprocess.Popen(
        [sys.executable, "-m", "entrypoints.cli", "replay", str(path), "--wait", "--no-progress"],
        env=stack_env,
        stderr=subprocess.PIPE,
        text=True,
    )
    said = []
    for line in waiting.stderr:  # no worker runs: it waits
        said.append(line.rstrip("\n"))
        if line.startswith("published 10 events"):
            break
    time.sleep(1)
    waiting.send_signal(signal.SIGINT)
    said += waiting.communicate(timeout=60)[1].splitlines()
    assert waiting.returncode == EXIT_INTERRUPTED, said
    assert said[0].startswith("portflow: warning: no live worker for topic prefix")
    assert said[-2:] == [
        "so far the worker applied 0 event(s), skipped 0 duplicate(s) and rejected 0",
        "portflow: stopped waiting (Ctrl-C): everything is published and the worker goes on "
        "handling it (`portflow dlq list` shows rejections)",
    ]
