"""The batching intake (streams.intake) under rebalances, on a real broker, Redis and workers:
single-event records arrive faster than one worker applies them, workers join, die and leave
while fetches are queued, batched and in Redis; Kafka's committed offsets never pass what Redis
holds, and the totals are exact."""

from __future__ import annotations

import threading
import time

import pytest

from portflow.adapters.kafka import admin_client
from portflow.adapters.redis import RedisStore
from portflow.config import Settings
from portflow.domain.partitions import partition_name
from tests.support.pipeline import (
    check_reports,
    finish,
    start_replay,
    wait_for_progress,
    write_replay_file,
)

pytestmark = pytest.mark.slow


class CommitWatch(threading.Thread):
    """Samples the group's committed offsets, then the marks: a commit past mark + 1 (the next
    offset to apply) at any sample would let a restart skip records Redis never got."""

    def __init__(self, settings: Settings, store: RedisStore) -> None:
        super().__init__(daemon=True)
        self.settings, self.store = settings, store
        self.admin = admin_client(settings)
        self.samples = 0
        self.committed_seen = 0
        self.violations: list[str] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            group = self.settings.group_id
            try:
                committed = self.admin.list_group_offsets(group)[group]
            except Exception:
                time.sleep(0.2)
                continue
            marks = self.store.marks()  # read after: marks only grow
            for tp, meta in committed.items():
                if tp.topic not in self.settings.event_topics or meta.offset < 0:
                    continue
                self.committed_seen += 1
                mark = marks.get(partition_name(tp.topic, tp.partition), -1)
                if meta.offset > mark + 1:
                    self.violations.append(
                        f"{tp.topic}:{tp.partition} committed {meta.offset}, mark {mark}"
                    )
            self.samples += 1
            time.sleep(0.2)

    def stop(self) -> None:
        self.done.set()
        self.join(10)
        self.admin.close()


def test_rebalances_during_a_single_event_backlog_keep_commits_behind_redis_and_totals_exact(
    stack_env, tmp_path, worker_factory
):
    path = tmp_path / "events.jsonl"
    # 40 s of publishing: the joins, the kill and the leave (each waiting for a rebalance) all
    # happen while records still arrive, however fast the workers are
    oracle = write_replay_file(path, events=160_000, seed=47)
    settings = Settings.from_env(stack_env)
    store = RedisStore.from_url(settings.redis_url, settings.topic_prefix)
    watch = CommitWatch(settings, store)
    watch.start()
    replay = start_replay(stack_env, path, batch=1, rate=4000)  # single-event records
    time.sleep(4)  # a backlog: the first worker starts with full fetches waiting
    workers = [worker_factory()]
    try:
        assert wait_for_progress(store, replay, 2000)
        workers.append(worker_factory())  # joins while fetches are queued and in Redis
        assert wait_for_progress(store, replay, 2000)
        workers.append(worker_factory())
        assert wait_for_progress(store, replay, 2000)
        workers[0].kill()  # dies mid-batch: its partitions are read again from the marks
        assert wait_for_progress(store, replay, 2000)
        workers[1].stop()  # leaves cleanly
        finish(replay)
    finally:
        watch.stop()
    check_reports(stack_env, oracle)
    assert watch.violations == []
    assert watch.samples > 20, "the watch saw no commit"
    assert watch.committed_seen > 0, "the watch saw no commit"
