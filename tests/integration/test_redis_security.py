"""Redis with ACL users: portflow works with credentials in PORTFLOW_REDIS_URL, and fails clearly
(without echoing the password) when they are wrong."""

import json

import pytest
from click.testing import CliRunner

from entrypoints.cli import cli
from entrypoints.embedded import start_redis
from entrypoints.processes import free_port
from portflow.config import Settings
from tests.support import events
from tests.support.cli import invoke
from tests.support.processing import apply
from tests.support.programs import program


@pytest.fixture(scope="module")
def secured_redis(tmp_path_factory):
    port = free_port()
    run = tmp_path_factory.mktemp("secured-redis")
    child = start_redis(
        port,
        run / "data",
        run / "logs",
        extra_args=(
            "--user",
            "default",
            "off",
            "--user",
            "portflow",
            "on",
            ">s3cret-pass",
            "~*",
            "&*",
            "+@all",
        ),
    )
    yield port
    child.stop()


def applied_and_reported_teu(url: str, prefix: str) -> int:
    """Apply one train of 60 TEU through the processor, then read it back with `portflow report`."""
    settings = Settings.from_env({"PORTFLOW_REDIS_URL": url, "PORTFLOW_TOPIC_PREFIX": prefix})
    train = events.train(
        "t1", "2024-05-01T10:00:00+08:00", service="china-asia", direction="inbound", teu=60
    )
    apply(settings, [train])
    result = invoke(settings, "report", "--period", "2024-05", "--measure", "teu", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)["total"]["current"]


def test_worker_side_and_report_work_with_an_acl_user(secured_redis):
    url = f"redis://portflow:s3cret-pass@127.0.0.1:{secured_redis}/0"
    assert applied_and_reported_teu(url, "secure.") == 60


def test_wrong_password_is_a_clear_error_without_the_password(secured_redis):
    url = f"redis://portflow:wrong-pass@127.0.0.1:{secured_redis}/0"
    result = CliRunner().invoke(
        cli, ["report", "--period", "2024"], env={"PORTFLOW_REDIS_URL": url}
    )
    assert result.exit_code == 1
    assert "cannot read Redis" in result.output
    assert "wrong-pass" not in result.output


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory):
    """redis-server with a TLS port and a certificate signed by a throwaway CA."""
    import subprocess

    certs = tmp_path_factory.mktemp("tls")

    def openssl(*args):
        subprocess.run([program("openssl"), *args], cwd=certs, check=True, capture_output=True)

    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=test-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    )
    openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    )
    (certs / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.cnf",
        "-out",
        "server.pem",
    )
    tls_port = free_port()
    child = start_redis(
        free_port(),
        certs / "data",
        certs / "logs",
        extra_args=(
            "--tls-port",
            str(tls_port),
            "--tls-cert-file",
            str(certs / "server.pem"),
            "--tls-key-file",
            str(certs / "server.key"),
            "--tls-ca-cert-file",
            str(certs / "ca.pem"),
            "--tls-auth-clients",
            "no",
        ),
    )
    yield tls_port, certs / "ca.pem"
    child.stop()


def test_rediss_url_with_the_ca_works_end_to_end(tls_redis):
    port, ca = tls_redis
    assert applied_and_reported_teu(f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={ca}", "tls.") == 60


def test_rediss_without_trusting_the_ca_fails_clearly(tls_redis):
    port, _ = tls_redis
    result = CliRunner().invoke(
        cli,
        ["report", "--period", "2024"],
        env={"PORTFLOW_REDIS_URL": f"rediss://127.0.0.1:{port}/0"},
    )
    assert result.exit_code == 1
    assert "cannot read Redis" in result.output
