"""How far the applied events go, against a report period: what reports say beside their figures.

Event time decides, in the reporting time zone: a period has **no data yet** while the newest
event applied is before its first day (or none was applied), is **in progress** while the newest
event falls within it, and is **complete** once an event of a later day was applied (as a day is
complete for drop detection). Late events may still add to a complete period: this says what the
workers have applied, not what producers will send.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final, TypedDict
from zoneinfo import ZoneInfo

from portflow.domain.periods import Period

COMPLETE: Final = "complete"
IN_PROGRESS: Final = "in_progress"
NO_DATA_YET: Final = "no_data_yet"


class CoverageData(TypedDict):
    """The ``data`` member of reports and anomalies."""

    newest_event: str | None  # RFC 3339, in the reporting time zone
    time_zone: str
    period_status: str  # COMPLETE, IN_PROGRESS or NO_DATA_YET


def period_status(period: Period, newest_day: date | None) -> str:
    """``complete``, ``in_progress`` or ``no_data_yet``, from the local day of the newest event
    applied (None before any event)."""
    if newest_day is None or newest_day < period.first_day():
        return NO_DATA_YET
    if newest_day <= period.last_day():
        return IN_PROGRESS
    return COMPLETE


@dataclass(frozen=True)
class Coverage:
    """A period against the newest event applied (aware, in the reporting time zone)."""

    period: Period
    newest_event: datetime | None
    time_zone: str  # its IANA name

    @classmethod
    def of(cls, period: Period, newest_ts: int | None, tz: ZoneInfo) -> Coverage:
        """From the newest event time applied, Unix seconds (None before any event)."""
        newest = None if newest_ts is None else datetime.fromtimestamp(newest_ts, tz)
        return cls(period, newest, tz.key)

    @property
    def status(self) -> str:
        return period_status(
            self.period, None if self.newest_event is None else self.newest_event.date()
        )

    @property
    def last_complete_day(self) -> date | None:
        """The period's last day that an event of a later day has passed, or None."""
        if self.newest_event is None:
            return None
        day = min(self.newest_event.date() - timedelta(days=1), self.period.last_day())
        return day if day >= self.period.first_day() else None

    def as_json(self) -> CoverageData:
        """The ``data`` member of reports and anomalies."""
        return {
            "newest_event": None if self.newest_event is None else self.newest_event.isoformat(),
            "time_zone": self.time_zone,
            "period_status": self.status,
        }


def sentence(period: str, data: CoverageData) -> str:
    """One line for text output from a ``data`` member: the period's status and how far the
    events applied go."""
    if data["newest_event"] is None:
        return f"{period} has no data yet: no event has been applied"
    through = (
        f"{datetime.fromisoformat(data['newest_event']):%Y-%m-%d %H:%M:%S} {data['time_zone']}"
    )
    return {
        COMPLETE: f"{period} is complete: events applied through {through}",
        IN_PROGRESS: f"{period} is in progress: events applied through {through}",
        NO_DATA_YET: f"{period} has no data yet: events applied only through {through}",
    }[data["period_status"]]
