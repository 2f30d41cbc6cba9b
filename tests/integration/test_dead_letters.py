"""`portflow dlq list` shows why and where from; `portflow dlq replay` re-drives to the source."""

import json
import subprocess
import sys
import time

import pytest
from tests.cli import portflow

pytestmark = pytest.mark.slow

GOOD = {"type": "train", "event_id": "t-1", "ts": "2024-03-14T00:15:00Z", "port": "khorgos",
        "service": "china-europe", "direction": "outbound", "teu": 110}


def listed(env) -> list[dict]:
    return [json.loads(line) for line in portflow(env, "dlq", "list", "--json").splitlines()]


@pytest.mark.brokers("apache-kafka", "tansu")
def test_list_and_replay_dead_letters(stack_env, tmp_path, worker_factory):
    path = tmp_path / "events.jsonl"
    lines = [GOOD, {**GOOD, "event_id": "t-2", "teu": -3}, "not json at all",
             {**GOOD, "event_id": "t-3", "service": "china-mars"}]
    path.write_text("\n".join(json.dumps(x) if isinstance(x, dict) else x for x in lines) + "\n")
    worker_factory()
    portflow(stack_env, "replay", str(path), "--wait", "--timeout", "60")

    letters = listed(stack_env)
    assert sorted(d["code"] for d in letters) == ["invalid_field", "invalid_field", "not_json"]
    by_code = {d["code"]: d for d in letters}
    assert by_code["not_json"]["value"] == "not json at all"
    assert by_code["not_json"]["source_topic"].endswith("shipments")
    batch_letters = [d for d in letters if d["batch_index"] is not None]
    assert {d["source_topic"] for d in batch_letters} == {stack_env["PORTFLOW_TOPIC_PREFIX"] + "trains"}
    assert "teu" in " ".join(d["reason"] for d in batch_letters)

    only_bad_fields = json.loads(portflow(stack_env, "dlq", "list", "--json", "--code",
                                          "not_json").splitlines()[0])
    assert only_bad_fields["code"] == "not_json"

    done = subprocess.run([sys.executable, "-m", "entrypoints.cli", "dlq", "replay", "--yes"],
                          env=stack_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "to " in done.stderr, done.stderr
    deadline = time.monotonic() + 60
    while len(listed(stack_env)) < 6:  # still invalid: each comes back once more
        assert time.monotonic() < deadline, "re-driven letters were not rejected again"
        time.sleep(0.5)
    assert len(listed(stack_env)) == 6
