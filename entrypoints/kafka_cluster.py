"""Apache Kafka as child processes: one or three KRaft nodes (each broker and controller) on
127.0.0.1, for ``portflow up --broker apache-kafka`` and the tests.

The broker's jars come from Maven Central (``deploy/kafka/pom.xml``, fetched once by
``scripts/fetch-kafka.sh``); a JDK 17 runs them. The pom's release (4.x) is the default; an
older release the suite still proves (a ``kafka-<release>`` profile of the pom, fetched into
``lib-<release>``) runs instead when PORTFLOW_KAFKA_VERSION names it. A node's log directory is
formatted once, so a node restarted on it keeps its log. The settings every broker shares with
the compose stack are in ``deploy/kafka/broker.properties``; :func:`node_properties` adds a
node's identity, listeners and the replication its cluster's size allows.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import uuid
import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from entrypoints.processes import Child, StackError, free_port, spawn, wait_until
from portflow.errors import EXIT_USAGE

KAFKA_HOME = Path(__file__).resolve().parents[1] / "deploy" / "kafka"
FETCH_COMMAND = "bash scripts/fetch-kafka.sh"
JAVA_RELEASE = 17
HEAP = ("-Xms256m", "-Xmx512m")  # a test broker needs little; three fit beside everything else
JVM_OPTIONS = (*HEAP, "-XX:+UseSerialGC", "-Djava.awt.headless=true")
READY_LINE = b"Kafka Server started"
VERSION_VARIABLE = "PORTFLOW_KAFKA_VERSION"
_POM = "{http://maven.apache.org/POM/4.0.0}"
# What a broker logs when it refuses a request for its API version: 4.x's network processor
# ("... unsupported version N", "... disabled api ..."), the SASL authenticator ("Version N is not
# supported for apiKey ..."), and a request whose body it cannot read at that version.
REFUSED_REQUEST = re.compile(
    r"unsupported version|is not supported for apiKey|disabled api|"
    r"UnsupportedVersionException|Error getting request for apiKey"
)

# Embedded and test brokers only: a consumer group's coordinator is ready sooner with 4 offsets
# partitions than with 50, and a replica that stops fetching leaves the ISR within seconds.
EMBEDDED_PROPERTIES = {"offsets.topic.num.partitions": "4", "replica.lag.time.max.ms": "5000"}


class KafkaUnavailable(StackError):
    """Java 17 or the broker's jars are missing: the message says what to install (exit 2)."""

    exit_code = EXIT_USAGE


def shared_properties(path: Path = KAFKA_HOME / "broker.properties") -> dict[str, str]:
    """The settings of ``deploy/kafka/broker.properties`` (production's and the tests')."""
    properties = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            properties[key.strip()] = value.strip()
    return properties


def replication_properties(nodes: int) -> dict[str, str]:
    """Replication for a cluster of ``nodes``: three copies and two in sync where there are
    three brokers, so that acks=all survives the loss of any one of them."""
    copies = str(min(3, nodes))
    in_sync = "2" if nodes >= 3 else "1"
    return {
        "default.replication.factor": copies,
        "offsets.topic.replication.factor": copies,
        "transaction.state.log.replication.factor": copies,
        "min.insync.replicas": in_sync,
        "transaction.state.log.min.isr": in_sync,
    }


@dataclass(frozen=True)
class BrokerSecurity:
    """A SASL_SSL listener with SCRAM-SHA-512: the users made at format time (the first is the
    brokers' own) and a PEM key and certificate chain signed by ``ca_file``."""

    users: Mapping[str, str]
    ca_file: Path
    keystore_file: Path  # private key (PKCS#8) followed by the certificate chain

    def properties(self, listener: str) -> dict[str, str]:
        name, password = next(iter(self.users.items()))
        jaas = (
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{name}" password="{password}";'
        )
        return {
            "sasl.enabled.mechanisms": "SCRAM-SHA-512",
            "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
            f"listener.name.{listener.lower()}.scram-sha-512.sasl.jaas.config": jaas,
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(self.keystore_file),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(self.ca_file),
        }

    def format_arguments(self) -> list[str]:
        arguments = []
        for name, password in self.users.items():
            arguments += ["--add-scram", f"SCRAM-SHA-512=[name={name},password={password}]"]
        return arguments


