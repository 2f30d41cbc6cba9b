"""The production stack (Dockerfile, docker-compose.yml, alertmanager/, .env.example), checked
without Docker.

Nothing here builds an image or starts a container: no Docker engine is needed or used. What is
checked:

- ``docker-compose config`` accepts docker-compose.yml with the values of .env.example and
  refuses it without the secrets (skipped where docker-compose is not on PATH: Debian/Ubuntu
  ``apt-get install --no-install-recommends docker-compose``);
- the YAML itself, interpolated here the way Compose does it: pinned images, bind-mounted paths
  that exist, depends_on with conditions, named volumes, a scalable worker, PORTFLOW_* settings
  that README.md documents and portflow accepts, and the wiring that other files rely on (the
  Prometheus scrape and alerting targets, the Grafana datasource and dashboard paths, the topics
  of the event contract);
- kafka-init's script, run with a stand-in for kafka-topics.sh;
- ``promtool check config`` on prometheus.yml with the rules the container would mount, and
  ``amtool check-config`` on alertmanager/alertmanager.yml (skipped without the tools);
- the Dockerfile's text (pinned base, non-root user, health check, entry point), its health
  check run against a local HTTP server, and the build context that .dockerignore lets through.
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import tomllib
from pathlib import Path

import pytest
import yaml

from entrypoints.kafka_cluster import kafka_releases, replication_properties, shared_properties
from portflow.config import Settings, parse_host_port

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
ALERTMANAGER_CONFIG = ROOT / "alertmanager" / "alertmanager.yml"
PROMETHEUS_CONFIG = ROOT / "prometheus" / "prometheus.yml"
GRAFANA = ROOT / "grafana"

SERVICES = {
    "kafka",
    "kafka-init",
    "redis",
    "worker",
    "api",
    "simulator",
    "cli",
    "prometheus",
    "alertmanager",
    "grafana",
}
LOCAL_IMAGE = "portflow:local"
SECRETS = ("REDIS_PASSWORD", "GRAFANA_ADMIN_PASSWORD", "PORTFLOW_API_TOKEN")
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}

DOCKER_COMPOSE = shutil.which("docker-compose")
PROMTOOL = shutil.which("promtool")
AMTOOL = shutil.which("amtool")
needs_docker_compose = pytest.mark.skipif(
    DOCKER_COMPOSE is None,
    reason="docker-compose is not on PATH (Debian/Ubuntu: apt-get install --no-install-recommends "
    "docker-compose); the compose file was only checked as YAML",
)
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not on PATH (Debian/Ubuntu: apt-get install prometheus)"
)
needs_amtool = pytest.mark.skipif(
    AMTOOL is None,
    reason="amtool is not on PATH (Debian/Ubuntu: apt-get install prometheus-alertmanager)",
)


# ---- helpers -------------------------------------------------------------------------------


def load_yaml(path: Path):
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def env_example() -> dict[str, str]:
    """The KEY=VALUE lines of .env.example (comments and blank lines skipped)."""
    values = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f".env.example: not KEY=VALUE: {line!r}"
            values[key.strip()] = value.strip()
    return values


_VARIABLE = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)


def interpolate(value, env: dict[str, str]):
    """Compose's variable substitution in every string of a parsed compose file.

    ``$$`` is a literal ``$``; ``${VAR:-default}`` / ``${VAR-default}``; ``${VAR:?message}`` /
    ``${VAR?message}`` fail (here: KeyError) when VAR is unset (or, with ``:``, empty).
    """
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match) -> str:
        if match[0] == "$$":
            return "$"
        name = match["name"] or match["bare"]
        op, arg = match["op"], match["arg"]
        current = env.get(name)
        missing = current is None or (op is not None and op.startswith(":") and current == "")
        if op and op.endswith("-"):
            return arg if missing else current
        if op and op.endswith("?"):
            if missing:
                raise KeyError(f"{name}: {arg}")
            return current
        return current or ""

    return _VARIABLE.sub(substitute, value)


def raw_compose() -> dict:
    return load_yaml(COMPOSE_FILE)


def compose(env: dict[str, str] | None = None) -> dict:
    """docker-compose.yml as Compose would run it with the values of .env.example."""
    return interpolate(raw_compose(), env_example() if env is None else env)


def service(name: str) -> dict:
    return compose()["services"][name]


def environment(svc: dict) -> dict[str, str]:
    env = svc.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def volume_mounts(svc: dict) -> list[tuple[str, str]]:
    """(source, target) of every short-syntax volume of a service."""
    mounts = []
    for entry in svc.get("volumes", []):
        assert isinstance(entry, str), f"use the short volume syntax: {entry!r}"
        source, target, *_ = entry.split(":")
        mounts.append((source, target))
    return mounts


def bind_source(svc: dict, target: str) -> str:
    found = [source for source, t in volume_mounts(svc) if t == target]
    assert len(found) == 1, f"expected one mount at {target}: {volume_mounts(svc)}"
    return found[0]


def container_port(svc: dict) -> int:
    """The container side of a service's one published port (``[addr:]host:container``)."""
    ports = svc.get("ports", [])
    assert len(ports) == 1, ports
    return int(str(ports[0]).split(":")[-1].split("/")[0])


