"""`portflow anomalies` refuses a bad request with exit 2 before it reaches for Redis."""

import pytest
from click.testing import CliRunner

from entrypoints.cli import cli

UNREACHABLE = {"PORTFLOW_REDIS_URL": "redis://127.0.0.1:1/0"}


@pytest.mark.parametrize("args, message", [
    (["--period", "2024", "--min-drop", "0"], "--min-drop must be above 0 and at most 100"),
    (["--period", "2024", "--min-drop", "101"], "--min-drop must be above 0 and at most 100"),
    (["--period", "2024", "--measure", "trains", "--by", "mode"],
     "dimension 'mode' does not apply to trains"),
    (["--period", "2024", "--measure", "tonnes"], "unknown measure 'tonnes'"),
    (["--period", "24"], "period '24' is not one of"),
    (["--period", "2024", "--by", "port,mode,direction"], "at most two dimensions"),
])
def test_a_bad_request_exits_2_naming_what_is_wrong(args, message):
    result = CliRunner().invoke(cli, ["anomalies", *args], env=UNREACHABLE)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Redis" not in result.output


def test_a_good_request_then_needs_redis():
    result = CliRunner().invoke(cli, ["anomalies", "--period", "2024"], env=UNREACHABLE)
    assert result.exit_code == 1
    assert "cannot read Redis" in result.output
