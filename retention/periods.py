"""Days, months and quarters in the business time zone: the one place their arithmetic lives.

Every figure is about dates in the business zone (setting TIME_ZONE). An order's date
is its date-time in that zone; a day starts at `midnight(day)` and the next day's
midnight ends it (ranges of moments are half-open). A period is a range of dates with
both ends included, and its previous period follows the spec ("Periods and activity").

    midnight(date(2026, 3, 31))           -> 2026-03-31 00:00 in TIME_ZONE
    quarter_of(date(2026, 8, 5))          -> (2026, 3)
    quarter_bounds(2026, 3)               -> (2026-07-01, 2026-09-30)
    Period(date(2026, 7, 1), date(2026, 9, 30)).previous() -> 2026-04-01..2026-06-30

A leaf module: it imports nothing of the project, so every area may use it.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

ONE_DAY = timedelta(days=1)


def business_zone() -> ZoneInfo:
    """The business time zone (setting TIME_ZONE), read when called."""
    return ZoneInfo(settings.TIME_ZONE)


def midnight(day: date, zone: ZoneInfo | None = None) -> datetime:
    """The first moment of `day` in the business zone (an order dated `day` is at or after it)."""
    return datetime.combine(day, time.min, tzinfo=zone or business_zone())


def last_complete_day() -> date:
    """Yesterday in the business zone: the last day whose orders have all arrived.

    The nightly pipeline runs for it and the managers' pages show figures up to it.
    """
    return timezone.localdate() - ONE_DAY


# Months ------------------------------------------------------------------------------------------


def month_start(day: date) -> date:
    return day.replace(day=1)


def month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def is_month_end(day: date) -> bool:
    return (day + ONE_DAY).day == 1


def add_months(day: date, months: int) -> date:
    """`day` moved by `months` calendar months, its day of the month kept where the month has
    it (31 January + 1 month is the last day of February)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def months_between(first: date, last: date) -> list[tuple[int, int]]:
    """The calendar months (year, month) from `first`'s to `last`'s, both included."""
    months, year, month = [], first.year, first.month
    while (year, month) <= (last.year, last.month):
        months.append((year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def months_before(month: date, count: int) -> list[tuple[date, date]]:
    """The `count` whole calendar months before `month`'s, oldest first, as (first, last) days."""
    months, end = [], month_start(month) - ONE_DAY
    for _ in range(count):
        start = month_start(end)
        months.insert(0, (start, end))
        end = start - ONE_DAY
    return months


def month_ends_before(day: date, count: int) -> list[date]:
    """The last days of the `count` months before `day`'s month, oldest first."""
    return [end for _start, end in months_before(day, count)]


def last_month_end(day: date) -> date:
    """`day` when it is the last day of its month, else the last day of the month before."""
    return day if is_month_end(day) else month_start(day) - ONE_DAY


# Quarters ----------------------------------------------------------------------------------------


def quarter_of(day: date) -> tuple[int, int]:
    """(year, quarter 1-4) of `day`."""
    return day.year, (day.month - 1) // 3 + 1


def quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def quarter_bounds(year: int, quarter: int) -> tuple[date, date]:
    """The first and last day of a calendar quarter."""
    first = date(year, 3 * quarter - 2, 1)
    return first, add_months(first, 3) - ONE_DAY


def previous_quarter(year: int, quarter: int) -> tuple[int, int]:
    return (year - 1, 4) if quarter == 1 else (year, quarter - 1)


def quarter_label(day: date) -> str:
    """"2026 Q3" for a day of that quarter."""
    year, quarter = quarter_of(day)
    return f"{year} Q{quarter}"


# Periods -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """A range of dates, both ends included."""

    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Period:
        """The previous calendar month, quarter or year when the period is exactly one;
        otherwise the same number of days ending the day before `start`."""
        start, end = self.start, self.end
        if start.day == 1 and end == month_end(end):
            months = (end.year - start.year) * 12 + end.month - start.month + 1
            is_quarter = months == 3 and start.month % 3 == 1
            is_year = months == 12 and start.month == 1
            if months == 1 or is_quarter or is_year:
                return Period(add_months(start, -months), start - ONE_DAY)
        return Period(start - timedelta(days=self.days), start - ONE_DAY)