def flag(command: list[str], name: str) -> str | None:
    """The value of ``--name=value`` in a command list."""
    for item in command:
        if item.startswith(f"--{name}="):
            return item.split("=", 1)[1]
    return None


def documented_settings() -> set[str]:
    """The PORTFLOW_* variables of README.md's configuration table."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return set(re.findall(r"^\| `(PORTFLOW_[A-Z0-9_]+)` \|", text, flags=re.M))


def contract_topics() -> set[str]:
    """The default topic names of the event contract (shared/spec/contract.md where this
    checkout has it, and README.md's summary of it)."""
    found = set()
    for path in (
        ROOT / "shared" / "spec" / "contract.md",
        ROOT.parent / "shared" / "spec" / "contract.md",
        ROOT / "README.md",
    ):
        if path.is_file():
            topics = set(
                re.findall(
                    r"^\| `(portflow\.[a-z.]+)` \|", path.read_text(encoding="utf-8"), flags=re.M
                )
            )
            assert not found or not topics or topics == found, f"{path}: {topics} != {found}"
            found |= topics
    assert found, "no topic table found in the contract or README.md"
    return found


def show(result: subprocess.CompletedProcess) -> str:
    return (
        f"$ {' '.join(map(str, result.args))}\nexit code {result.returncode}\n"
        f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )


def run(args: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT):
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


# ---- docker-compose config -----------------------------------------------------------------


def compose_env(**overrides) -> dict[str, str]:
    """This process's environment with .env.example's values exported (they take precedence over
    a local .env), minus variables set to None in ``overrides``."""
    env = {**os.environ, **env_example()}
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


# Compose v2 leaves services of inactive profiles out of `config`: name them all.
PROFILES = ["--profile", "simulator", "--profile", "tools"]


@needs_docker_compose
def test_docker_compose_config_accepts_the_stack():
    result = run(
        [
            DOCKER_COMPOSE,
            "-f",
            str(COMPOSE_FILE),
            "--env-file",
            str(ENV_EXAMPLE),
            *PROFILES,
            "config",
        ],
        env=compose_env(),
    )
    assert result.returncode == 0, show(result)
    resolved = yaml.safe_load(result.stdout)
    assert set(resolved["services"]) == SERVICES
    # The substitution this test does itself agrees with Compose's.
    ours = compose()["services"]
    for name in ("worker", "api", "simulator", "cli", "grafana"):
        assert environment(resolved["services"][name]) == environment(ours[name]), name
    assert resolved["services"]["redis"]["command"] == ours["redis"]["command"]


@needs_docker_compose
@pytest.mark.parametrize("secret", SECRETS)
def test_docker_compose_config_refuses_to_run_without_a_secret(secret, tmp_path):
    empty = tmp_path / "empty.env"  # stands in for .env, which may exist in a working copy
    empty.write_text("", encoding="utf-8")
    result = run(
        [DOCKER_COMPOSE, "-f", str(COMPOSE_FILE), "--env-file", str(empty), *PROFILES, "config"],
        env=compose_env(**{secret: None}),
    )
    assert result.returncode != 0, show(result)
    assert secret in result.stderr + result.stdout, show(result)


# ---- the compose file ----------------------------------------------------------------------


def test_the_services():
    assert set(compose()["services"]) == SERVICES
    assert "version" not in raw_compose(), "the compose specification has no version key"


def test_every_image_is_pinned():
    services = compose()["services"]
    built = {svc["image"] for svc in services.values() if "build" in svc}
    assert built == {LOCAL_IMAGE}
    for name, svc in services.items():
        image = svc["image"]
        if image in built:
            continue  # built from this repository's Dockerfile
        _repository, sep, tag = image.rpartition(":")
        assert sep, f"{name}: {image} has no tag"
        assert "/" not in tag, f"{name}: {image} has no tag"
        assert tag != "latest", f"{name}: {image} is not pinned to a release"
        assert re.search(r"\d+\.\d+\.\d+", tag), f"{name}: {image} is not pinned to a release"


def test_bind_mounts_exist_and_named_volumes_are_declared():
    config = compose()
    declared = set(config.get("volumes") or {})
    used = set()
    for name, svc in config["services"].items():
        for source, _target in volume_mounts(svc):
            if source.startswith((".", "/")):
                assert source.startswith("./"), f"{name}: {source}: use a path in the repository"
                assert (ROOT / source).exists(), f"{name}: {source} does not exist"
            else:
                assert source in declared, f"{name}: volume {source} is not declared"
                used.add(source)
    assert used == declared, f"declared but unused: {declared - used}"
    for name in ("kafka", "redis", "prometheus", "alertmanager", "grafana"):
        assert any(not s.startswith(".") for s, _ in volume_mounts(config["services"][name])), (
            f"{name} keeps its data in no named volume"
        )


def test_depends_on_uses_conditions():
    services = compose()["services"]
    for name, svc in services.items():
        depends = svc.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on without conditions"
        for other, spec in depends.items():
            assert other in services, f"{name} depends on unknown {other}"
            condition = spec.get("condition")
            assert condition in CONDITIONS, f"{name} → {other}: {condition}"
            target = services[other]
            if condition == "service_healthy":
                assert target.get("healthcheck", {}).get("test"), f"{other}: no healthcheck"
            if condition == "service_completed_successfully":
                assert target.get("restart") == "no", f"{other} must be a one-shot"
            assert "profiles" not in target, f"{name} depends on {other}, which is optional"
    worker = services["worker"]["depends_on"]
    assert worker["kafka-init"]["condition"] == "service_completed_successfully"
    assert worker["redis"]["condition"] == "service_healthy"
    assert services["kafka-init"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert services["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"
    assert (
        services["simulator"]["depends_on"]["kafka-init"]["condition"]
        == "service_completed_successfully"
    )


def test_long_running_services_restart_and_have_healthchecks():
    for name, svc in compose()["services"].items():
        if name in ("kafka-init", "cli"):
            assert svc["restart"] == "no", name
            continue
        assert svc["restart"] == "unless-stopped", name
        check = svc["healthcheck"]
        if name == "simulator":  # serves no metrics: the image's check does not apply
            assert check == {"disable": True}
        else:
            assert check["test"][0] in ("CMD", "CMD-SHELL"), name
            assert check["interval"], name


def test_the_worker_scales():
    services = compose()["services"]
    for name, svc in services.items():
        assert "container_name" not in svc, f"{name}: container_name prevents --scale"
    worker = services["worker"]
    assert "ports" not in worker, "a fixed host port prevents docker compose up --scale worker=N"
    assert worker["command"] == ["worker"]
    assert worker["build"] == "."
    assert worker["image"] == LOCAL_IMAGE
    # `docker compose up` resets a service to its scale: keep it in .env, within the partitions.
    assert raw_compose()["services"]["worker"]["scale"] == "${WORKER_REPLICAS:-1}"
    assert 1 <= int(worker["scale"]) <= int(environment(worker)["PORTFLOW_PARTITIONS"])
    host, port = parse_host_port(environment(worker)["PORTFLOW_METRICS_ADDR"], "metrics")
    assert host == "0.0.0.0", "Prometheus in another container cannot reach 127.0.0.1"
    assert f"127.0.0.1:{port}/metrics" in " ".join(worker["healthcheck"]["test"])
    assert "simulator" in services["simulator"]["profiles"], (
        "synthetic events must not flow into the aggregates unless asked for"
    )
    assert services["simulator"]["command"][0] == "simulate"


def test_portflow_settings_are_documented_and_valid():
    documented = documented_settings()
    assert {"PORTFLOW_KAFKA_BOOTSTRAP", "PORTFLOW_REDIS_URL", "PORTFLOW_METRICS_ADDR"} <= documented
    services = compose()["services"]
    for name, svc in services.items():
        if svc["image"] != LOCAL_IMAGE:
            continue
        env = environment(svc)
        used = {key for key in env if key.startswith("PORTFLOW_")}
        assert used <= documented, (
            f"{name}: not in README.md's configuration table: {used - documented}"
        )
        settings = Settings.from_env(env)  # raises ConfigError on a bad value
        host, port = parse_host_port(settings.kafka_bootstrap, "bootstrap")
        assert f"PLAINTEXT://{host}:{port}" in environment(services["kafka"])[
            "KAFKA_ADVERTISED_LISTENERS"
        ].split(","), name
        assert settings.session_timeout_s == 30
    for name in ("worker", "api", "cli"):
        settings = Settings.from_env(environment(services[name]))
        assert settings.redis_url == f"redis://:{env_example()['REDIS_PASSWORD']}@redis:6379/0", (
            name
        )
    assert "PORTFLOW_REDIS_URL" not in environment(services["simulator"])
    dockerfile_env = set(re.findall(r"\b(PORTFLOW_[A-Z0-9_]+)=", DOCKERFILE.read_text()))
    assert dockerfile_env <= documented


def test_the_api_serves_the_network_with_the_token_and_is_checked_on_its_port():
    from entrypoints.api.server import check_exposure

    api = service("api")
    assert api["image"] == LOCAL_IMAGE
    assert api["command"] == ["serve"]
    settings = Settings.from_env(environment(api))
    host, port = settings.api_addr
    assert host == "0.0.0.0", "Grafana in another container cannot reach 127.0.0.1"
    assert settings.api_token == env_example()["PORTFLOW_API_TOKEN"]
    check_exposure(settings)  # would refuse to start without the token
    assert container_port(api) == port
    assert f"127.0.0.1:{port}/healthz" in " ".join(api["healthcheck"]["test"])
    assert api["depends_on"]["redis"]["condition"] == "service_healthy"


def test_kafka_is_a_single_kraft_node():
    kafka = service("kafka")
    env = environment(kafka)
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert set(env["KAFKA_LISTENERS"].split(",")) == {"PLAINTEXT://:9092", "CONTROLLER://:9093"}
    assert env["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://kafka:9092"
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] == "CONTROLLER"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    for key in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
    ):
        assert env[key] == "1", key
    # kafka-storage format takes a base64 UUID (22 characters, 16 bytes).
    assert len(base64.urlsafe_b64decode(env["CLUSTER_ID"] + "==")) == 16
    assert bind_source(kafka, env["KAFKA_LOG_DIRS"]) == "kafka-data"
    assert "kafka-topics.sh --bootstrap-server localhost:9092 --list" in " ".join(
        kafka["healthcheck"]["test"]
    )


def compose_kafka_setting(name: str) -> str:
    """The environment variable the apache/kafka image turns into broker setting ``name``."""
    return "KAFKA_" + name.upper().replace(".", "_").replace("-", "___")


def test_kafka_runs_the_broker_settings_and_version_the_tests_run():
    """deploy/kafka holds what every embedded and test broker runs: the compose broker has the
    same shared settings, the replication of a one-node cluster and the same release."""
    env = environment(service("kafka"))
    wanted = {**shared_properties(), **replication_properties(nodes=1)}
    assert {name: env.get(compose_kafka_setting(name)) for name in wanted} == wanted
    version = kafka_releases()[0]
    for name in ("kafka", "kafka-init"):
        assert service(name)["image"] == f"apache/kafka:{version}"


def test_kafka_init_creates_the_contract_topics(tmp_path):
    """Runs kafka-init's script with a stand-in kafka-topics.sh that records its arguments."""
    init = service("kafka-init")
    assert init["image"] == service("kafka")["image"]
    entrypoint, script = init["entrypoint"], init["command"]
    assert entrypoint[0].endswith("bash")
    assert len(script) == 1
    log = tmp_path / "calls"
    stub = tmp_path / "kafka-topics.sh"
    stub.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {shlex.quote(str(log))}\n')
    stub.chmod(0o755)
    assert "/opt/kafka/bin/kafka-topics.sh" in script[0]
    result = run(
        ["bash", *entrypoint[1:], script[0].replace("/opt/kafka/bin/kafka-topics.sh", str(stub))]
    )
    assert result.returncode == 0, show(result)

    partitions = environment(service("worker"))["PORTFLOW_PARTITIONS"]
    created = {}
    for line in log.read_text().splitlines():
        args = line.split()
        assert args[:2] == ["--bootstrap-server", "kafka:9092"], line
        if "--create" in args:
            assert "--if-not-exists" in args, line
            assert args[args.index("--replication-factor") + 1] == "1", line
            created[args[args.index("--topic") + 1]] = args[args.index("--partitions") + 1]
    defaults = Settings()
    assert set(created) == contract_topics() == {*defaults.event_topics, defaults.dlq_topic}
    assert set(created.values()) == {partitions} == {env_example()["PORTFLOW_PARTITIONS"]}
    # Without PORTFLOW_PARTITIONS, kafka-init and the workers agree on the default.
    bare = compose({k: v for k, v in env_example().items() if k != "PORTFLOW_PARTITIONS"})
    default = environment(bare["services"]["worker"])["PORTFLOW_PARTITIONS"]
    assert f"--partitions {default} " in bare["services"]["kafka-init"]["command"][0]


def test_redis_persists_and_requires_the_password():
    redis_svc = service("redis")
    command = redis_svc["command"]
    options = dict(zip(command[1::2], command[2::2], strict=True))
    assert command[0] == "redis-server"
    assert options["--appendonly"] == "yes"
    assert options["--appendfsync"] == "everysec"
    assert options["--requirepass"] == env_example()["REDIS_PASSWORD"]
    assert options.get("--maxmemory-policy", "noeviction") == "noeviction", (
        "an evicting policy would drop aggregates"
    )
    assert bind_source(redis_svc, "/data") == "redis-data"
    assert "ping" in " ".join(redis_svc["healthcheck"]["test"])


def test_prometheus_finds_the_workers_and_alertmanager():
    services = compose()["services"]
    config = load_yaml(PROMETHEUS_CONFIG)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    (sd,) = jobs["portflow"]["dns_sd_configs"]
    _, metrics_port = parse_host_port(
        environment(services["worker"])["PORTFLOW_METRICS_ADDR"], "metrics"
    )
    assert sd["names"] == ["worker"]
    assert "worker" in services
    assert sd["port"] == metrics_port
    assert f"EXPOSE {metrics_port}" in DOCKERFILE.read_text()
    targets = [
        t
        for am in config["alerting"]["alertmanagers"]
        for sc in am["static_configs"]
        for t in sc["targets"]
    ]
    host, port = parse_host_port(targets[0], "alertmanager")
    assert targets == [f"{host}:{port}"]
    assert host in services
    assert container_port(services[host]) == port
    assert flag(services[host]["command"], "web.listen-address") in (None, f":{port}")


def test_prometheus_mounts_its_configuration_and_rules():
    prom = service("prometheus")
    command = prom["command"]
    config_path = flag(command, "config.file")
    assert bind_source(prom, config_path) == "./prometheus/prometheus.yml"
    (rules_glob,) = load_yaml(PROMETHEUS_CONFIG)["rule_files"]
    rules_dir = str(Path(rules_glob).parent)
    assert bind_source(prom, rules_dir) == "./prometheus/rules"  # not prometheus/tests
    assert bind_source(prom, flag(command, "storage.tsdb.path")) == "prometheus-data"
    retention = flag(command, "storage.tsdb.retention.time")
    match = re.fullmatch(r"(\d+)([dwy])", retention)
    days = int(match[1]) * {"d": 1, "w": 7, "y": 365}[match[2]]
    assert days * 24 > 52 * 7 * 24 + 1, "the year-over-year alert needs > 52 weeks + 1 hour"
    assert "--web.enable-lifecycle" in command
    assert "/-/ready" in " ".join(prom["healthcheck"]["test"])


def test_grafana_reads_prometheus_and_the_dashboards():
    services = compose()["services"]
    grafana = services["grafana"]
    (datasource,) = load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")[
        "datasources"
    ]
    url = re.fullmatch(r"http://([a-z0-9-]+):(\d+)/?", datasource["url"])
    assert url, datasource["url"]
    assert url[1] in services
    assert container_port(services[url[1]]) == int(url[2])
    assert flag(services[url[1]]["command"], "web.listen-address") in (None, f":{url[2]}")
    assert (
        bind_source(grafana, "/etc/grafana/provisioning/datasources")
        == "./grafana/provisioning/datasources"
    )
    assert (
        bind_source(grafana, "/etc/grafana/provisioning/dashboards")
        == "./grafana/provisioning/dashboards"
    )
    (provider,) = load_yaml(GRAFANA / "provisioning" / "dashboards" / "portflow.yml")["providers"]
    assert bind_source(grafana, provider["options"]["path"]) == "./grafana/dashboards"
    assert list((GRAFANA / "dashboards").glob("*.json"))
    assert bind_source(grafana, "/var/lib/grafana") == "grafana-data"
    env = environment(grafana)
    assert env["GF_SECURITY_ADMIN_PASSWORD"] == env_example()["GRAFANA_ADMIN_PASSWORD"]


def test_grafana_reads_the_api_through_the_pinned_infinity_plugin_with_the_token():
    grafana = service("grafana")
    (datasource,) = load_yaml(GRAFANA / "provisioning" / "datasources" / "portflow-api.yml")[
        "datasources"
    ]
    assert datasource["uid"] == "portflow-api"
    assert datasource["type"] == "yesoreyeram-infinity-datasource"
    url = re.fullmatch(r"http://([a-z0-9-]+):(\d+)", datasource["url"])
    assert url
    assert url[1] == "api"
    assert container_port(service("api")) == int(url[2])
    assert datasource["jsonData"]["allowedHosts"] == [datasource["url"]]
    assert datasource["jsonData"]["customHealthCheckUrl"].startswith(datasource["url"] + "/v1/")
    assert datasource["jsonData"]["auth_method"] == "bearerToken"
    assert datasource["secureJsonData"]["bearerToken"] == "$PORTFLOW_API_TOKEN"
    env = environment(grafana)
    assert env["PORTFLOW_API_TOKEN"] == env_example()["PORTFLOW_API_TOKEN"]
    plugin, version = env["GF_INSTALL_PLUGINS"].split(" ")
    assert plugin == datasource["type"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), "the plugin is pinned to a release"


def test_published_ports_default_to_loopback():
    raw = raw_compose()["services"]
    for name, svc in raw.items():
        for mapping in svc.get("ports", []):
            assert mapping.startswith("${PUBLISH_ADDR:-127.0.0.1}:"), f"{name}: {mapping}"
    assert env_example()["PUBLISH_ADDR"] == "127.0.0.1"


def test_env_example_defines_every_variable_with_placeholder_secrets():
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    referenced = {m["name"] or m["bare"] for m in _VARIABLE.finditer(text) if m[0] != "$$"}
    example = env_example()
    assert referenced <= set(example), f"not in .env.example: {referenced - set(example)}"
    for secret in SECRETS:
        assert example[secret].startswith("change-me"), f"{secret}: not a placeholder"
        # Secrets are required: no default in the compose file.
        assert re.search(rf"\$\{{{secret}:\?", text), secret
        assert not re.search(rf"\$\{{{secret}:?-", text), secret
    # Used inside a redis:// URL: must not need escaping.
    assert re.fullmatch(r"[A-Za-z0-9._-]+", example["REDIS_PASSWORD"])
    assert ".env" in (ROOT / ".gitignore").read_text().split()


# ---- promtool and amtool -------------------------------------------------------------------


@needs_promtool
def test_promtool_checks_the_config_with_the_mounted_rules(tmp_path):
    """prometheus.yml with its rule_files mapped from the container's paths to the directories
    the compose file mounts there (a glob that matches nothing would pass unchecked)."""
    prom = service("prometheus")
    config = load_yaml(PROMETHEUS_CONFIG)
    rewritten = []
    for pattern in config["rule_files"]:
        directory = str(Path(pattern).parent)
        rewritten.append(str(ROOT / bind_source(prom, directory) / Path(pattern).name))
    config["rule_files"] = rewritten
    copy = tmp_path / "prometheus.yml"
    copy.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    result = run([PROMTOOL, "check", "config", str(copy)], cwd=tmp_path)
    assert result.returncode == 0, show(result)
    rule_files = sorted((ROOT / "prometheus" / "rules").glob("*.yml"))
    assert rule_files
    for path in rule_files:
        assert f"Checking {path}" in result.stdout, show(result)


@needs_amtool
def test_amtool_checks_the_alertmanager_config():
    result = run([AMTOOL, "check-config", str(ALERTMANAGER_CONFIG)])
    assert result.returncode == 0, show(result)
    assert "SUCCESS" in result.stdout, show(result)


def test_alertmanager_routes_and_inhibitions_name_real_alerts():
    alerts = {
        rule["alert"]
        for group in load_yaml(ROOT / "prometheus" / "rules" / "portflow-alerts.yml")["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    config = load_yaml(ALERTMANAGER_CONFIG)
    route = config["route"]
    assert route["receiver"] == "default"
    assert route["group_by"] == ["alertname", "port", "mode", "service"]
    (receiver,) = config["receivers"]
    (webhook,) = receiver["webhook_configs"]
    assert re.fullmatch(r"https?://[a-z0-9.-]+\.example(:\d+)?/.*", webhook["url"]), (
        "the example receiver must be an obviously fake (.example) URL"
    )

    def matching(matchers: list[str]) -> set[str]:
        names = alerts
        for matcher in matchers:
            label, op, value = re.fullmatch(r'(\w+)\s*(=~|=)\s*"(.*)"', matcher).groups()
            if label == "alertname":
                names = {a for a in names if (re.fullmatch(value, a) if op == "=~" else a == value)}
        return names

    muted, muting = set(), set()
    for rule in config["inhibit_rules"]:
        sources, targets = matching(rule["source_matchers"]), matching(rule["target_matchers"])
        assert sources, rule  # every matcher names an existing alert
        assert targets, rule
        muting |= sources
        muted |= targets
    assert muting == {"PortflowWorkerAbsent", "PortflowPipelineStalled"}
    assert muted == {
        "PortflowThroughputDropWeekOverWeek",
        "PortflowThroughputDropYearOverYear",
        "PortflowNoEvents",
    }
    assert service("alertmanager")["volumes"][0].startswith(
        "./alertmanager/alertmanager.yml:" + flag(service("alertmanager")["command"], "config.file")
    )


# ---- Dockerfile ----------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    lines, current = [], ""
    for line in text.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        current += line
        keyword, _, args = current.strip().partition(" ")
        lines.append((keyword.upper(), args.strip()))
        current = ""
    return lines


def instructions(keyword: str) -> list[str]:
    return [args for kw, args in dockerfile_instructions() if kw == keyword]


def final_stage() -> list[tuple[str, str]]:
    steps = dockerfile_instructions()
    last_from = max(i for i, (kw, _) in enumerate(steps) if kw == "FROM")
    return steps[last_from:]


def test_dockerfile_base_is_pinned():
    froms = instructions("FROM")
    assert froms
    for args in froms:
        image = args.split()[0]
        assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", image), (
            f"{image}: pin python:3.11.<patch>-slim-bookworm"
        )
    assert len({args.split()[0] for args in froms}) == 1, "the stages use different bases"


def test_dockerfile_runs_portflow_unprivileged_with_a_healthcheck():
    final = final_stage()
    users = [args for kw, args in final if kw == "USER"]
    assert users, "no USER in the final stage: it would run as root"
    assert users[-1].split(":")[0] not in ("root", "0"), users[-1]
    assert [json.loads(args) for kw, args in final if kw == "ENTRYPOINT"] == [["portflow"]]
    assert [json.loads(args) for kw, args in final if kw == "CMD"] == [["worker"]]
    assert [args for kw, args in final if kw == "EXPOSE"] == ["9464"]
    (check,) = [args for kw, args in final if kw == "HEALTHCHECK"]
    assert "urllib" in check
    assert "/metrics" in check
    assert "PORTFLOW_METRICS_ADDR=0.0.0.0:9464" in " ".join(a for k, a in final if k == "ENV")
    assert any("pip install ." in args for args in instructions("RUN"))


def healthcheck_command() -> list[str]:
    (check,) = [args for kw, args in final_stage() if kw == "HEALTHCHECK"]
    return json.loads(check[check.index("CMD") + 3 :].strip())


def test_dockerfile_healthcheck_fetches_the_metrics(tmp_path):
    """The image's health check, run here against a local server, and against nothing."""
    command = healthcheck_command()
    assert command[0] == "python"
    hits = []

    class Metrics(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200 if self.path == "/metrics" else 404)
            self.end_headers()
            self.wfile.write(b"# metrics\n")

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Metrics)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        env = {**os.environ, "PORTFLOW_METRICS_ADDR": f"0.0.0.0:{port}"}
        result = run([sys.executable, *command[1:]], env=env, cwd=tmp_path)
        assert result.returncode == 0, show(result)
        assert hits == ["/metrics"]
    finally:
        server.shutdown()
        server.server_close()
    env = {**os.environ, "PORTFLOW_METRICS_ADDR": f"0.0.0.0:{port}"}  # nothing listens now
    result = run([sys.executable, *command[1:]], env=env, cwd=tmp_path)
    assert result.returncode != 0, show(result)


def test_the_build_context_holds_what_the_dockerfile_copies():
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert patterns[0] == "*", ".dockerignore should start from nothing and allow what is needed"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    copied = set()
    for args in instructions("COPY"):
        if args.startswith("--from"):
            continue
        copied |= set(args.split()[:-1])
    assert copied == allowed, f"COPY {copied} but .dockerignore allows {allowed}"
    for path in copied:
        assert (ROOT / path).exists(), path
    for excluded in (
        ".venv/",
        ".git/",
        ".env",
        ".pytest_cache/",
        ".hypothesis/",
        "**/__pycache__/",
        "**/*.jsonl",
        "**/*.jsonl.gz",
    ):
        assert excluded in patterns, f".dockerignore: {excluded}"
    # The packages copied are the packages pyproject.toml installs.
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {p.rstrip("*") for p in include}
    assert packages <= copied, f"pyproject installs {packages - copied}, which is not copied"
    assert pyproject["project"]["readme"] in copied
