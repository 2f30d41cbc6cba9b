"""`portflow dlq list` shows each rejected event once, with why, where from and its history;
`portflow dlq replay` re-drives each to its source once, unless asked again."""

import json
import subprocess
import sys
import time

import pytest

from portflow.adapters import dead_letter_headers as header
from portflow.config import Settings
from producers.replay import make_producer
from tests.support.cli import portflow
from tests.support.events import train

pytestmark = pytest.mark.slow

GOOD = train("t-1", teu=110)


def listed(env) -> list[dict]:
    return [json.loads(line) for line in portflow(env, "dlq", "list", "--json").splitlines()]


def dlq_replay(env, *args: str) -> str:
    """`portflow dlq replay --yes ARGS…`; what it said."""
    done = subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", "dlq", "replay", "--yes", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


def wait_for(env, condition, what: str) -> list[dict]:
    deadline = time.monotonic() + 60
    while not condition(groups := listed(env)):
        assert time.monotonic() < deadline, f"{what}: {groups}"
        time.sleep(0.5)
    return groups


def replay_lines(env, tmp_path, lines) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(x) if isinstance(x, dict) else x for x in lines) + "\n")
    portflow(env, "replay", str(path), "--wait", "--timeout", "60")


@pytest.mark.brokers("apache-kafka", "tansu")
def test_list_and_replay_dead_letters(stack_env, tmp_path, worker_factory):
    worker_factory()
    replay_lines(
        stack_env,
        tmp_path,
        [
            GOOD,
            {**GOOD, "event_id": "t-2", "teu": -3},
            "not json at all",
            {**GOOD, "event_id": "t-3", "service": "china-mars"},
        ],
    )

    letters = listed(stack_env)
    assert sorted(d["code"] for d in letters) == ["invalid_field", "invalid_field", "not_json"]
    assert {(d["status"], d["attempts"]) for d in letters} == {("rejected", 1)}
    by_code = {d["code"]: d for d in letters}
    assert by_code["not_json"]["value"] == "not json at all"
    assert by_code["not_json"]["source_topic"].endswith("shipments")
    batch_letters = [d for d in letters if d["batch_index"] is not None]
    assert {d["source_topic"] for d in batch_letters} == {
        stack_env["PORTFLOW_TOPIC_PREFIX"] + "trains"
    }
    assert "teu" in " ".join(d["reason"] for d in batch_letters)

    only_bad_fields = json.loads(
        portflow(stack_env, "dlq", "list", "--json", "--code", "not_json").splitlines()[0]
    )
    assert only_bad_fields["code"] == "not_json"

    said = dlq_replay(stack_env)
    assert "re-drove 3 dead letter(s)" in said, said
    assert "2 to " in said, said
    # still invalid: each is rejected again, and is still one event with two attempts
    groups = wait_for(
        stack_env,
        lambda gs: all(g["attempts"] == 2 for g in gs),
        "re-driven letters were not rejected again",
    )
    assert len(groups) == 3
    assert {g["status"] for g in groups} == {"rejected-again"}
    dlq = stack_env["PORTFLOW_TOPIC_PREFIX"] + "dlq"
    for group, first in zip(
        sorted(groups, key=lambda g: g["source"]),
        sorted(letters, key=lambda g: g["source"]),
        strict=True,
    ):
        assert [e["event"] for e in group["history"]] == ["rejected", "redriven", "rejected"]
        assert group["redriven_from"] == f"{dlq}:{first['partition']}:{first['offset']}"

    said = dlq_replay(stack_env)
    assert "nothing to re-drive; skipped 3 already re-driven (use --again)" in said, said

    said = dlq_replay(stack_env, "--again", "--limit", "1")
    assert "re-drove 1 dead letter(s)" in said, said
    assert "skipped 2 beyond --limit 1" in said, said
    wait_for(
        stack_env,
        lambda gs: sorted(g["attempts"] for g in gs) == [2, 2, 3],
        "the letter re-driven again was not rejected again",
    )


def test_an_accepted_redrive_is_not_redriven_again_nor_duplicated_by_a_rebuild(
    stack_env, tmp_path, worker_factory
):
    worker_factory()
    replay_lines(stack_env, tmp_path, [{**GOOD, "event_id": "t-2", "teu": -3}])
    # a letter of an event rejected under an old rule, valid now
    settings = Settings.from_env(stack_env)
    producer = make_producer(settings)
    producer.send(
        settings.dlq_topic,
        value=json.dumps({**GOOD, "event_id": "t-9"}).encode(),
        headers=[
            (header.REASON, b"an old rule"),
            (header.CODE, b"invalid_field"),
            (header.SOURCE_TOPIC, settings.topic("train").encode()),
            (header.SOURCE_PARTITION, b"0"),
            (header.SOURCE_OFFSET, b"999"),
        ],
    )
    producer.flush()
    producer.close()

    said = dlq_replay(stack_env)
    assert "re-drove 2 dead letter(s)" in said, said
    expected = {"invalid_field:rejected-again", "invalid_field:accepted"}

    def settled(groups):
        return {f"{g['code']}:{g['status']}" for g in groups} == expected

    wait_for(stack_env, settled, "the re-drives were not handled")
    portflow(stack_env, "rebuild", "--yes", "--wait", "--timeout", "120")
    # the invalid event and its re-drive are rejected once more each: one event, four letters
    groups = wait_for(
        stack_env,
        lambda gs: settled(gs) and sum(g["letters"] for g in gs) == 5,
        "the rebuild's rejections did not join their events",
    )
    assert sorted((g["attempts"], g["letters"]) for g in groups) == [(1, 1), (2, 4)]

    said = dlq_replay(stack_env)
    assert "nothing to re-drive; skipped " in said
    assert "1 accepted after a re-drive" in said
    assert "1 already re-driven (use --again)" in said, said
    report = json.loads(
        portflow(stack_env, "report", "--period", "2024", "--measure", "teu", "--json")
    )
    assert report["total"]["current"] == 110  # the accepted event, counted once
