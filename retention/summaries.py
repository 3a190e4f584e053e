"""Per-customer summaries of counting orders, cached on Customer.

`first_order_at`, `last_order_at`, `order_count` and `total_spent` describe a
customer's paid orders. Every write path that adds or changes orders (the CSV
import, the API, the demo data) calls `refresh` for the customers it touched,
in the same transaction, so the cache never lags its orders; `refresh` with no
argument rebuilds every customer, which the nightly job uses as a safety net.
"""

from decimal import Decimal

from django.db.models import (
    Count,
    DecimalField,
    F,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.functions import Coalesce

from retention.models import Customer, Order


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


def refresh(customers: QuerySet | None = None) -> int:
    """Recompute the cached order summary of `customers` (all when None), in one UPDATE.

    Returns the number of customers updated. Customers with no counting order
    get nulls and zeros.
    """
    queryset = Customer.objects.all() if customers is None else customers
    money = DecimalField(max_digits=12, decimal_places=2)
    return queryset.update(
        first_order_at=_aggregate(Min("ordered_at")),
        last_order_at=_aggregate(Max("ordered_at")),
        order_count=Coalesce(_aggregate(Count("pk")), 0),
        total_spent=Coalesce(_aggregate(Sum("amount"), money), Decimal("0"), output_field=money),
    )


def stale(customers: QuerySet | None = None) -> QuerySet:
    """Customers whose cached summary differs from their orders (for checks and tests)."""
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
