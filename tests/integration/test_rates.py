"""The USD rates table against a real redis-server: `portflow rates load` and `show`, a
rebuild (`drop_state`) keeping the rates, which no topic could bring back, and a report in
dollars at the rates loaded."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from portflow.adapters.redis import RedisStore
from portflow.config import Settings
from tests.support.cli import invoke
from tests.support.events import shipment
from tests.support.processing import apply

HEADER = "month,rate,source\n"


def store_of(settings: Settings) -> RedisStore:
    return RedisStore.from_url(settings.redis_url, settings.topic_prefix)


def rates_file(tmp_path, body: str, name: str = "rates.csv"):
    path = tmp_path / name
    path.write_text(HEADER + body)
    return path


def test_the_store_keeps_each_months_rate_as_written_in_month_order(settings):
    store = store_of(settings)
    store.put_rates(
        {"2024-02": {"rate": "7.1", "source": "b"}, "2024-01": {"rate": "7.2570", "source": "a"}}
    )
    assert store.rate_entries() == {
        "2024-01": {"rate": "7.2570", "source": "a"},
        "2024-02": {"rate": "7.1", "source": "b"},
    }
    assert list(store.usd_rates().items()) == [
        ("2024-01", Decimal("7.2570")),
        ("2024-02", Decimal("7.1")),
    ]


def test_put_rates_adds_to_the_table_or_replaces_it_whole(settings):
    store = store_of(settings)
    store.put_rates(
        {"2023-12": {"rate": "7.1", "source": "a"}, "2024-01": {"rate": "7.1", "source": "a"}}
    )
    store.put_rates({"2024-01": {"rate": "7.2", "source": "b"}})
    assert list(store.usd_rates().values()) == [Decimal("7.1"), Decimal("7.2")]
    store.put_rates({"2024-02": {"rate": "7.3", "source": "c"}}, replace=True)
    assert store.usd_rates() == {"2024-02": Decimal("7.3")}
    assert store.client.keys(f"{store.rates_key}:*") == []  # nothing left aside


def test_a_rebuild_drops_the_state_but_keeps_the_rates(settings):
    store = store_of(settings)
    store.open_epoch("Asia/Shanghai")
    store.client.hset(f"{store.aggregate_prefix}shipment:value:2024-01", "cell", 100)
    store.put_rates({"2024-01": {"rate": "7.2570", "source": "a"}})
    assert store.drop_state() >= 2
    assert store.epoch() is None
    assert store.client.exists(f"{store.aggregate_prefix}shipment:value:2024-01") == 0
    assert store.rate_entries() == {"2024-01": {"rate": "7.2570", "source": "a"}}


def test_load_checks_the_file_stores_it_and_says_what_it_did(settings, tmp_path):
    path = rates_file(tmp_path, "2024-01,7.2570,a\n2024-02,7.1,a\n2024-04,7.2,a\n")
    first = invoke(settings, "rates", "load", str(path))
    assert first.exit_code == 0, first.output
    assert (
        f"loaded 3 months (2024-01 to 2024-02, 2024-04) from {path}: 3 new, 0 replaced "
        "(another rate or source), 0 unchanged"
    ) in first.stderr
    # rates may come before the first event: they wait for the state, with a warning
    assert f"topic prefix {settings.topic_prefix!r} has no state" in first.stderr

    store_of(settings).open_epoch("Asia/Shanghai")
    path = rates_file(tmp_path, "2024-01,7.2570,a\n2024-02,7.15,a\n")
    again = invoke(settings, "rates", "load", str(path))
    assert again.exit_code == 0, again.output
    assert "2 months (2024-01 to 2024-02) from " in again.stderr
    assert (
        "0 new, 1 replaced (another rate or source), 1 unchanged; kept 1 month "
        "(2024-04) not in the file" in again.stderr
    )
    assert "no state" not in again.stderr

    replaced = invoke(settings, "rates", "load", "--replace", str(path))
    assert "; dropped 1 month (2024-04) not in the file" in replaced.stderr
    shown = invoke(settings, "rates", "show", "--json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout) == {
        "rates": {
            "2024-01": {"rate": "7.2570", "source": "a"},
            "2024-02": {"rate": "7.15", "source": "a"},
        }
    }
    text = invoke(settings, "rates", "show").stdout.splitlines()
    assert text == [
        "month    CNY/USD  source",
        "2024-01   7.2570  a",
        "2024-02     7.15  a",
        "2 months (2024-01 to 2024-02)",
    ]


def test_show_without_rates_says_how_to_load_them(settings):
    shown = invoke(settings, "rates", "show")
    assert shown.exit_code == 0
    assert "no USD rates loaded" in shown.stdout
    assert json.loads(invoke(settings, "rates", "show", "--json").stdout) == {"rates": {}}


def test_a_bad_file_loads_nothing_and_names_each_problem_in_one_line(settings, tmp_path):
    store_of(settings).put_rates({"2023-12": {"rate": "7.1", "source": "kept"}})
    path = rates_file(
        tmp_path, "2024-01,7.2570,a\n2024-13,7.2,a\n2024-02,0.1378,\n", name="bad.csv"
    )
    env = {
        "PORTFLOW_REDIS_URL": settings.redis_url,
        "PORTFLOW_TOPIC_PREFIX": settings.topic_prefix,
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    done = subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", "rates", "load", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"portflow: {path}: nothing loaded, 3 problem(s): line 3: month '2024-13' is not a "
        "month like 2024-06; line 4: rate '0.1378' is not between 1 and 20 yuan per dollar (a "
        "rate in dollars per yuan, or per 100 dollars?); line 4: source is empty: say where "
        "the rate comes from"
    ]
    assert store_of(settings).rate_entries() == {"2023-12": {"rate": "7.1", "source": "kept"}}


def test_a_report_in_dollars_takes_each_months_loaded_rate_and_names_the_months_without(
    settings, tmp_path
):
    apply(
        settings,
        [
            shipment("a", "2024-01-15T10:00:00+08:00", value_cny="725.70"),
            shipment("b", "2024-02-15T10:00:00+08:00", value_cny="710.00"),
            shipment("c", "2023-02-15T10:00:00+08:00", value_cny="1000.00"),
        ],
    )
    report = ["report", "--period", "2024-Q1", "--currency", "USD", "--json"]
    invoke(settings, "rates", "load", str(rates_file(tmp_path, "2024-01,7.2570,a\n")))
    missing = invoke(settings, *report)
    assert missing.exit_code == 1
    assert "no CNY per USD rate for 2023-01, 2023-02, 2023-03, 2024-02, 2024-03" in missing.stderr

    invoke(
        settings,
        "rates",
        "load",
        str(
            rates_file(
                tmp_path,
                "".join(
                    f"{year}-{month:02d},{rate},b\n"
                    for year in (2023, 2024)
                    for month, rate in ((1, "7.2570"), (2, "7.1"), (3, "7"))
                ),
            )
        ),
    )
    result = json.loads(invoke(settings, *report).stdout, parse_float=Decimal)
    assert result["total"]["current"] == Decimal("200.00")  # 725.70 / 7.2570 + 710 / 7.1
    assert result["total"]["previous"] == Decimal("140.85")  # 1000 / 7.1
    assert result["usd_rates"] == {
        "2023-01": "7.2570",
        "2023-02": "7.1",
        "2023-03": "7",
        "2024-01": "7.2570",
        "2024-02": "7.1",
        "2024-03": "7",
    }