@dataclass
class KafkaNode:
    node_id: int
    port: int
    controller_port: int
    directory: Path
    child: Child | None = None

    @property
    def log_dir(self) -> Path:
        return self.directory / "log"

    @property
    def config_file(self) -> Path:
        return self.directory / "server.properties"

    def alive(self) -> bool:
        return self.child is not None and self.child.alive()


def node_properties(
    node: KafkaNode, voters: str, nodes: int, security: BrokerSecurity | None = None
) -> dict[str, str]:
    listener = "SASL_SSL" if security else "PLAINTEXT"
    properties = {
        "process.roles": "broker,controller",
        "node.id": str(node.node_id),
        "controller.quorum.voters": voters,
        "listeners": (
            f"{listener}://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}"
        ),
        "advertised.listeners": f"{listener}://127.0.0.1:{node.port}",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": f"{listener}:{listener},CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": listener,
        "log.dirs": str(node.log_dir),
        **replication_properties(nodes),
        **shared_properties(),
        **EMBEDDED_PROPERTIES,
    }
    if security:
        properties.update(security.properties(listener))
    return properties


def java_binary() -> str:
    """A ``java`` of release 17 or newer (JAVA_HOME's first), or KafkaUnavailable."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).exists():
        raise KafkaUnavailable(
            f"Apache Kafka needs Java {JAVA_RELEASE} or newer and no `java` was found: install "
            "it (Debian: `sudo apt-get install openjdk-17-jre-headless`) or set JAVA_HOME"
        )
    shown = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30).stderr
    match = re.search(r'version "(\d+)', shown)
    if not match or int(match[1]) < JAVA_RELEASE:
        raise KafkaUnavailable(
            f"Apache Kafka needs Java {JAVA_RELEASE} or newer; {java} is "
            f"{shown.strip().splitlines()[0] if shown.strip() else 'unknown'}"
        )
    return java


def kafka_releases(pom: Path = KAFKA_HOME / "pom.xml") -> tuple[str, ...]:
    """The Apache Kafka releases the pom fetches: its default first, then its profiles'."""
    root = ElementTree.parse(pom).getroot()  # noqa: S314  portflow's own pom, not user input
    default = root.findtext(f"{_POM}properties/{_POM}kafka.version")
    if not default:
        raise KafkaUnavailable(f"{pom} names no kafka.version: restore it from portflow's source")
    older = [
        p.findtext(f"{_POM}properties/{_POM}kafka.version")
        for p in root.iterfind(f"{_POM}profiles/{_POM}profile")
    ]
    return (default, *(release for release in older if release))


def kafka_release(env: Mapping[str, str] = os.environ) -> str:
    """The release to run: PORTFLOW_KAFKA_VERSION if set (one the pom fetches), else the pom's."""
    releases = kafka_releases()
    wanted = env.get(VERSION_VARIABLE, "").strip()
    if wanted and wanted not in releases:
        raise KafkaUnavailable(
            f"{VERSION_VARIABLE}={wanted}: the Apache Kafka releases here are "
            f"{', '.join(releases)} (deploy/kafka/pom.xml)"
        )
    return wanted or releases[0]


def kafka_lib(release: str, home: Path = KAFKA_HOME) -> Path:
    """Where fetch-kafka.sh puts a release's jars: lib for the pom's default, lib-<release>."""
    default = kafka_releases(home / "pom.xml")[0]
    return home / "lib" if release == default else home / f"lib-{release}"


def kafka_classpath(release: str, home: Path = KAFKA_HOME) -> str:
    lib = kafka_lib(release, home)
    if not any(lib.glob(f"kafka_2.13-{release}.jar")):
        raise KafkaUnavailable(
            f"the Apache Kafka {release} jars are not in {lib}: fetch them from Maven Central "
            f"with `{FETCH_COMMAND}` (needs Maven; `bash scripts/setup.sh` runs it too)"
        )
    return str(lib / "*")


def refused_requests(log_text: str) -> list[str]:
    """The lines of a broker's log that show a request refused for its API version (KIP-896)."""
    return [line for line in log_text.splitlines() if REFUSED_REQUEST.search(line)]


