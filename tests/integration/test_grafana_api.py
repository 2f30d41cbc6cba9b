"""Grafana's event-time panels against a live API: every request the Infinity datasource makes
(grafana/build.py's api_targets(), variables substituted) runs against `portflow serve` over a
real Redis holding two half-years of shipments and dollar rates, and the JSON has the rows and
fields its backend parser selects. Grafana itself cannot run here; this is what its plugin would
ask and read."""

from __future__ import annotations

import importlib.util
import json
from datetime import date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from entrypoints.embedded import api_url, start_api
from portflow.adapters.redis import RedisStore
from portflow.config import Settings
from portflow.services.rates import load_rates
from tests.support.api import TOKEN, env_of, with_api_port
from tests.support.events import shipment
from tests.support.processing import apply

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def load_build():
    spec = importlib.util.spec_from_file_location("grafana_build", REPO / "grafana" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = load_build()


def shipments() -> list[dict]:
    """Weekly shipments through H1 of 2023 and 2024 at two ports, by two modes, with zones of
    both groups and two partners, so that every table has rows and the series have days."""
    events = []
    ports = [
        ("khorgos", "rail", "KZ", ["cbz-khorgos"]),
        ("alashankou", "road", "DE", ["ftz-urumqi", "cbz-urumqi"]),
    ]
    for first in (date(2024, 1, 2) - timedelta(weeks=52), date(2024, 1, 2)):  # same weekdays
        for week in range(26):
            day = first + timedelta(weeks=week)
            for n, (port, mode, partner, zones) in enumerate(ports):
                events.append(
                    shipment(
                        f"g{day.isoformat()}-{n}",
                        f"{day.isoformat()}T10:00:00+08:00",
                        port=port,
                        mode=mode,
                        value_cny=f"{1000 + 10 * week + day.year % 2}.50",
                        weight_tonnes="2.5",
                        partner=partner,
                        zones=zones,
                    )
                )
    return events


def get(url: str) -> tuple[int, bytes]:
    response = httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    return response.status_code, response.content


def load_usd_rates(settings: Settings, path: Path) -> None:
    """A dollar rate for every month of 2023 and 2024, so that currency=USD has its rates."""
    months = [f"{year}-{month:02d}" for year in (2023, 2024) for month in range(1, 13)]
    path.write_text(
        "month,rate,source\n" + "".join(f"{m},7.2000,test\n" for m in months), encoding="utf-8"
    )
    load_rates(RedisStore.from_url(settings.redis_url, settings.topic_prefix), path)


@pytest.fixture
def api(settings, tmp_path):
    """`portflow serve` on a free loopback port over the settings' state; its base URL."""
    apply(settings, shipments())
    load_usd_rates(settings, tmp_path / "rates.csv")
    served = with_api_port(settings)
    child = start_api(env_of(served, TOKEN), served, tmp_path / "logs")
    yield api_url(served)
    child.stop()


def select(value, path: str):
    """A plain dotted path (key.port) as the plugin's GJSON reads it; KeyError if absent."""
    for name in path.split("."):
        if not isinstance(value, dict) or name not in value:
            raise KeyError(path)
        value = value[name]
    return value


def rows_of(body: dict, root_selector: str) -> list[dict]:
    """What the backend parser makes rows of: the array at the root selector, or one object."""
    root = select(body, root_selector)
    return root if isinstance(root, list) else [root]


@pytest.mark.parametrize(("compare", "currency"), [("yoy", "CNY"), ("previous", "USD")])
def test_every_infinity_target_runs_against_the_api_and_returns_the_columns_it_selects(
    api, compare, currency
):
    targets = build.api_targets({**build.API_TEST_VALUES, "compare": compare, "currency": currency})
    assert len(targets) >= 10
    for target in targets:
        status, body = get(api + target.url)
        assert status == 200, (target.where, target.url, status, body[:300])
        rows = rows_of(json.loads(body), target.root_selector)
        assert rows, (target.where, target.url)
        for row in rows:
            for selector in target.selectors:
                try:
                    select(row, selector)
                except KeyError:
                    raise AssertionError(
                        f"{target.where}: {target.url}: no {selector!r} in {row}"
                    ) from None


def test_the_series_rows_are_days_and_months_of_the_range_with_rfc3339_times(api):
    for target in build.api_targets():
        if not target.url.startswith("/v1/series"):
            continue
        rows = rows_of(json.loads(get(api + target.url)[1]), target.root_selector)
        times = [datetime.fromisoformat(row["time"]) for row in rows]
        assert all(t.utcoffset() == timedelta(hours=8) for t in times), target.where
        assert min(times).date() >= date(2024, 1, 1)
        assert max(times).date() <= date(2024, 6, 30)
        assert any(row["value"] and row["previous"] for row in rows), target.where
        if "granularity=day" in target.url:
            assert {row["port"] for row in rows} == {"khorgos"}
            for row in rows:  # the same weekday 52 weeks earlier
                earlier = datetime.fromisoformat(row["previous_time"])
                assert datetime.fromisoformat(row["time"]) - earlier == timedelta(weeks=52)


def test_the_datasources_health_check_is_answered(api):
    """Grafana's "Save & test" of the portflow-api datasource: its health-check URL, with the
    token, on the live API."""
    provisioning = REPO / "grafana" / "provisioning" / "datasources" / "portflow-api.yml"
    (datasource,) = yaml.safe_load(provisioning.read_text(encoding="utf-8"))["datasources"]
    path = urlsplit(datasource["jsonData"]["customHealthCheckUrl"]).path
    status, body = get(api + path)
    assert status == 200, body[:300]


def test_the_port_variable_lists_the_periods_ports(api):
    (target,) = [t for t in build.api_targets() if t.where == "variable port"]
    rows = rows_of(json.loads(get(api + target.url)[1]), target.root_selector)
    assert sorted(select(row, "key.port") for row in rows) == ["alashankou", "khorgos"]
