"""Commands that read the state refuse a bad request with exit 2, naming what is wrong, before
they reach for Kafka or Redis (unreachable here); a good request then fails on the server."""

import pytest

from tests.support.cli import invoke_unreachable


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["report", "--period", "24"], "period '24' is not one of"),
        (["report", "--period", "0001"], "there is no period before year 0001"),
        (
            ["report", "--period", "2024", "--measure", "trains", "--by", "mode"],
            "dimension 'mode' does not apply to trains",
        ),
        (
            ["anomalies", "--period", "2024", "--min-drop", "0"],
            "--min-drop must be above 0 and at most 100",
        ),
        (
            ["anomalies", "--period", "2024", "--min-drop", "101"],
            "--min-drop must be above 0 and at most 100",
        ),
        (
            ["anomalies", "--period", "2024", "--measure", "trains", "--by", "mode"],
            "dimension 'mode' does not apply to trains",
        ),
        (["anomalies", "--period", "2024", "--measure", "tonnes"], "unknown measure 'tonnes'"),
        (["anomalies", "--period", "24"], "period '24' is not one of"),
        (
            ["anomalies", "--period", "2024", "--by", "port,mode,direction"],
            "at most two dimensions",
        ),
        (["dlq", "list", "--limit", "-1"], "'--limit': -1 is not in the range x>=1"),
        (["dlq", "list", "--limit", "0"], "'--limit': 0 is not in the range x>=1"),
        (["dlq", "replay", "--limit", "0"], "'--limit': 0 is not in the range x>=1"),
        (["dlq", "list", "--code", "no_such_code"], "'no_such_code' is not one of 'not_json', "),
        (["dlq", "replay", "--code", "no_such_code"], "'internal_error'"),
    ],
)
def test_a_bad_request_exits_2_naming_what_is_wrong_before_reaching_a_server(args, message):
    result = invoke_unreachable(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Redis" not in result.output
    assert "Kafka" not in result.output


@pytest.mark.parametrize(
    "args", [["status"], ["anomalies", "--period", "2024"], ["dlq", "replay", "--yes"]]
)
def test_a_good_request_then_says_which_redis_it_cannot_read(args):
    result = invoke_unreachable(*args)
    assert result.exit_code == 1, result.output
    assert "cannot read Redis at redis://127.0.0.1:1/0" in result.output
