"""Monthly cohort retention, as shared/spec/metrics.md ("Cohort retention") defines it.

A customer's cohort is the calendar month (in the business zone) of their first
paid order. For cohort month c and offset k, the cell is the share of the
cohort's customers with a paid order dated in month c + k, and beside it the
cohort's revenue in that month. The as-of date is the range's end: orders after
it count nowhere, and months after
it have no cell. The cohorts are the calendar months that overlap the range;
a month nobody started in has size 0 and null shares.

Two queries, both grouped in the database: cohort sizes, and the
(cohort, month) cells, each reading the customer's cached first paid order.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone

from retention.figures import reports
from retention.figures.metrics import InvalidPeriod
from retention.money import money, rate
from retention.periods import add_months, midnight, month_start, months_between
from retention.sales.models import Customer, Order


def table(start: date, end: date) -> dict:
    """Return {"as_of": end, "cohorts": [{"cohort", "size", "retention", "revenue"}, ...]}."""
    if end < start:
        raise InvalidPeriod(f"the end {end} is before the start {start}")
    if start.year < 1900 or end.year > 2999:
        raise InvalidPeriod("dates must lie between 1900 and 2999")
    zone = ZoneInfo(settings.TIME_ZONE)
    first_month = month_start(start)
    since_at = midnight(first_month, zone)
    end_at = midnight(end + timedelta(days=1), zone)  # orders after the as-of date count nowhere

    # A customer's first paid order is the cached `first_order_at` (retention.sales.summaries,
    # kept in step by every write path and checked nightly); orders after the as-of date
    # cannot come before it, so a first order after `end` puts the customer in no cohort.
    cohort_customers = Customer.objects.filter(first_order_at__gte=since_at, first_order_at__lt=end_at)
    sizes = (
        cohort_customers.annotate(cohort=TruncMonth("first_order_at", tzinfo=zone))
        .order_by()
        .values("cohort")
        .annotate(size=Count("pk"))
    )
    cells = (
        Order.objects.counting()
        .filter(ordered_at__gte=since_at, ordered_at__lt=end_at,
                customer__first_order_at__gte=since_at)
        .annotate(cohort=TruncMonth("customer__first_order_at", tzinfo=zone),
                  month=TruncMonth("ordered_at", tzinfo=zone))
        .order_by()
        .values("cohort", "month")
        .annotate(customers=Count("customer", distinct=True), revenue=Sum("amount"))
    )
    size_of = {_month(row["cohort"], zone): row["size"] for row in sizes}
    cell_of = {(_month(row["cohort"], zone), _month(row["month"], zone)): row for row in cells}

    cohorts = []
    last = (end.year, end.month)
    for cohort in months_between(first_month, end):
        size = size_of.get(cohort, 0)
        retention, revenue = [], []
        for month in months_between(date(*cohort, 1), date(*last, 1)):
            cell = cell_of.get((cohort, month))
            retention.append(rate(cell["customers"] if cell else 0, size))
            revenue.append(money(cell["revenue"] if cell else 0))
        cohorts.append({"cohort": f"{cohort[0]:04d}-{cohort[1]:02d}", "size": size,
                        "retention": retention, "revenue": revenue})
    return {"as_of": end.isoformat(), "cohorts": cohorts}


DEFAULT_MONTHS = 12


def default_range(as_of: date) -> tuple[date, date]:
    """The managers' page's range: the 12 months up to `as_of`, which is the as-of date."""
    return add_months(month_start(as_of), -(DEFAULT_MONTHS - 1)), as_of


def stored_table(start: date, end: date, *, refresh: bool = False) -> dict:
    """`table(start, end)`, kept as a stored report until an order dated by `end` changes."""
    return reports.cached("cohorts", f"{start}..{end}", depends_until=end,
                          compute=lambda: table(start, end), refresh=refresh)


def _month(value: datetime | date, zone: ZoneInfo) -> tuple[int, int]:
    if isinstance(value, datetime):
        value = timezone.localtime(value, zone) if timezone.is_aware(value) else value
    return value.year, value.month
