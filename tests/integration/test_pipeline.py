"""End to end through real tansu, redis-server and worker processes: replay and report
(crashes and other faults: test_faults.py).

Expected figures come from ``tests/support/oracle.py``, which reads the replay file on its own.
"""

from __future__ import annotations

import pytest

from tests.support.cli import portflow
from tests.support.pipeline import check_reports, dead_letters, scrape, write_replay_file

pytestmark = pytest.mark.slow


@pytest.mark.brokers("apache-kafka", "tansu")
def test_replay_gives_exact_reports_and_replaying_again_changes_nothing(
    stack_env, tmp_path, worker_factory
):
    path = tmp_path / "events.jsonl"
    oracle = write_replay_file(path, events=4000, seed=11)
    worker_factory()

    portflow(stack_env, "replay", str(path), "--wait", "--timeout", "120")
    check_reports(stack_env, oracle)
    table = portflow(stack_env, "report", "--period", "2024", "--by", "port")
    assert "TOTAL" in table

    metrics = scrape(stack_env["PORTFLOW_METRICS_ADDR"])
    assert metrics["portflow_events_applied_total"] == len(oracle.events)
    assert metrics["portflow_events_rejected_total"] == oracle.dead_letters

    letters = dead_letters(stack_env)
    assert len(letters) == oracle.dead_letters
    for letter in letters:
        headers = dict(letter.headers)
        assert headers["portflow-reason"]
        assert headers["portflow-source-topic"]
        assert int(headers["portflow-source-offset"]) >= 0

    portflow(stack_env, "replay", str(path), "--batch", "1", "--wait", "--timeout", "120")
    check_reports(stack_env, oracle)
    assert len(dead_letters(stack_env)) == 2 * oracle.dead_letters
