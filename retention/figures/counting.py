"""The main pass of the period metrics: one aggregate over paid orders grouped by customer.

`per_customer(bounds)` gives one row per customer with a counting order dated on or
before the period's end, with their orders and revenue in each window the figures read
(the period P, the previous period P', the 365 days Y behind `clv_simple`, the start
and end activity windows). `activity(bounds)` aggregates those rows into the counts of
S, E, N, R, the purchases and the revenue, in one query; every list of customers behind
a figure is a filter on the same rows (retention.figures.drilldown), so the two cannot
disagree.

`side_by_side` runs the other figures beside this aggregate, on PostgreSQL on a second
connection that shares its snapshot, inside `counting_session`, which tunes the
planner for it.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TypeVar
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, DecimalField, IntegerField, Min, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce

from retention.periods import Period, midnight
from retention.sales.models import Order

T, U = TypeVar("T"), TypeVar("U")

@dataclass(frozen=True)
class Bounds:
    """The moments that the windows of one computation start and end at (ends exclusive).

    P is the period, P' the previous period, Y the 365 days ending at `end` (clv_simple).
    A customer is active at the start of P with an order in [start_window, start), at the
    end of P (and of Y, which ends on the same day) with one in [end_window, end).
    """

    start: datetime
    end: datetime
    start_window: datetime
    end_window: datetime
    previous_start: datetime
    previous_end: datetime
    year_start: datetime
    year_start_window: datetime

    @classmethod
    def of(cls, period: Period, window_days: int, zone: ZoneInfo) -> Bounds:
        previous = period.previous()
        year_start = period.end - timedelta(days=364)
        return cls(
            start=midnight(period.start, zone),
            end=midnight(period.end + timedelta(days=1), zone),
            start_window=midnight(period.start - timedelta(days=window_days), zone),
            end_window=midnight(period.end - timedelta(days=window_days - 1), zone),
            previous_start=midnight(previous.start, zone),
            previous_end=midnight(previous.end + timedelta(days=1), zone),
            year_start=midnight(year_start, zone),
            year_start_window=midnight(year_start - timedelta(days=window_days), zone),
        )


def _orders_in(q: Q) -> Count:
    # Count a column the covering index holds (never null), not the primary key.
    return Count("ordered_at", filter=q)


def _amount_in(q: Q | None = None) -> Coalesce:
    # A FILTER clause (or SQLite's equivalent) rather than CASE … ELSE 0: most rows are
    # outside any one window, and adding a numeric zero for each of them is what costs.
    return Coalesce(Sum("amount", filter=q), Value(0), output_field=_money_field())


def per_customer(bounds: Bounds, customers: QuerySet | None = None) -> QuerySet:
    """One row per customer with a counting order dated on or before the period's end.

    Every activity figure of P, P' and Y is an aggregate of these rows, and every
    list of customers behind a figure is a filter on them (retention.figures.drilldown), so
    the two cannot disagree. The columns: `first_at` (their first counting order
    ever), `n_start` and `n_end` (orders in the start and end windows), `n_period` and
    `revenue_period` (in P), `n_to_end` and `spent_to_end` (all up to the end),
    `revenue_previous` (in P'), `n_year_start` (in Y's start window), `n_year` and
    `revenue_year` (in Y).

    The aggregates read only `customer_id`, `ordered_at`, `status` and `amount`, which
    the covering index `retention_order_customer_cover` holds in customer order, so
    PostgreSQL streams it once (`counting_session` makes it prefer that plan).
    """
    b = bounds
    orders = Order.objects.counting().filter(ordered_at__lt=b.end)
    if customers is not None:
        orders = orders.filter(customer__in=customers)
    in_period = Q(ordered_at__gte=b.start)
    in_year = Q(ordered_at__gte=b.year_start)
    return orders.order_by().values("customer").annotate(
        first_at=Min("ordered_at"),
        n_start=_orders_in(Q(ordered_at__gte=b.start_window, ordered_at__lt=b.start)),
        n_end=_orders_in(Q(ordered_at__gte=b.end_window)),
        n_period=_orders_in(in_period),
        revenue_period=_amount_in(in_period),
        n_to_end=Count("ordered_at"),
        spent_to_end=_amount_in(),
        revenue_previous=_amount_in(Q(ordered_at__gte=b.previous_start,
                                      ordered_at__lt=b.previous_end)),
        n_year_start=_orders_in(Q(ordered_at__gte=b.year_start_window,
                                  ordered_at__lt=b.year_start)),
        n_year=_orders_in(in_year),
        revenue_year=_amount_in(in_year),
    )


# The customer sets that the figures count, as filters on `per_customer` rows.
ACTIVE_START = Q(n_start__gt=0)


ACTIVE_END = Q(n_end__gt=0)


BOUGHT = Q(n_period__gt=0)


def existing(bounds: Bounds) -> Q:
    """First counting order before the period."""
    return Q(first_at__lt=bounds.start)


def activity(bounds: Bounds, customers) -> dict:
    """The activity, purchase and revenue counts of P, P' and Y, in one query."""
    zero = Value(0)
    is_existing = existing(bounds)
    totals = per_customer(bounds, customers).aggregate(
        customers_start=Count("customer", filter=ACTIVE_START),
        customers_end=Count("customer", filter=ACTIVE_END),
        new=Count("customer", filter=Q(first_at__gte=bounds.start)),
        retained=Count("customer", filter=ACTIVE_START & ACTIVE_END),
        reactivated=Count("customer", filter=ACTIVE_END & ~ACTIVE_START & is_existing),
        orders=Coalesce(Sum("n_period"), zero, output_field=IntegerField()),
        revenue=Coalesce(Sum("revenue_period"), zero, output_field=_money_field()),
        buyers=Count("customer", filter=BOUGHT),
        repeat_buyers=Count("customer", filter=Q(n_period__gte=2)),
        returning_buyers=Count("customer", filter=BOUGHT & is_existing),
        existing_revenue=Coalesce(
            Sum("revenue_period", filter=is_existing), zero, output_field=_money_field()
        ),
        existing_revenue_previous=Coalesce(
            Sum("revenue_previous", filter=Q(first_at__lt=bounds.previous_start)), zero,
            output_field=_money_field(),
        ),
        repeat_to_end=Count("customer", filter=Q(n_to_end__gte=2)),
        customers_to_end=Count("customer"),
        revenue_to_end=Coalesce(Sum("spent_to_end"), zero, output_field=_money_field()),
        year_start=Count("customer", filter=Q(n_year_start__gt=0)),
        year_retained=Count("customer", filter=Q(n_year_start__gt=0) & ACTIVE_END),
        year_buyers=Count("customer", filter=Q(n_year__gt=0)),
        year_revenue=Coalesce(Sum("revenue_year"), zero, output_field=_money_field()),
    )
    return {key: (Decimal(value) if "revenue" in key else value) for key, value in totals.items()}


