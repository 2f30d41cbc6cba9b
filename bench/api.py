"""The HTTP API under load, beside DuckDB and the CLI on the same questions, and how fresh its
answers are.

    python -m bench.api [--scale 1] [--seconds 30] [--clients 32] [--rate 5000]
                        [--broker apache-kafka|tansu] [--json] [--keep]

1. Starts a broker (Apache Kafka by default) and redis-server on free 127.0.0.1 ports and one
   ``portflow worker``, and replays into them the xinjiang-2024h1 scenario (``--scale``) and a
   year more of history: the same scenario 26 weeks later (new ids, weekdays kept), which fills
   the second halves of 2023 and 2024, so both are whole years.
2. Starts ``portflow serve`` and, question by question: times ``portflow report`` as a whole
   process (its first run, and the median of ``--cli-runs`` more); asks the API once, its
   answer over the replayed events to equal, to the fen, DuckDB's over the same raw events (the
   shipments of the replay files, read by this script into a DuckDB table of integer fen and kg
   by local day); times the API (one client) and DuckDB in process (medians of
   ``--duckdb-runs``).
3. Starts ``portflow simulate --rate R`` (events of now), and after a warm-up runs a closed loop
   of ``--clients`` concurrent clients (asyncio, aiohttp) over the mix for ``--seconds``:
   latency percentiles, requests/s, errors, the p50 of each question. Meanwhile it publishes
   ``--markers`` marker shipments, each at a port of its own, and measures how long after the
   worker applied one (its partition's mark in Redis reached its offset) ``/v1/reports``
   showed it. Then the mix at a fixed ``--open-rate`` (open loop), each request timed from when
   it was due.

Progress goes to stderr; stdout gets a table (with the issue's goals beside the figures) or one
JSON line (``--json``). The run fails (exit 1) if any answer differs from DuckDB's. See
bench/README.md, "API".
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from functools import partial
from http.client import HTTPConnection, RemoteDisconnected
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    import aiohttp
    import duckdb

from bench.harness import (
    Bench,
    Machine,
    add_broker_argument,
    add_output_arguments,
    add_seed_argument,
    cpu_seconds,
    emit,
    machine_busy_cpu_seconds,
    parser_of,
    percentile,
    progress,
    publish,
    run_on_servers,
)
from entrypoints.embedded import wait_for_assignment
from entrypoints.processes import Child, free_port, spawn, wait_until
from portflow.adapters.kafka import ensure_topics
from portflow.adapters.redis import RedisStore
from portflow.config import Settings
from portflow.services.progress import wait_until_applied
from producers.replay import DEFAULT_BATCH, make_producer
from producers.scenarios.xinjiang import generate_xinjiang

TZ = ZoneInfo("Asia/Shanghai")
HISTORY_SHIFT = timedelta(weeks=26)  # H1 → H2 of the same year, weekdays kept
SERIES_DAYS_BACK = 364  # a day's series compares with 52 weeks earlier
GOAL_P99_MS = 20.0
GOAL_REQUESTS_PER_S = 500.0
GOAL_FRESHNESS_MS = 1000.0
GOAL_CLI_S = 0.300
OPEN_LOOP_CONNECTIONS = 256
USD_RATE = "7.2570"
MEASURE_COLUMNS = {
    "value_cny": ("value_fen", 100),
    "weight_tonnes": ("weight_kg", 1000),
    "shipments": ("1", 1),
}
Params = dict[str, list[str]]  # a question's query parameters, each name's values
Answer = dict[tuple[str, ...], tuple[Fraction, Fraction]]  # key -> (current, previous)
LIVE = "(live)"  # questions over the events of now: no DuckDB or exactness (DuckDB has not them)


@dataclass(frozen=True)
class Question:
    name: str
    route: str  # reports | series
    query: str  # the URL's query string

    @property
    def params(self) -> list[tuple[str, str]]:
        return parse_qsl(self.query)

    @property
    def live(self) -> bool:
        return LIVE in self.name

    @property
    def url_path(self) -> str:
        return f"/v1/{self.route}?{self.query}"


def questions(today: date) -> list[Question]:
    """The mix: reports of a year, half, quarter, month and day, by 0–2 dimensions (partner ×
    port), year to date, against the period before, in dollars, filtered; a year of a daily
    series and two years of a monthly one; and today's report, which the worker is changing."""
    return [
        Question("2024 by port", "reports", "period=2024&by=port"),
        Question("2024-H1 total", "reports", "period=2024-H1"),
        Question("2024-H1 by port", "reports", "period=2024-H1&by=port"),
        Question("2024-H1 by partner,port", "reports", "period=2024-H1&by=partner,port"),
        Question("2024-Q2 by mode vs Q1", "reports", "period=2024-Q2&by=mode&compare=previous"),
        Question("2024-06 YTD by port", "reports", "period=2024-06&by=port&ytd=true"),
        Question("2024-06-15 by port", "reports", "period=2024-06-15&by=port"),
        Question(
            "2024-H1 by partner USD",
            "reports",
            f"period=2024-H1&by=partner&currency=USD&usd_rate={USD_RATE}",
        ),
        Question("2024-H1 rail by port", "reports", "period=2024-H1&by=port&filter=mode:rail"),
        Question(
            "2024-Q3 tonnes, 2 ports",
            "reports",
            "period=2024-Q3&measure=weight_tonnes&filter=port:khorgos&filter=port:alashankou",
        ),
        Question("2024 daily series", "series", "granularity=day&from=2024-01-01&to=2024-12-31"),
        Question(
            "2024 daily, khorgos",
            "series",
            "granularity=day&from=2024-01-01&to=2024-12-31&filter=port:khorgos",
        ),
        Question(
            "2023-24 monthly by mode", "series", "granularity=month&by=mode&from=2023-01&to=2024-12"
        ),
        Question(f"today by port {LIVE}", "reports", f"period={today.isoformat()}&by=port"),
    ]


