"""`portflow dlq` refuses bad options with exit 2 before it reaches for Kafka or Redis."""

import pytest
from click.testing import CliRunner

from entrypoints.cli import cli

UNREACHABLE = {"PORTFLOW_REDIS_URL": "redis://127.0.0.1:1/0",
               "PORTFLOW_KAFKA_BOOTSTRAP": "127.0.0.1:1"}


@pytest.mark.parametrize("args, message", [
    (["list", "--limit", "-1"], "'--limit': -1 is not in the range x>=1"),
    (["list", "--limit", "0"], "'--limit': 0 is not in the range x>=1"),
    (["replay", "--limit", "0"], "'--limit': 0 is not in the range x>=1"),
    (["list", "--code", "no_such_code"], "'no_such_code' is not one of 'not_json', "),
    (["replay", "--code", "no_such_code"], "'internal_error'"),
])
def test_a_bad_option_exits_2_naming_what_is_wrong(args, message):
    result = CliRunner().invoke(cli, ["dlq", *args], env=UNREACHABLE)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_replay_needs_the_ledger_in_redis():
    result = CliRunner().invoke(cli, ["dlq", "replay", "--yes"], env=UNREACHABLE)
    assert result.exit_code == 1, result.output
    assert "cannot read Redis" in result.output