@contextmanager
def counting_session(*, repeatable: bool = False, snapshot: str | None = None):
    """A transaction whose planner settings suit the per-customer aggregate.

    On PostgreSQL: stream the covering index in customer order into a sorted (group)
    aggregate rather than hash millions of groups (the planner underestimates their
    number, and a hash of a million numeric sums spills to disk); keep to one core,
    since `side_by_side` uses the other; and give the sorts and hashes of the smaller
    queries the memory of RETENTION_METRICS_WORK_MEM. `repeatable`: one snapshot for
    the whole transaction (REPEATABLE READ); with `snapshot` (from pg_export_snapshot),
    the one another transaction took. SET LOCAL ends with the transaction. Other
    databases: a plain transaction.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            if repeatable or snapshot:  # both must come before any other statement
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            if snapshot:
                cursor.execute("SET TRANSACTION SNAPSHOT %s", [snapshot])
            cursor.execute("SET LOCAL enable_hashagg = off")
            cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
            cursor.execute("SELECT set_config('work_mem', %s, true)",
                           [settings.RETENTION_METRICS_WORK_MEM])
        yield cursor


def side_by_side(first: Callable[[], T], second: Callable[[], U]) -> tuple[T, U]:
    """Run two read-only computations, concurrently when the database allows it.

    On PostgreSQL outside any transaction (the commands, the nightly job and the
    pages), `second` runs in a thread on a connection of its own whose transaction
    imports the snapshot of the first one (pg_export_snapshot), so both read the same
    data, as pg_dump's parallel workers do. Inside a transaction (a caller's atomic
    block, or a test's), or on SQLite, or with RETENTION_METRICS_PARALLEL off, they
    run one after the other in the same transaction.
    """
    concurrent = (connection.vendor == "postgresql" and not connection.in_atomic_block
                  and settings.RETENTION_METRICS_PARALLEL)
    if not concurrent:
        with counting_session():
            return first(), second()
    with counting_session(repeatable=True) as cursor:
        cursor.execute("SELECT pg_export_snapshot()")
        (snapshot,) = cursor.fetchone()
        with ThreadPoolExecutor(max_workers=1) as pool:
            later = pool.submit(_in_snapshot, snapshot, second)
            result = first()
            return result, later.result()


def _in_snapshot(snapshot: str, work: Callable[[], U]) -> U:
    try:
        with counting_session(snapshot=snapshot):
            return work()
    finally:
        connection.close()  # this thread's own connection


def _money_field():
    return DecimalField(max_digits=20, decimal_places=2)
