"""The seed article reproduced end to end: scenario → replay → worker → report.

Expected numbers are the article's own (shared/seed/xinjiang-trade-h1-2024.txt), written here
by hand, not read from the generator's data file.
"""

import json
import subprocess
import sys
from decimal import Decimal

import pytest

from tests.support.cli import portflow

pytestmark = pytest.mark.slow


def report(env, measure, by=None):
    args = ["report", "--period", "2024-H1", "--measure", measure, "--json"]
    if by:
        args += ["--by", by]
    return json.loads(portflow(env, *args), parse_float=Decimal)


def rows(result, dim):
    return {r["key"][dim]: r for r in result["rows"]}


def one_decimal(value) -> Decimal:
    return Decimal(value).quantize(Decimal("0.1"), rounding="ROUND_HALF_UP")


def test_replayed_scenario_reproduces_the_published_figures(stack_env, tmp_path, worker_factory):
    path = tmp_path / "xinjiang.jsonl.gz"
    portflow(stack_env, "scenario", "xinjiang-2024h1", "--out", str(path), "--scale", "0.1")
    worker_factory()
    portflow(stack_env, "replay", str(path), "--wait", "--timeout", "300")

    value = report(stack_env, "value_cny")["total"]
    assert value["current"] == Decimal("200000000000.00")
    assert one_decimal(value["yoy_pct"]) == Decimal("48.4")

    partners = rows(report(stack_env, "value_cny", "partner"), "partner")
    assert sum(1 for r in partners.values() if r["current"] > 0) == 205
    assert one_decimal(partners["KZ"]["yoy_pct"]) == Decimal("45.8")
    assert one_decimal(partners["KG"]["yoy_pct"]) == Decimal("8.7")
    top_two = sorted(partners.values(), key=lambda r: -r["current"])[:2]
    assert {r["key"]["partner"] for r in top_two} == {"KZ", "KG"}

    cargo = report(stack_env, "weight_tonnes")["total"]
    assert cargo["current"] == Decimal("39338000.000")
    assert one_decimal(cargo["yoy_pct"]) == Decimal("11.9")

    trains = report(stack_env, "trains", "port,service")
    by_service = {}
    for row in trains["rows"]:
        assert row["key"]["port"] in ("alashankou", "khorgos")
        now, before = by_service.get(row["key"]["service"], (0, 0))
        by_service[row["key"]["service"]] = (now + row["current"], before + row["previous"])
    assert by_service["china-europe"][0] == 4691
    assert by_service["china-asia"][0] == 3055
    growth = {s: one_decimal((Decimal(n) / p - 1) * 100) for s, (n, p) in by_service.items()}
    assert growth == {"china-europe": Decimal("10.1"), "china-asia": Decimal("5.3")}

    modes = rows(report(stack_env, "value_cny", "mode"), "mode")
    assert {m: one_decimal(modes[m]["yoy_pct"]) for m in ("road", "water", "rail", "air")} == {
        "road": Decimal("14.8"),
        "water": Decimal("257.2"),
        "rail": Decimal("62.4"),
        "air": Decimal("18.0"),
    }

    zones = rows(report(stack_env, "value_cny", "zone_group"), "zone_group")
    assert zones["ftz"]["current"] == Decimal("72820000000.00")
    assert zones["cbz"]["current"] == Decimal("95390000000.00")
    assert one_decimal(zones["cbz"]["yoy_pct"]) == Decimal("58.1")

    without_rates = subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", "verify", "xinjiang-2024h1"],
        env=stack_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert without_rates.returncode == 1
    assert without_rates.stdout.count("DIFF") == 3
    assert "3 figure(s) differ" in without_rates.stderr
    assert "2024-01" in without_rates.stdout
    assert "rates load" in without_rates.stdout

    portflow(stack_env, "rates", "load", str(tmp_path / "xinjiang.usd-rates.csv"))
    verdict = portflow(stack_env, "verify", "xinjiang-2024h1")
    assert "DIFF" not in verdict
    assert verdict.count("FLAG") == 2
    checks = [
        json.loads(line, parse_float=Decimal)
        for line in portflow(stack_env, "verify", "xinjiang-2024h1", "--json").splitlines()
    ]
    assert sum(c["matches"] for c in checks) == 21
    assert {c["figure"]: c["computed"] for c in checks if "USD" in c["figure"]} == {
        "total trade value, billion USD": Decimal("27.56"),
        "free trade zones, billion USD": Decimal("10.03"),
        "bonded zones, billion USD": Decimal("13.14"),
    }
