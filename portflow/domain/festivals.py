"""The Spring Festival (Chinese New Year), which moves by up to four weeks from year to year.

Trade through the ports slows in the weeks around it: factories close before New Year's Eve,
the official holiday runs about a week, and traffic recovers by the Lantern Festival two weeks
later. Detection compares a day in that stretch with the day at the same distance from the
previous year's festival, never with the same calendar date (see ``domain.detection``).
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

# New Year's Day of the Chinese calendar (the first day of the first lunar month).
SPRING_FESTIVAL: dict[int, date] = {
    year: date(year, month, day)
    for year, month, day in (
        (2000, 2, 5),
        (2001, 1, 24),
        (2002, 2, 12),
        (2003, 2, 1),
        (2004, 1, 22),
        (2005, 2, 9),
        (2006, 1, 29),
        (2007, 2, 18),
        (2008, 2, 7),
        (2009, 1, 26),
        (2010, 2, 14),
        (2011, 2, 3),
        (2012, 1, 23),
        (2013, 2, 10),
        (2014, 1, 31),
        (2015, 2, 19),
        (2016, 2, 8),
        (2017, 1, 28),
        (2018, 2, 16),
        (2019, 2, 5),
        (2020, 1, 25),
        (2021, 2, 12),
        (2022, 2, 1),
        (2023, 1, 22),
        (2024, 2, 10),
        (2025, 1, 29),
        (2026, 2, 17),
        (2027, 2, 6),
        (2028, 1, 26),
        (2029, 2, 13),
        (2030, 2, 3),
        (2031, 1, 23),
        (2032, 2, 11),
        (2033, 1, 31),
        (2034, 2, 19),
        (2035, 2, 8),
        (2036, 1, 28),
        (2037, 2, 15),
        (2038, 2, 4),
        (2039, 1, 24),
        (2040, 2, 12),
    )
}
SUPPORTED_YEARS = range(min(SPRING_FESTIVAL), max(SPRING_FESTIVAL) + 1)

# The days around the festival that trade feels it, from two weeks before New Year's Day (the
# run-up to the holiday) to four weeks after (the holiday, the Lantern Festival, the return).
WINDOW_BEFORE = 14
WINDOW_AFTER = 27
# Where the festival is unknown (a year outside the table), every day it could touch counts:
# it falls between 21 January and 20 February.
_EARLIEST, _LATEST = (1, 21), (2, 20)


def festival_offset(day: date) -> int | None:
    """Days from the nearest Spring Festival if ``day`` is within its window, else None."""
    for year in (day.year, day.year + 1):
        festival = SPRING_FESTIVAL.get(year)
        if festival is not None and -WINDOW_BEFORE <= (day - festival).days <= WINDOW_AFTER:
            return (day - festival).days
    return None


@lru_cache(maxsize=4096)  # judging asks about the same few hundred days again and again
def in_festival_window(day: date) -> bool:
    """Whether the festival may shape ``day``'s traffic (every possible day in unknown years)."""
    if day.year in SPRING_FESTIVAL and day.year + 1 in SPRING_FESTIVAL:
        return festival_offset(day) is not None
    earliest = date(day.year, *_EARLIEST) - timedelta(days=WINDOW_BEFORE)
    latest = date(day.year, *_LATEST) + timedelta(days=WINDOW_AFTER)
    return earliest <= day <= latest or festival_offset(day) is not None


def same_festival_day_a_year_earlier(day: date) -> date | None:
    """The day as far from the previous year's festival as ``day`` is from its own, if both
    festivals are known and ``day`` is in its window."""
    offset = festival_offset(day)
    if offset is None:
        return None
    festival_year = (day - timedelta(days=offset)).year
    earlier = SPRING_FESTIVAL.get(festival_year - 1)
    return None if earlier is None else earlier + timedelta(days=offset)