def new_cluster_id() -> str:
    """A KRaft cluster id, as `kafka-storage.sh random-uuid` makes them (no leading dash)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not text.startswith("-"):
            return text


@dataclass
class KafkaCluster:
    """``nodes`` KRaft nodes under ``home`` (one directory each), on free ports unless the
    first broker's port is given."""

    home: Path
    nodes: int = 1
    port: int | None = None
    security: BrokerSecurity | None = None
    overrides: Mapping[str, str] = field(default_factory=dict)
    log_dir: Path | None = None  # the nodes' logs; default: home/logs
    release: str = field(default_factory=kafka_release)
    members: list[KafkaNode] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.members:
            ports = [self.port or free_port(), *(free_port() for _ in range(self.nodes - 1))]
            self.members = [
                KafkaNode(i + 1, ports[i], free_port(), self.home / f"node-{i + 1}")
                for i in range(self.nodes)
            ]

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{n.port}" for n in self.members)

    @property
    def logs(self) -> Path:
        return self.log_dir or self.home / "logs"

    def node(self, node_id: int) -> KafkaNode:
        return next(n for n in self.members if n.node_id == node_id)

    def start(self, timeout_s: float = 120) -> None:
        """Format what is not formatted yet, start every node, wait until each serves."""
        java, classpath = java_binary(), kafka_classpath(self.release)
        self._write_configs()
        cluster_id = self._cluster_id()  # one for every node, before they are formatted at once
        with ThreadPoolExecutor(len(self.members)) as pool:
            list(pool.map(lambda n: self._format(java, classpath, n, cluster_id), self.members))
        try:
            for node in self.members:
                self._spawn(java, classpath, node)
            for node in self.members:
                self._wait_ready(node, timeout_s)
        except BaseException:
            self.stop()
            raise

    def restart_node(self, node_id: int, timeout_s: float = 120) -> None:
        """Start a stopped or killed node again on its log."""
        node = self.node(node_id)
        self._spawn(java_binary(), kafka_classpath(self.release), node)
        self._wait_ready(node, timeout_s)

    def kill_node(self, node_id: int) -> None:
        """SIGKILL one node: the crash its log and its peers must survive."""
        child = self.node(node_id).child
        if child:
            child.kill()

    def stop(self) -> None:
        """SIGTERM every node at once (a controlled shutdown), SIGKILL what outlasts it."""
        running = [n.child for n in self.members if n.child is not None and n.child.alive()]
        for child in running:
            child.terminate()
        for child in running:
            child.stop(timeout_s=20)

    def _write_configs(self) -> None:
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.members)
        for node in self.members:
            node.directory.mkdir(parents=True, exist_ok=True)
            properties = {
                **node_properties(node, voters, self.nodes, self.security),
                **self.overrides,
            }
            node.config_file.write_text("".join(f"{k}={v}\n" for k, v in properties.items()))

    def _cluster_id(self) -> str:
        path = self.home / "cluster-id"
        if not path.exists():
            self.home.mkdir(parents=True, exist_ok=True)
            path.write_text(new_cluster_id())
        return path.read_text().strip()

    def _format(self, java: str, classpath: str, node: KafkaNode, cluster_id: str) -> None:
        if (node.log_dir / "meta.properties").exists():
            return  # formatted before: a restart keeps the log
        argv = [
            java,
            *JVM_OPTIONS,
            "-cp",
            classpath,
            *self._log_options(),
            "kafka.tools.StorageTool",
            "format",
            "-t",
            cluster_id,
            "-c",
            str(node.config_file),
        ]
        if self.security:
            argv += self.security.format_arguments()
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise StackError(
                f"formatting Kafka node {node.node_id} failed:\n{done.stdout}{done.stderr}"
            )

    def _log_options(self) -> list[str]:
        """Both backends' configurations: 4.x logs through Log4j 2, 3.x through reload4j."""
        return [
            f"-Dlog4j2.configurationFile={KAFKA_HOME / 'log4j2.properties'}",
            f"-Dlog4j.configuration=file:{KAFKA_HOME / 'log4j.properties'}",
        ]

    def _spawn(self, java: str, classpath: str, node: KafkaNode) -> None:
        argv = [
            java,
            *JVM_OPTIONS,
            *self._log_options(),
            "-cp",
            classpath,
            "kafka.Kafka",
            str(node.config_file),
        ]
        node.child = spawn(f"kafka-{node.node_id}", argv, self.logs)

    def _wait_ready(self, node: KafkaNode, timeout_s: float) -> None:
        """Until the node logs that it started (its broker serves and is unfenced)."""
        child = node.child
        if child is None:
            raise KafkaUnavailable(f"Kafka node {node.node_id} was never started")
        wait_until(
            lambda: child.logged_since_start(READY_LINE),
            child,
            f"Kafka node {node.node_id} on 127.0.0.1:{node.port}",
            timeout_s,
        )
