"""The response bodies as OpenAPI documents them (pydantic models, used for the document only:
the routes write their JSON with ``to_json_bytes``, exact decimals as JSON numbers).

Amounts are ``float`` here because the document says "number"; objects allow members beyond
those named, so additions to the JSON stay within the document.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Problem(Open):
    """RFC 9457 problem details."""

    type: str = Field(description="urn:portflow:problem:<kind>")
    title: str
    status: int
    detail: str = Field(description="What went wrong and what is allowed")
    parameter: str | None = Field(None, description="The query parameter at fault (400)")
    months: list[str] | None = Field(None, description="Months without a USD rate (422)")


class Data(Open):
    """How far the applied events go against the period."""

    newest_event: str | None = Field(None, description="RFC 3339, in the time zone")
    time_zone: str | None = None
    period_status: Literal["complete", "in_progress", "no_data_yet"] | None = None


class Span(Open):
    first_day: str
    last_day: str


class Total(Open):
    current: float
    previous: float
    yoy_pct: float | None = None
    change: float | None = None
    growth_pct: float | None = None


class Row(Total):
    key: dict[str, str] = Field(description="The row's value of each `by` dimension")
    share_pct: float | None = None
    previous_share_pct: float | None = None
    share_change_pp: float | None = None
    contribution_pp: float | None = None
    contribution_share_pct: float | None = None
    rank: int | None = None
    previous_rank: int | None = None
    others: int | None = Field(None, description="Rows summed into the `top` rest row")


class Report(Open):
    period: str
    previous_period: str
    measure: str
    by: list[str]
    compare: Literal["yoy", "previous"] | None = None
    ytd: bool | None = None
    filters: dict[str, list[str]] | None = None
    currency: Literal["CNY", "USD"] | None = None
    unit: str | None = None
    span: Span | None = None
    previous_span: Span | None = None
    usd_rates: dict[str, str] | None = None
    rows: list[Row]
    total: Total
    data: Data


class SeriesRow(Open):
    time: str = Field(description="Local midnight, RFC 3339")
    key: str = Field(description="The dimension values joined with '/', or 'total'")
    value: float
    previous: float | None = None
    previous_time: str | None = None


class Series(Open):
    measure: str
    by: list[str]
    granularity: Literal["day", "month"]
    from_: str = Field(alias="from")
    to: str
    rows: list[SeriesRow]
    filters: dict[str, list[str]] | None = None
    currency: Literal["CNY", "USD"] | None = None
    unit: str | None = None
    time_zone: str | None = None
    data: Data | None = None


class Anomaly(Open):
    day: str
    key: dict[str, str]
    observed: float
    expected: float
    drop_pct: float
    baseline: str


class Anomalies(Open):
    period: str
    measure: str
    by: list[str]
    min_drop_pct: float
    anomalies: list[Anomaly]
    data: Data


class TopicStatus(Open):
    topic: str
    topic_id: str | None = None
    marks: dict[str, int] = Field(description="Partition → last applied offset")
    end_offsets: dict[str, int] | None = Field(
        None, description="Partition → the offset Kafka gives its next record (once read)"
    )
    lag: int | None = Field(None, description="Records in Kafka not applied yet")


class KafkaReading(Open):
    bootstrap: str
    read_s_ago: float | None = Field(
        None, description="Age of the end offsets (null: not read yet)"
    )
    error: str | None = Field(None, description="Why the last reading failed")


class Status(Open):
    topic_prefix: str
    redis: str = Field(description="The Redis URL, without its password")
    database: int
    state: dict[str, Any]
    outcomes: dict[str, Any]
    topics: list[TopicStatus]
    workers: list[dict[str, Any]]
    lost_offsets: dict[str, list[list[int]]]
    kafka: KafkaReading | None = None


class Rate(Open):
    rate: str = Field(description="Yuan per US dollar, exact decimal")
    source: str | None = None


class Rates(Open):
    rates: dict[str, Rate] = Field(description="Month (YYYY-MM) → its rate")


class Health(Open):
    status: Literal["ok"]


class Ready(Open):
    status: Literal["ready"]
    time_zone: str | None = None
    newest_event: str | None = None
