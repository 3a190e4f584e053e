"""Per-customer summaries of counting orders, cached on Customer.

`first_order_at`, `last_order_at`, `order_count` and `total_spent` describe a
customer's paid orders. Every write path that adds or changes orders (the CSV
import, the API, the admin, the demo data) calls `refresh` for the customers it
touched, in the same transaction, so the cache never lags its orders; `refresh`
with no argument checks every customer, which the nightly job does as a safety
net.
"""

from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Count, DecimalField, F, Max, Min, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce

from retention.sales.models import Customer, Order

IDS = "retention_summary_ids"


def refresh(customers: QuerySet | None = None) -> int:
    """Recompute the cached order summary of `customers` (all when None).

    One set-based UPDATE over an aggregate of their paid orders, writing only the
    rows whose summary changed; returns how many changed. Customers with no
    counting order get nulls and zeros.
    """
    if customers is None:
        return refresh_ids_from(None)
    sql, params = customers.order_by().values_list("id").query.sql_with_params()
    # The ids go to a temporary table first, analysed, so that the planner knows how
    # many there are: estimated from stale statistics ("orders updated since last
    # night" looks like one row until ANALYZE runs), the update nested-loops over a
    # re-sorted aggregate per customer, 75 s instead of 0.5 s for 10,000 customers.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {IDS}")
        cursor.execute(f"CREATE TEMPORARY TABLE {IDS} AS {sql}", params)
        if connection.vendor == "postgresql":
            cursor.execute(f"ANALYZE {IDS}")
        changed = refresh_ids_from(f"SELECT id FROM {IDS}")
        cursor.execute(f"DROP TABLE {IDS}")
    return changed


def refresh_ids_from(ids_sql: str | None, params=()) -> int:
    """Like `refresh`, for the customers whose ids `ids_sql` selects (all when None)."""
    customer, order = Customer._meta.db_table, Order._meta.db_table
    if ids_sql is None:
        ids, only_them, params = f"SELECT id FROM {customer}", "", []
    else:
        ids, only_them = ids_sql, f"AND customer_id IN ({ids_sql})"
        params = [*params, *params]
    # UPDATE ... FROM runs on PostgreSQL and on SQLite 3.33 and later; SQLite's
    # null-safe "IS NOT" is older than its IS DISTINCT FROM (3.39).
    differs = "IS DISTINCT FROM" if connection.vendor == "postgresql" else "IS NOT"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""UPDATE {customer} SET first_order_at = fresh.first_at, last_order_at = fresh.last_at,
                    order_count = fresh.n, total_spent = fresh.total
                FROM (
                    SELECT ids.id, agg.first_at, agg.last_at,
                        COALESCE(agg.n, 0) AS n, COALESCE(agg.total, 0) AS total
                    FROM ({ids}) ids
                    LEFT JOIN (
                        SELECT customer_id, MIN(ordered_at) AS first_at, MAX(ordered_at) AS last_at,
                            COUNT(*) AS n, SUM(amount) AS total
                        FROM {order} WHERE status = 'paid' {only_them}
                        GROUP BY customer_id
                    ) agg ON agg.customer_id = ids.id
                ) fresh
                WHERE {customer}.id = fresh.id AND (
                    {customer}.order_count <> fresh.n OR {customer}.total_spent <> fresh.total
                    OR {customer}.first_order_at {differs} fresh.first_at
                    OR {customer}.last_order_at {differs} fresh.last_at)""",
            params,
        )
        return cursor.rowcount


def _aggregate(expression, output_field=None):
    per_customer = (
        Order.objects.counting()
        .filter(customer=OuterRef("pk"))
        .order_by()
        .values("customer")
        .annotate(value=expression)
        .values("value")
    )
    return Subquery(per_customer, output_field=output_field)


def stale(customers: QuerySet | None = None) -> QuerySet:
    """Customers whose cached summary differs from their orders (for checks and tests).

    Written independently of `refresh` (correlated subqueries through the ORM),
    so that each checks the other.
    """
    queryset = Customer.objects.all() if customers is None else customers
    money = DecimalField(max_digits=12, decimal_places=2)
    annotated = queryset.annotate(
        real_first=_aggregate(Min("ordered_at")),
        real_last=_aggregate(Max("ordered_at")),
        real_count=Coalesce(_aggregate(Count("pk")), 0),
        real_total=Coalesce(_aggregate(Sum("amount"), money), Decimal("0"), output_field=money),
    )
    return annotated.exclude(
        Q(order_count=F("real_count"))
        & Q(total_spent=F("real_total"))
        & (Q(first_order_at=F("real_first")) | Q(first_order_at__isnull=True, real_first__isnull=True))
        & (Q(last_order_at=F("real_last")) | Q(last_order_at__isnull=True, real_last__isnull=True))
    )
