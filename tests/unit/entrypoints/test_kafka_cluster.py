"""The Apache Kafka launcher's pure parts: node settings by cluster size and security, cluster
ids, the release to run and where its jars are, what a broker logs when it refuses a request for
its API version, and the messages (exit 2) when Java 17 or the broker's jars are missing."""

import base64
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from entrypoints.kafka_cluster import (
    KAFKA_HOME,
    BrokerSecurity,
    KafkaCluster,
    KafkaUnavailable,
    java_binary,
    kafka_classpath,
    kafka_lib,
    kafka_release,
    kafka_releases,
    new_cluster_id,
    node_properties,
    refused_requests,
    replication_properties,
    shared_properties,
)


def test_three_brokers_keep_three_copies_and_need_two_in_sync():
    assert replication_properties(3) == {
        "default.replication.factor": "3",
        "offsets.topic.replication.factor": "3",
        "transaction.state.log.replication.factor": "3",
        "min.insync.replicas": "2",
        "transaction.state.log.min.isr": "2",
    }
    assert set(replication_properties(1).values()) == {"1"}


def test_every_node_shares_the_voters_and_has_listeners_of_its_own(tmp_path):
    cluster = KafkaCluster(tmp_path, nodes=3)
    voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in cluster.members)
    nodes = [node_properties(n, voters, 3) for n in cluster.members]
    assert [p["node.id"] for p in nodes] == ["1", "2", "3"]
    assert {p["controller.quorum.voters"] for p in nodes} == {voters}
    ports = {n.port for n in cluster.members} | {n.controller_port for n in cluster.members}
    assert len(ports) == 6
    assert cluster.bootstrap == ",".join(f"127.0.0.1:{n.port}" for n in cluster.members)
    assert all(p["auto.create.topics.enable"] == "false" for p in nodes)
    assert shared_properties().items() <= nodes[0].items()


def test_a_secured_node_listens_with_sasl_ssl_and_scram(tmp_path):
    security = BrokerSecurity(
        {"broker": "b-secret", "app": "a-secret"}, tmp_path / "ca.pem", tmp_path / "keystore.pem"
    )
    node = KafkaCluster(tmp_path).members[0]
    properties = node_properties(node, f"1@127.0.0.1:{node.controller_port}", 1, security)
    assert properties["listeners"].startswith(f"SASL_SSL://127.0.0.1:{node.port},")
    assert properties["listener.security.protocol.map"] == "SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT"
    assert (
        'username="broker" password="b-secret"'
        in properties["listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"]
    )
    assert security.format_arguments() == [
        "--add-scram",
        "SCRAM-SHA-512=[name=broker,password=b-secret]",
        "--add-scram",
        "SCRAM-SHA-512=[name=app,password=a-secret]",
    ]


def test_cluster_ids_are_sixteen_bytes_in_url_safe_base64():
    for _ in range(200):
        cluster_id = new_cluster_id()
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16
        assert not cluster_id.startswith("-")


def test_the_pom_runs_4x_by_default_and_keeps_3_9_as_the_older_release():
    default, *older = kafka_releases()
    assert default.startswith("4.")
    assert older == ["3.9.2"]
    assert kafka_release({}) == default
    assert kafka_release({"PORTFLOW_KAFKA_VERSION": "3.9.2"}) == "3.9.2"


def test_the_makefiles_3_9_lane_runs_a_release_the_pom_fetches():
    makefile = (KAFKA_HOME.parents[1] / "Makefile").read_text()
    lane = re.search(r"^KAFKA_3_9 := (\S+)$", makefile, flags=re.M)[1]
    assert lane in kafka_releases()[1:]
    assert lane.startswith("3.9.")


def test_each_release_has_its_own_lib_directory():
    assert kafka_lib(kafka_releases()[0]) == KAFKA_HOME / "lib"
    assert kafka_lib("3.9.2") == KAFKA_HOME / "lib-3.9.2"


def test_a_pom_without_its_default_release_is_refused_instead_of_running_none(tmp_path):
    pom = tmp_path / "pom.xml"
    text = (KAFKA_HOME / "pom.xml").read_text()
    pom.write_text(re.sub(r"<kafka.version>[^<]*</kafka.version>", "", text, count=1))
    with pytest.raises(KafkaUnavailable, match=r"names no kafka\.version"):
        kafka_releases(pom)


def test_a_release_the_pom_does_not_fetch_is_refused_naming_those_it_does():
    with pytest.raises(KafkaUnavailable, match=r"PORTFLOW_KAFKA_VERSION=3\.8\.0: .* 3\.9\.2"):
        kafka_release({"PORTFLOW_KAFKA_VERSION": "3.8.0"})


def test_missing_jars_name_the_release_and_the_command_that_fetches_them(tmp_path):
    shutil.copy(KAFKA_HOME / "pom.xml", tmp_path)
    with pytest.raises(
        KafkaUnavailable, match=r"3\.9\.2 jars .* `bash scripts/fetch-kafka.sh`"
    ) as raised:
        kafka_classpath("3.9.2", tmp_path)
    assert raised.value.exit_code == 2


def test_the_refusals_of_a_removed_api_version_are_found_in_a_broker_log():
    log = "\n".join(
        [
            "[2026-12-07 19:18:01,993] INFO [BrokerServer id=1] started "
            "(kafka.server.BrokerServer)",
            "[2026-12-07 19:18:01,993] ERROR Exception while processing request from "
            "127.0.0.1:1-127.0.0.1:2-0-0 (kafka.network.Processor)",
            "org.apache.kafka.common.errors.UnsupportedVersionException: Received request for api "
            "with key 0 (Produce) and unsupported version 0",
            "org.apache.kafka.common.errors.InvalidRequestException: Received request for disabled "
            "api with key 68 (ConsumerGroupHeartbeat) and version 0",
            "[2026-12-07 19:18:02,000] INFO Failed authentication with /127.0.0.1 (channelId=1) "
            "(Version 0 is not supported for apiKey SASL_HANDSHAKE) "
            "(org.apache.kafka.common.network.Selector)",
            "[2026-12-07 19:18:02,993] INFO Terminating process due to signal SIGTERM "
            "(org.apache.kafka.common.utils.internals.LoggingSignalHandler)",
        ]
    )
    found = refused_requests(log)
    assert len(found) == 3
    assert "(Produce) and unsupported version 0" in found[0]
    assert "disabled api with key 68" in found[1]
    assert "not supported for apiKey SASL_HANDSHAKE" in found[2]


def test_no_java_names_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-jdk"))
    with pytest.raises(KafkaUnavailable, match="Java 17"):
        java_binary()


@pytest.mark.parametrize(
    "command", [["up"], ["up", "--broker", "apache-kafka"], ["demo", "--once"]]
)
def test_up_and_demo_run_apache_kafka_by_default_and_without_java_point_at_tansu(tmp_path, command):
    env = {
        **os.environ,
        "JAVA_HOME": str(tmp_path / "no-jdk"),
        "PORTFLOW_HOME": str(tmp_path / "home"),
        "PORTFLOW_KAFKA_BOOTSTRAP": "127.0.0.1:1",
        "PORTFLOW_REDIS_URL": "redis://127.0.0.1:2/0",
    }
    done = subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 2, done.stderr
    assert "Java 17" in done.stderr
    assert "openjdk-17-jre-headless" in done.stderr
    assert "--broker tansu" in done.stderr