# ------------------------------------------------------------------------------ the events
TS_FIELD = re.compile(rb'"ts":"([^"]+)"')
ID_FIELDS = re.compile(rb'"(event_id|declaration_id|train_id)":"')


def shift_history(source: Path, target: Path, shift: timedelta = HISTORY_SHIFT) -> int:
    """The replay file ``source`` again, ``shift`` later, with new ids (``h`` before each):
    the same events at other times, counted once more, not deduplicated against the first."""

    def later(match: re.Match[bytes]) -> bytes:
        moment = datetime.fromisoformat(match.group(1).decode()) + shift
        return b'"ts":"' + moment.isoformat().encode() + b'"'

    lines = 0
    with open(source, "rb") as src, open(target, "wb") as out:
        for line in src:
            out.write(ID_FIELDS.sub(rb'"\1":"h', TS_FIELD.sub(later, line, count=1)))
            lines += 1
    return lines


def local_day(ts: str) -> date:
    return datetime.fromisoformat(ts).astimezone(TZ).date()


def shipments_csv(paths: list[Path], out: Path) -> int:
    """The distinct shipments of replay files (by event id, first kept: the files repeat a few
    as producers retry) as CSV: local day, dimensions, integer fen and kg. Parsed here with
    ``json`` and ``Decimal``, not portflow's parser: an independent reading of the same bytes."""
    seen: set[str] = set()
    with open(out, "w", newline="") as f:
        rows = csv.writer(f)
        rows.writerow(
            [
                "day",
                "port",
                "mode",
                "direction",
                "partner",
                "trade_mode",
                "zones",
                "value_fen",
                "weight_kg",
            ]
        )
        for path in paths:
            with open(path, "rb") as lines:
                for line in lines:
                    if b'"type":"shipment"' not in line:
                        continue
                    event = json.loads(line, parse_float=Decimal)
                    if event["event_id"] in seen:
                        continue
                    seen.add(event["event_id"])
                    rows.writerow(
                        [
                            local_day(event["ts"]),
                            event["port"],
                            event["mode"],
                            event["direction"],
                            event["partner"],
                            event["trade_mode"],
                            ",".join(event["zones"]),
                            int(Decimal(str(event["value_cny"])) * 100),
                            int(Decimal(str(event["weight_tonnes"])) * 1000),
                        ]
                    )
    return len(seen)


def load_duckdb(csv_path: Path) -> duckdb.DuckDBPyConnection:
    import duckdb

    con = duckdb.connect()
    con.execute(f"""CREATE TABLE shipments AS SELECT * FROM read_csv('{csv_path}', header=true,
        delim=',', quote='"',
        columns={{'day': 'DATE', 'port': 'VARCHAR', 'mode': 'VARCHAR', 'direction': 'VARCHAR',
                  'partner': 'VARCHAR', 'trade_mode': 'VARCHAR', 'zones': 'VARCHAR',
                  'value_fen': 'BIGINT', 'weight_kg': 'BIGINT'}})""")  # noqa: S608  (our own file)
    return con


# ---------------------------------------------------------------------- DuckDB's answers
def period_days(period: str) -> tuple[date, date]:
    """First and last day of 2024, 2024-H1, 2024-Q2, 2024-06 or 2024-06-15."""
    year = int(period[:4])
    if len(period) == 4:
        return date(year, 1, 1), date(year, 12, 31)
    if period[5] in "HQ":
        months = 6 if period[5] == "H" else 3
        first_month = (int(period[6]) - 1) * months + 1
        return date(year, first_month, 1), month_end(year, first_month + months - 1)
    if len(period) == 7:
        return date(year, int(period[5:7]), 1), month_end(year, int(period[5:7]))
    day = date.fromisoformat(period)
    return day, day


