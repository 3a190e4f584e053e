"""New-offering engagement (spec): the customers active at the start of the period who, during
it, bought or started a course or bundle new for the period, out of those active at the start.

Registered as `retention.new_offering_engagement` (retention/apps.py); the list of those
customers is `engaged_with_new` (retention.figures.drilldown shows it).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from django.db import connection
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL

from retention.figures.counting import Bounds
from retention.figures.registry import Figures
from retention.money import rate
from retention.periods import Period
from retention.sales.models import Bundle, Course, Customer, Enrolment, Order, OrderLine

if TYPE_CHECKING:
    from retention.figures.metrics import Options


def new_offerings(period: Period, options: Options) -> tuple[list[int], list[int]]:
    """Ids of the courses and bundles new for the period (launched on or after start − V)."""
    new_since = period.start - timedelta(days=options.new_offering_window_days)
    return (list(Course.objects.filter(launched_on__gte=new_since).values_list("pk", flat=True)),
            list(Bundle.objects.filter(launched_on__gte=new_since).values_list("pk", flat=True)))


def engaged_sql(period: Period, options: Options, bounds: Bounds) -> tuple[str, list] | None:
    """SQL for the ids of customers who, during the period, bought or started something
    new for it (None when nothing is new). An order before the launch (early access)
    counts, as the spec says. The catalogue is small, so the new offerings are read
    first and the line and enrolment filters name their ids."""
    courses, bundles = new_offerings(period, options)
    if not courses and not bundles:
        return None
    order, line = Order._meta.db_table, OrderLine._meta.db_table
    enrolment = Enrolment._meta.db_table
    offered = " OR ".join(
        [f"l.course_id IN ({', '.join(['%s'] * len(courses))})"] * bool(courses)
        + [f"l.bundle_id IN ({', '.join(['%s'] * len(bundles))})"] * bool(bundles)
    )
    start, end = (connection.ops.adapt_datetimefield_value(value)
                  for value in (bounds.start, bounds.end))
    sql = (f"SELECT o.customer_id AS customer_id FROM {line} l JOIN {order} o ON o.id = l.order_id"
           f" WHERE o.status = 'paid' AND o.ordered_at >= %s AND o.ordered_at < %s AND ({offered})")
    params = [start, end, *courses, *bundles]
    if courses:
        sql += (f" UNION SELECT e.customer_id FROM {enrolment} e WHERE e.started_on >= %s"
                f" AND e.started_on <= %s AND e.course_id IN ({', '.join(['%s'] * len(courses))})")
        params += [connection.ops.adapt_datefield_value(period.start),
                   connection.ops.adapt_datefield_value(period.end), *courses]
    return sql, params


def engaged_with_new(period: Period, options: Options, bounds: Bounds) -> QuerySet:
    """The customers of `engaged_sql`, as a queryset (for the lists behind the figure)."""
    found = engaged_sql(period, options, bounds)
    if found is None:
        return Customer.objects.none()
    sql, params = found
    return Customer.objects.filter(pk__in=RawSQL(sql, params))


def engaged_at_start(period: Period, options: Options, bounds: Bounds, customers) -> int:
    """Customers active at the start who bought or started something new during the period.

    The engaged customers are few beside S, so they are found first (a union of two
    index scans) and each is checked for an order in the start window (an index probe).
    """
    found = engaged_sql(period, options, bounds)
    if found is None:
        return 0
    engaged, params = found
    order = Order._meta.db_table
    sql = (f"SELECT COUNT(*) FROM ({engaged}) x WHERE EXISTS (SELECT 1 FROM {order} s"
           f" WHERE s.customer_id = x.customer_id AND s.status = 'paid'"
           f" AND s.ordered_at >= %s AND s.ordered_at < %s)")
    params = [*params, *(connection.ops.adapt_datetimefield_value(value)
                         for value in (bounds.start_window, bounds.start))]
    if customers is not None:
        subset_sql, subset_params = customers.order_by().values("pk").query.sql_with_params()
        sql += f" AND x.customer_id IN ({subset_sql})"
        params += subset_params
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


FIGURES = Figures(
    name="retention.new_offering_engagement",
    keys=("new_offering_engagement_rate",),
    count=lambda scope: {"engaged": engaged_at_start(scope.period, scope.options, scope.bounds,
                                                     scope.customers)},
    finish=lambda counted, figures: {
        "new_offering_engagement_rate": rate(counted["engaged"], figures["customers_start"])},
)
