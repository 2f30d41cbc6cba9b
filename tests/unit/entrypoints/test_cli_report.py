"""`portflow report` refuses a bad request with exit 2 before it reaches for Redis."""

import pytest
from click.testing import CliRunner

from entrypoints.cli import cli

UNREACHABLE = {"PORTFLOW_REDIS_URL": "redis://127.0.0.1:1/0"}


@pytest.mark.parametrize("args, message", [
    (["--period", "24"], "period '24' is not one of"),
    (["--period", "0001"], "there is no period before year 0001"),
    (["--period", "2024", "--measure", "trains", "--by", "mode"],
     "dimension 'mode' does not apply to trains"),
])
def test_a_bad_request_exits_2_naming_what_is_wrong(args, message):
    result = CliRunner().invoke(cli, ["report", *args], env=UNREACHABLE)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Redis" not in result.output


def test_status_needs_redis():
    result = CliRunner().invoke(cli, ["status"], env=UNREACHABLE)
    assert result.exit_code == 1
    assert "cannot read Redis at redis://127.0.0.1:1/0" in result.output