def month_end(year: int, month: int) -> date:
    return (date(year + month // 12, month % 12 + 1, 1)) - timedelta(days=1)


def year_earlier(day: date) -> date:
    return (
        day.replace(year=day.year - 1)
        if (day.month, day.day) != (2, 29)
        else date(day.year - 1, 2, 28)
    )


def months_before(first: date, months: int) -> date:
    """The first day of the month ``months`` before ``first``'s."""
    index = first.year * 12 + first.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


def compared_spans(
    period: str, compare: str, ytd: bool
) -> tuple[tuple[date, date], tuple[date, date]]:
    """The days of the period (from 1 January with ``ytd``) and of what it is compared with:
    the same days a year earlier, or the period just before (the day, month, quarter, half or
    year before)."""
    first, last = period_days(period)
    if ytd:
        first = date(first.year, 1, 1)
    if compare == "yoy":
        return (first, last), (year_earlier(first), year_earlier(last))
    if first == last:
        return (first, last), (first - timedelta(days=1), first - timedelta(days=1))
    months = (last.year - first.year) * 12 + last.month - first.month + 1
    return (first, last), (months_before(first, months), first - timedelta(days=1))


def where(params: Params, extra: str) -> str:
    """The SQL condition of the filters (values of one dimension are alternatives) and ``extra``."""
    by_dimension: dict[str, list[str]] = {}
    for f in params.get("filter", []):
        dim, _, value = f.partition(":")
        by_dimension.setdefault(dim, []).append(value)
    clauses = [extra] + [
        f"{dim} IN ({', '.join(repr(v) for v in values)})" for dim, values in by_dimension.items()
    ]
    return " AND ".join(clauses)


def between(first: date, last: date) -> str:
    return f"day BETWEEN DATE '{first}' AND DATE '{last}'"


def grouped(params: list[tuple[str, str]]) -> Params:
    """Query parameters as lists (``filter`` repeats), ``by`` split."""
    out: Params = {}
    for name, value in params:
        out.setdefault(name, []).append(value)
    out["by"] = [d for value in out.get("by", []) for d in value.split(",") if d]
    return out


def sql_of(question: Question) -> str:
    """DuckDB's SQL for the question: per key, the period's sum and its comparison's (reports);
    per time and key, the value and the value 52 weeks (days) or a year (months) before."""
    params = grouped(question.params)
    column, _ = MEASURE_COLUMNS[params.get("measure", ["value_cny"])[0]]
    dims = params["by"]
    if question.route == "reports":
        (a, b), (c, d) = compared_spans(
            params["period"][0],
            params.get("compare", ["yoy"])[0],
            params.get("ytd", ["false"])[0] == "true",
        )
        now, then = between(a, b), between(c, d)
        keys = ", ".join(dims) or "'total'"
        return (
            f"SELECT {keys}, SUM(CASE WHEN {now} THEN {column} ELSE 0 END), "  # noqa: S608  (the benchmark's own questions)
            f"SUM(CASE WHEN {then} THEN {column} ELSE 0 END) FROM shipments "
            f"WHERE {where(params, f'({now} OR {then})')} GROUP BY ALL"
        )
    key = f"concat_ws('/', {', '.join(dims)})" if dims else "'total'"
    if params["granularity"][0] == "day":
        start, end = date.fromisoformat(params["from"][0]), date.fromisoformat(params["to"][0])
        back = timedelta(days=SERIES_DAYS_BACK)
        earlier = (start - back, end - back)
        slot, step = "day", f"{SERIES_DAYS_BACK}"
    else:
        start, last = date.fromisoformat(params["from"][0] + "-01"), params["to"][0]
        end = month_end(int(last[:4]), int(last[5:7]))
        earlier = (months_before(start, 12), month_end(end.year - 1, end.month))
        slot, step = "date_trunc('month', day)::DATE", "INTERVAL 1 YEAR"

    def sums(first: date, last: date) -> str:
        return (
            f"SELECT {slot} AS t, {key} AS k, SUM({column}) AS v FROM shipments "  # noqa: S608  (the benchmark's own questions)
            f"WHERE {where(params, between(first, last))} GROUP BY ALL"
        )

    return (
        f"SELECT COALESCE(c.t, (p.t + {step})::DATE), COALESCE(c.k, p.k), c.v, p.v "  # noqa: S608  (the benchmark's own questions)
        f"FROM ({sums(start, end)}) c FULL OUTER JOIN ({sums(*earlier)}) p "
        f"ON c.t = (p.t + {step})::DATE AND c.k = p.k"
    )


def duckdb_answer(con: duckdb.DuckDBPyConnection, question: Question) -> Answer:
    """key → (current, previous) in the question's unit (exact fractions), zeros left out."""
    params = grouped(question.params)
    _, per_unit = MEASURE_COLUMNS[params.get("measure", ["value_cny"])[0]]
    rate = Fraction(params["usd_rate"][0]) if "usd_rate" in params else Fraction(1)
    answer: Answer = {}
    for *columns, current, previous in con.execute(sql_of(question)).fetchall():
        if current or previous:
            key = tuple(k.isoformat() if isinstance(k, date) else k for k in columns)
            answer[key] = (
                Fraction(current or 0, per_unit) / rate,
                Fraction(previous or 0, per_unit) / rate,
            )
    return answer


def api_answer(question: Question, body: dict[str, Any]) -> Answer:
    """The same shape from the API's JSON (amounts parsed as exact decimals)."""
    params = grouped(question.params)
    answer: Answer = {}
    if question.route == "reports":
        for row in body["rows"]:
            key = tuple(row["key"][d] for d in params["by"]) or ("total",)
            answer[key] = (Fraction(row["current"] or 0), Fraction(row["previous"] or 0))
        if not params["by"]:
            answer[("total",)] = (
                Fraction(body["total"]["current"] or 0),
                Fraction(body["total"]["previous"] or 0),
            )
    else:
        for row in body["rows"]:
            answer[(row["time"][:10], row["key"])] = (
                Fraction(row["value"] or 0),
                Fraction(row["previous"] or 0),
            )
    return {k: v for k, v in answer.items() if any(v)}


def differences(question: Question, api: Answer, duck: Answer) -> list[str]:
    """Where the API's answer is not DuckDB's: exact amounts, or in dollars within half a cent
    of the exact quotient (rounded once)."""
    tolerance = Fraction(1, 200) if "usd_rate" in question.query else Fraction(0)
    out = []
    for key in sorted(set(api) | set(duck), key=str):
        zero = (Fraction(0), Fraction(0))
        ours, theirs = api.get(key, zero), duck.get(key, zero)
        if any(abs(o - t) > tolerance for o, t in zip(ours, theirs, strict=True)):
            out.append(f"{key}: API {tuple(map(float, ours))} DuckDB {tuple(map(float, theirs))}")
    return out


def fetch_all(con: duckdb.DuckDBPyConnection, sql: str) -> list[Any]:
    return con.execute(sql).fetchall()


def timed_runs(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    """The time of a first run (it pays for caches and plans), and the median of ``runs`` more."""
    times = []
    for _ in range(runs + 1):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return times[0], statistics.median(times[1:])


def timed_median(fn: Callable[[], object], runs: int) -> float:
    return timed_runs(fn, runs)[1]


# ------------------------------------------------------------------------------- the CLI
CLI_OPTIONS = {
    "period": "--period",
    "measure": "--measure",
    "by": "--by",
    "compare": "--compare",
    "filter": "--filter",
    "currency": "--currency",
    "usd_rate": "--usd-rate",
    "top": "--top",
}


def cli_argv(question: Question) -> list[str]:
    """``portflow report`` with the question's options."""
    argv = [sys.executable, "-m", "entrypoints.cli", "report", "--json"]
    for name, value in question.params:
        if name == "ytd":
            argv += ["--ytd"] if value == "true" else []
        else:
            argv += [CLI_OPTIONS[name], value]
    return argv


def time_cli(question: Question, env: dict[str, Any], runs: int) -> dict[str, Any]:
    """Wall times of ``portflow report`` as a process: the first (it sums the cells of granules
    no reader has summed by these dimensions and filters yet) and the median of ``runs`` more
    (they read the rollups it left in Redis); or why it failed."""

    def run() -> None:
        done = subprocess.run(cli_argv(question), env=env, capture_output=True, timeout=60)
        if done.returncode:
            raise RuntimeError(done.stderr.decode(errors="replace").strip()[-300:])

    try:
        first, median = timed_runs(run, runs)
        return {"cli_first_ms": ms(first), "cli_ms": ms(median), "cli_error": None}
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        return {"cli_first_ms": None, "cli_ms": None, "cli_error": str(exc)}


# ------------------------------------------------------------------------------- the stack
def start_api(bench: Bench, env: dict[str, Any]) -> tuple[str, Child]:
    """``portflow serve`` on a free port, once /readyz answers 200; its base URL."""
    from urllib.request import urlopen

    port = free_port()
    child = spawn(
        "api",
        [sys.executable, "-m", "entrypoints.cli", "serve", "--log-level", "warning"],
        bench.logs,
        env={**os.environ, **env, "PORTFLOW_API_ADDR": f"127.0.0.1:{port}"},
    )
    bench.children.append(child)
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            with urlopen(f"{base}/readyz", timeout=1) as response:  # noqa: S310  (http://127.0.0.1)
                return bool(response.status == 200)
        except OSError:
            return False

    wait_until(ready, child, f"portflow serve on {base}", 60)
    progress(f"portflow serve on {base} (pid {child.process.pid})")
    return base, child


def start_simulate(bench: Bench, env: dict[str, str], rate: int) -> Child:
    child = spawn(
        "simulate",
        [sys.executable, "-m", "entrypoints.cli", "simulate", "--rate", str(rate)],
        bench.logs,
        env={**os.environ, **env},
    )
    bench.children.append(child)
    progress(f"portflow simulate --rate {rate} (pid {child.process.pid})")
    return child


def load_events(
    bench: Bench, settings: Settings, env: dict[str, str], scale: float, seed: int
) -> tuple[list[Path], Child]:
    """The scenario and its year more of history, replayed and applied by one worker (which
    goes on running); the replay files."""
    scenario = bench.workdir / "xinjiang-2024h1.jsonl"
    history = bench.workdir / "history-26-weeks-later.jsonl"
    progress(f"generating the xinjiang-2024h1 scenario (scale {scale:g}) and its history")
    events = generate_xinjiang(str(scenario), seed=seed, scale=scale)
    events += shift_history(scenario, history)
    ensure_topics(settings)
    worker = bench.start_worker(env, "worker")
    wait_for_assignment(settings, worker, timeout_s=90)
    store = RedisStore.from_url(settings.redis_url, settings.topic_prefix)
    started = time.monotonic()
    for path in (scenario, history):
        published = publish(settings, path, batch=DEFAULT_BATCH)
        wait_until_applied(store, published.offsets, 600 + events / 500, progress=False)
    progress(f"{events:,} events replayed and applied in {time.monotonic() - started:.1f}s")
    return [scenario, history], worker


# ------------------------------------------------------------------------------ the load
class Tally:
    """Per question, the latencies of the answers with status 200; the other outcomes by kind."""

    def __init__(self, mix: list[Question]) -> None:
        self.latencies: dict[str, list[float]] = {q.name: [] for q in mix}
        self.errors: dict[str, int] = {}

    async def ask(self, session: aiohttp.ClientSession, question: Question, since: float) -> None:
        """Ask ``question``; its latency runs from ``since`` to the body read."""
        import aiohttp

        try:
            async with session.get(question.url_path) as response:
                await response.read()
                ok, why = response.status == 200, f"HTTP {response.status}"
        except (TimeoutError, aiohttp.ClientError) as exc:
            ok, why = False, type(exc).__name__
        if ok:
            self.latencies[question.name].append(time.perf_counter() - since)
        else:
            self.errors[why] = self.errors.get(why, 0) + 1

    def result(self, elapsed_s: float) -> dict[str, Any]:
        return {"latencies": self.latencies, "errors": self.errors, "elapsed_s": elapsed_s}


async def closed_loop(
    base: str, mix: list[Question], clients: int, seconds: float
) -> dict[str, Any]:
    """``clients`` clients, each asking the next question of the mix as soon as it has its
    answer, for ``seconds``."""
    import aiohttp

    tally = Tally(mix)
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(base, connector=connector) as session:
        deadline = time.perf_counter() + seconds

        async def client(index: int) -> None:
            n = index
            while time.perf_counter() < deadline:
                await tally.ask(session, mix[n % len(mix)], time.perf_counter())
                n += 1

        began = time.perf_counter()
        await asyncio.gather(*(client(i) for i in range(clients)))
        return tally.result(time.perf_counter() - began)


async def open_loop(base: str, mix: list[Question], rate: float, seconds: float) -> dict[str, Any]:
    """The mix asked at a fixed rate whatever the answers (the n-th request due at start +
    n / rate, up to ``OPEN_LOOP_CONNECTIONS`` at once), each timed from when it was due, so
    that a request kept waiting by slow ones before it counts its wait."""
    import aiohttp

    tally = Tally(mix)
    connector = aiohttp.TCPConnector(limit=OPEN_LOOP_CONNECTIONS)
    async with aiohttp.ClientSession(base, connector=connector) as session:
        began = time.perf_counter()
        asked = []
        for n in range(round(rate * seconds)):
            due = began + n / rate
            if due > time.perf_counter():
                await asyncio.sleep(due - time.perf_counter())
            asked.append(asyncio.create_task(tally.ask(session, mix[n % len(mix)], due)))
        await asyncio.gather(*asked)
        return tally.result(time.perf_counter() - began)


async def freshness_probe(
    base: str, settings: Settings, store: RedisStore, markers: int, spacing_s: float
) -> list[dict[str, Any]]:
    """Marker shipments, each at a port of its own: for each, when the worker applied it (its
    partition's mark reached its offset, polled every 2 ms) and when ``/v1/reports`` for its
    day filtered to its port first showed its value (asked back to back)."""
    import aiohttp

    producer = make_producer(settings)
    topic = settings.topic("shipment")
    run = uuid.uuid4().hex[:6]
    found = []
    try:
        async with aiohttp.ClientSession(base) as session:
            for n in range(markers):
                await asyncio.sleep(spacing_s)
                found.append(
                    await one_marker(
                        session, producer, store, topic, f"marker-{run}-{n}", Decimal(1000 + n)
                    )
                )
    finally:
        producer.close()
    return found


async def one_marker(
    session: aiohttp.ClientSession,
    producer: Any,
    store: RedisStore,
    topic: str,
    port: str,
    value: Decimal,
) -> dict[str, Any]:
    moment = datetime.now(UTC)
    event = {
        "type": "shipment",
        "event_id": port,
        "ts": moment.isoformat(),
        "port": port,
        "mode": "road",
        "direction": "export",
        "value_cny": str(value),
        "weight_tonnes": "1.000",
        "partner": "KZ",
        "trade_mode": "general",
        "zones": [],
    }
    sent = time.perf_counter()
    future = producer.send(topic, json.dumps(event).encode())
    metadata = await asyncio.to_thread(future.get, 30)
    acked = time.perf_counter()
    mark_name = f"{topic}:{metadata.partition}"
    url = f"/v1/reports?period={moment.astimezone(TZ).date()}&filter=port:{port}"
    applied: list[float] = []
    deadline = acked + 30

    async def watch_mark() -> None:
        while not applied and time.perf_counter() < deadline:
            if store.marks_of([mark_name])[mark_name] >= metadata.offset:
                applied.append(time.perf_counter())
            await asyncio.sleep(0.002)

    watcher = asyncio.create_task(watch_mark())
    shown = None
    while shown is None and time.perf_counter() < deadline:
        async with session.get(url) as response:
            body = await response.read()
        if response.status == 200 and shows(body, value):
            shown = time.perf_counter()
    await watcher
    if shown is None:
        return {"port": port, "shown": False}
    applied_at = min(applied[0], shown) if applied else shown
    return {
        "port": port,
        "shown": True,
        "applied_to_shown_ms": (shown - applied_at) * 1000,
        "acked_to_shown_ms": (shown - acked) * 1000,
        "sent_to_acked_ms": (acked - sent) * 1000,
    }


def shows(body: bytes, value: Decimal) -> bool:
    return bool(json.loads(body, parse_float=Decimal)["total"]["current"] == value)


def applied_events(store: RedisStore) -> int:
    return store.outcomes().applied


def under_load(
    base: str,
    mix: list[Question],
    settings: Settings,
    store: RedisStore,
    args: argparse.Namespace,
    pids: dict[str, int],
) -> dict[str, Any]:
    """The closed loop and the freshness probe together, with what every process spent."""
    cpu_before = {name: cpu_seconds(pid) or 0.0 for name, pid in pids.items()}
    machine_before = machine_busy_cpu_seconds()
    applied_before, began = applied_events(store), time.monotonic()

    async def both() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        spacing = args.seconds / (args.markers + 1)
        load, markers = await asyncio.gather(
            closed_loop(base, mix, args.clients, args.seconds),
            freshness_probe(base, settings, store, args.markers, spacing),
        )
        return load, markers

    load, markers = asyncio.run(both())
    wall = time.monotonic() - began
    applied_rate = (applied_events(store) - applied_before) / wall
    cpu = {
        name: round((cpu_seconds(pid) or 0.0) - cpu_before[name], 2) for name, pid in pids.items()
    }
    cpu["machine"] = round(machine_busy_cpu_seconds() - machine_before, 2)
    return {
        "load": load,
        "markers": markers,
        "applied_events_per_s": applied_rate,
        "cpu_s": cpu,
        "wall_s": wall,
    }


# ---------------------------------------------------------------------------------- a run
class SingleClient:
    """One client on one keep-alive connection, asking one question at a time."""

    def __init__(self, base: str) -> None:
        host, port = base.removeprefix("http://").split(":")
        self.connection = HTTPConnection(host, int(port), timeout=30)

    def body(self, question: Question) -> bytes:
        try:
            return self._get(question)
        except (RemoteDisconnected, ConnectionResetError):
            # the server closes a connection idle for its keep-alive (uvicorn: 5 s), which the
            # CLI's runs between two questions can exceed on a busy machine: ask again
            self.connection.close()
            return self._get(question)

    def _get(self, question: Question) -> bytes:
        self.connection.request("GET", question.url_path)
        response = self.connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"{question.url_path}: HTTP {response.status}: {body[:300]!r}")
        return body

    def answer(self, question: Question) -> dict[str, Any]:
        answer: dict[str, Any] = json.loads(self.body(question), parse_float=Decimal)
        return answer


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def run(args: argparse.Namespace, bench: Bench) -> dict[str, Any]:
    bench.start_servers()
    settings, env = bench.namespace("api")
    paths, worker = load_events(bench, settings, env, args.scale, args.seed)
    store = RedisStore.from_url(settings.redis_url, settings.topic_prefix)
    base, api = start_api(bench, env)
    mix = questions(datetime.now(TZ).date())

    progress("reading the shipments into DuckDB")
    csv_path = bench.workdir / "shipments.csv"
    shipments = shipments_csv(paths, csv_path)
    con = load_duckdb(csv_path)
    alone = Alone(SingleClient(base), con, {**os.environ, **env}, args)
    per_question = {question.name: alone.ask(question) for question in mix}

    simulate = start_simulate(bench, env, args.rate)
    time.sleep(args.warmup)
    pids = {
        "api": api.process.pid,
        "worker": worker.process.pid,
        "redis": bench.redis_pid,
        "broker": bench.broker_pid,
        "simulate": simulate.process.pid,
        "bench": os.getpid(),
    }
    progress(f"{args.clients} clients for {args.seconds:g}s, {args.markers} markers")
    measured = under_load(base, mix, settings, store, args, pids)
    opened = None
    if args.open_rate:
        progress(f"the mix at {args.open_rate:g} requests/s for {args.seconds:g}s (open loop)")
        opened = latency_figures(asyncio.run(open_loop(base, mix, args.open_rate, args.seconds)))
    bench.stop(simulate)
    add_load_figures(per_question, measured["load"])
    return {
        "scale": args.scale,
        "broker": bench.broker,
        "shipments_in_duckdb": shipments,
        "clients": args.clients,
        "simulate_rate": args.rate,
        "open_rate": args.open_rate,
        "applied_events_per_s": round(measured["applied_events_per_s"]),
        **latency_figures(measured["load"]),
        "open_loop": opened,
        **freshness_figures(measured["markers"]),
        "questions": per_question,
        "cpu_s": measured["cpu_s"],
        "wrong_answers": alone.wrong,
        "goals": {
            "p99_ms": GOAL_P99_MS,
            "requests_per_s": GOAL_REQUESTS_PER_S,
            "freshness_ms": GOAL_FRESHNESS_MS,
            "cli_ms": GOAL_CLI_S * 1000,
        },
    }


@dataclass
class Alone:
    """Each question before the load: its answer checked against DuckDB's, and the times of
    the CLI, the API and DuckDB with one client each."""

    single: SingleClient
    con: duckdb.DuckDBPyConnection
    cli_env: dict[str, str]
    args: argparse.Namespace
    wrong: int = 0

    def ask(self, question: Question) -> dict[str, Any]:
        runs = self.args.duckdb_runs
        entry: dict[str, Any] = {"route": question.route, "query": question.query}
        if question.route == "reports":  # first: the API would leave its rollups to the CLI
            entry.update(time_cli(question, self.cli_env, self.args.cli_runs))
        body = self.single.answer(question)
        entry["api_single_ms"] = ms(timed_median(partial(self.single.body, question), runs))
        if not question.live:
            duck = duckdb_answer(self.con, question)
            diff = differences(question, api_answer(question, body), duck)
            self.wrong += bool(diff)
            entry.update(
                exact=not diff,
                differences=diff[:5],
                duckdb_ms=ms(timed_median(partial(fetch_all, self.con, sql_of(question)), runs)),
            )
        shown = ("exact", "api_single_ms", "duckdb_ms", "cli_first_ms", "cli_ms")
        progress(
            f"{question.name}: " + ", ".join(f"{k} {v}" for k, v in entry.items() if k in shown)
        )
        return entry


def add_load_figures(per_question: dict[str, dict[str, Any]], load: dict[str, Any]) -> None:
    """Each question's requests and latency percentiles under the closed loop."""
    for name, entry in per_question.items():
        times = load["latencies"][name]
        entry.update(
            requests=len(times),
            p50_ms=ms(percentile(times, 50)) if times else None,
            p99_ms=ms(percentile(times, 99)) if times else None,
        )


def freshness_figures(markers: list[dict[str, Any]]) -> dict[str, Any]:
    fresh = [m["applied_to_shown_ms"] for m in markers if m["shown"]]
    return {
        "freshness_ms": [round(f, 1) for f in fresh],
        "freshness_max_ms": round(max(fresh), 1) if fresh else None,
        "markers_not_shown": sum(not m["shown"] for m in markers),
        "markers": markers,
    }


def latency_figures(load: dict[str, Any]) -> dict[str, Any]:
    """Requests, their rate, errors and latency percentiles (nearest rank) of a load."""
    every = [t for times in load["latencies"].values() for t in times]
    return {
        "seconds": round(load["elapsed_s"], 2),
        "requests": len(every),
        "requests_per_s": round(len(every) / load["elapsed_s"], 1),
        "errors": sum(load["errors"].values()),
        "errors_by_kind": load["errors"],
        **{f"p{q}_ms": ms(percentile(every, q)) if every else None for q in (50, 95, 99)},
    }


def p99_met(figures: dict[str, Any], goals: dict[str, Any]) -> bool:
    return figures["p99_ms"] is not None and figures["p99_ms"] <= goals["p99_ms"]


def fresh_enough(r: dict[str, Any], goals: dict[str, Any]) -> bool:
    return (
        bool(r["freshness_ms"])
        and not r["markers_not_shown"]
        and r["freshness_max_ms"] <= goals["freshness_ms"]
    )


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("yes" if ok else "NO")


def table(r: dict[str, Any]) -> str:
    g = r["goals"]
    lines = [
        f"API under load: {r['clients']} clients for {r['seconds']:g}s, scale {r['scale']:g} "
        f"({r['shipments_in_duckdb']:,} shipments), {r['broker']}; the worker applied "
        f"{r['applied_events_per_s']:,} events/s meanwhile (simulate --rate {r['simulate_rate']})",
        f"  requests {r['requests']:,}: {r['requests_per_s']:,} /s (goal >= "
        f"{g['requests_per_s']:g}: {verdict(r['requests_per_s'] >= g['requests_per_s'])}), "
        f"errors {r['errors']} {r['errors_by_kind'] or ''}",
        f"  latency p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms, p99 {r['p99_ms']} ms (goal p99 "
        f"<= {g['p99_ms']:g} ms: {verdict(p99_met(r, g))})",
        *open_loop_lines(r),
        f"  freshness, applied -> shown by /v1/reports: {r['freshness_ms']} ms (goal <= "
        f"{g['freshness_ms']:g} ms: {verdict(fresh_enough(r, g))})"
        + (f"; {r['markers_not_shown']} marker(s) never shown" if r["markers_not_shown"] else ""),
        f"  CPU seconds over the load: {r['cpu_s']}",
        "",
        f"{'question':<26} {'API p50':>8} {'p99':>7} {'API 1':>6} {'DuckDB':>7} {'faster':>6} "
        f"{'CLI 1st':>7} {'CLI':>6} {'<=300ms':>7} {'exact':>5}",
    ]
    for name, q in r["questions"].items():
        faster = (
            None
            if q.get("duckdb_ms") is None or q.get("p50_ms") is None
            else q["p50_ms"] < q["duckdb_ms"]
        )
        cli_ok = None if q.get("cli_ms") is None else q["cli_ms"] <= g["cli_ms"]
        lines.append(
            f"{name:<26} {_num(q.get('p50_ms')):>8} {_num(q.get('p99_ms')):>7} "
            f"{_num(q.get('api_single_ms')):>6} {_num(q.get('duckdb_ms')):>7} "
            f"{verdict(faster):>6} {_num(q.get('cli_first_ms')):>7} "
            f"{_num(q.get('cli_ms')):>6} "
            f"{verdict(cli_ok):>7} {verdict(q.get('exact')):>5}"
        )
        for line in q.get("differences") or []:
            lines.append(f"    differs: {line}")
        if q.get("cli_error"):
            lines.append(f"    CLI failed: {q['cli_error']}")
    lines.append(
        "(ms. API p50, p99: under the load; API 1, DuckDB: one client, median, before the "
        "load; faster: API p50 under load < DuckDB's; CLI 1st, CLI: portflow report as "
        "a process, the first run and the median of the next)"
    )
    return "\n".join(lines)


def open_loop_lines(r: dict[str, Any]) -> list[str]:
    o, g = r["open_loop"], r["goals"]
    if o is None:
        return []
    return [
        f"  open loop at {r['open_rate']:g} requests/s for {o['seconds']:g}s: "
        f"{o['requests']:,} answered ({o['requests_per_s']:,} /s), errors {o['errors']} "
        f"{o['errors_by_kind'] or ''}; latency from when each was due p50 {o['p50_ms']} ms, "
        f"p95 {o['p95_ms']} ms, p99 {o['p99_ms']} ms (goal p99 <= {g['p99_ms']:g} ms: "
        f"{verdict(p99_met(o, g))})"
    ]


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = parser_of("bench.api", __doc__)
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="xinjiang-2024h1 scale (default 1: ~643k events, twice that with the history)",
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the load (30)")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients (32)")
    parser.add_argument(
        "--rate",
        type=int,
        default=5000,
        help="events/s of portflow simulate during the load (5000)",
    )
    parser.add_argument(
        "--warmup", type=float, default=3.0, help="seconds of simulate before the load begins (3)"
    )
    parser.add_argument(
        "--open-rate",
        type=float,
        default=GOAL_REQUESTS_PER_S,
        help="then the mix at this fixed rate for --seconds, timed from when "
        "each request was due (default 500; 0: no open loop)",
    )
    parser.add_argument("--markers", type=int, default=5, help="freshness markers (5)")
    parser.add_argument("--duckdb-runs", type=int, default=7, help="DuckDB runs per question (7)")
    parser.add_argument(
        "--cli-runs", type=int, default=3, help="portflow report processes per question (3)"
    )
    add_seed_argument(parser)
    add_broker_argument(parser, "apache-kafka")
    add_output_arguments(parser)
    args = parser.parse_args(argv)
    if (
        args.seconds <= 0
        or args.clients < 1
        or args.rate < 1
        or args.markers < 0
        or args.open_rate < 0
    ):
        parser.error(
            "--seconds, --clients and --rate must be above 0, --markers and --open-rate at least 0"
        )

    status, result = run_on_servers("portflow-api-bench-", args, run)
    if result is None:
        return status
    result.update(asdict(Machine.now()))
    emit(result, args.json, lambda: table(result))
    return 1 if result["wrong_answers"] else 0


if __name__ == "__main__":
    sys.exit(main())
