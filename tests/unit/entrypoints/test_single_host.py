"""`portflow up --data`'s pieces that need no server: the data directory's lock, the layout
check, the disk gauges, the systemd unit."""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from entrypoints.cli import cli
from entrypoints.embedded import DataDir
from entrypoints.processes import StackError
from portflow.adapters.redis import LAYOUT, LayoutConflict
from portflow.adapters.redis.progress import refuse_foreign_layout
from streams.metrics import DataDirCollector

UNIT = Path(__file__).resolve().parents[3] / "deploy" / "systemd" / "portflow.service"


def test_a_data_directory_is_locked_with_the_holders_pid_and_unlocked_by_it(tmp_path):
    data = DataDir(tmp_path / "data")
    data.lock()
    assert data.lock_file.read_text().strip() == str(os.getpid())
    data.unlock()
    assert not data.lock_file.exists()


def test_a_second_up_on_a_locked_directory_is_refused_naming_the_holder(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "portflow"]
    )  # a live process that is portflow's by its name
    try:
        while b"time.sleep" not in Path(f"/proc/{holder.pid}/cmdline").read_bytes():
            time.sleep(0.01)  # until it has exec'd (a forked child shows its parent's)
        data = DataDir(tmp_path)
        data.lock_file.write_text(f"{holder.pid}\n")
        with pytest.raises(StackError, match=f"in use by portflow up \\(pid {holder.pid}\\)"):
            data.lock()
    finally:
        holder.kill()
        holder.wait(30)


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path):
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()
    data = DataDir(tmp_path)
    data.lock_file.write_text(f"{gone}\n")
    data.lock()
    assert data.holder() == os.getpid()


def test_data_with_tansu_is_refused_before_anything_starts(tmp_path):
    result = CliRunner().invoke(cli, ["up", "--broker", "tansu", "--data", str(tmp_path)])
    assert result.exit_code == 2
    assert "tansu keeps its records in memory only" in result.output
    assert not any(tmp_path.iterdir())


def test_the_layout_of_a_state_made_before_it_was_recorded_is_ours():
    refuse_foreign_layout(None)
    refuse_foreign_layout(str(LAYOUT).encode())


def test_a_foreign_layout_is_refused_naming_both_and_the_way_forward():
    with pytest.raises(LayoutConflict) as refused:
        refuse_foreign_layout(b"7")
    message = str(refused.value)
    assert f"key layout 7; this portflow reads layout {LAYOUT}" in message
    assert "portflow rebuild --yes" in message
    assert "DIR/redis" in message


def test_the_data_directory_gauges_count_each_part_and_the_disk(tmp_path):
    (tmp_path / "kafka" / "node-1").mkdir(parents=True)
    (tmp_path / "kafka" / "node-1" / "00000.log").write_bytes(b"x" * 100_000)
    (tmp_path / "redis").mkdir()
    (tmp_path / "redis" / "appendonly.aof").write_bytes(b"y" * 10_000)
    registry = CollectorRegistry()
    registry.register(DataDirCollector(str(tmp_path)))
    samples = {
        (s.name, s.labels.get("part")): s.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for s in family.samples
    }
    assert samples[("portflow_data_dir_bytes", "kafka")] >= 100_000
    assert 10_000 <= samples[("portflow_data_dir_bytes", "redis")] < 100_000
    assert (
        0
        < samples[("portflow_data_dir_free_bytes", None)]
        <= samples[("portflow_data_dir_filesystem_bytes", None)]
    )


def test_the_systemd_unit_restarts_on_failure_stops_with_sigterm_and_logs_to_the_journal():
    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.read_string(UNIT.read_text())
    service = unit["Service"]
    assert service["Restart"] == "on-failure"
    assert service["KillSignal"] == "SIGTERM"
    assert service["StandardOutput"] == service["StandardError"] == "journal"
    assert "up --broker apache-kafka --data ${PORTFLOW_DATA_DIR}" in service["ExecStart"]
    assert service["EnvironmentFile"].endswith("portflow.env")
