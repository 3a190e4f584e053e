"""Membership figures of the spec: the monthly recurring revenue (MRR) at the period's start,
the part of it that churned, and the net MRR retention of the customers who had it.

Registered as `retention.memberships` (retention/apps.py) and counted beside the main pass.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.db.models import Exists, OuterRef, Q, QuerySet, Sum

from retention.figures.registry import Figures
from retention.money import money, rate
from retention.periods import Period
from retention.sales.models import Membership


def mrr(period: Period, customers) -> dict:
    """MRR figures. A membership's `ended_on` is its last day of access, so it is active
    at the start of day d when started_on <= d <= ended_on, and at the end of day d when
    started_on <= d < ended_on. It is renewed when another membership of the customer
    starts by the day after it ends and runs past that end (a renewal, or a change of plan).
    """
    memberships = Membership.objects.all()
    if customers is not None:
        memberships = memberships.filter(customer__in=customers)
    start, end = period.start, period.end
    at_start = memberships.filter(Q(started_on__lte=start)
                                  & (Q(ended_on__isnull=True) | Q(ended_on__gte=start)))
    renewal = Membership.objects.filter(
        customer=OuterRef("customer"), started_on__lte=OuterRef("ended_on") + timedelta(days=1),
    ).exclude(pk=OuterRef("pk")).filter(
        Q(ended_on__isnull=True) | Q(ended_on__gt=OuterRef("ended_on"))
    )
    churned = at_start.filter(ended_on__gte=start, ended_on__lte=end).exclude(Exists(renewal))
    at_end_of_customers = Membership.objects.filter(
        customer__in=at_start.values("customer"), started_on__lte=end,
    ).filter(Q(ended_on__isnull=True) | Q(ended_on__gt=end))

    mrr_start = _monthly(at_start)
    mrr_churned = _monthly(churned)
    return {
        "mrr_start": money(mrr_start),
        "mrr_churned": money(mrr_churned),
        "mrr_churn_rate": rate(mrr_churned, mrr_start),
        "net_mrr_retention": rate(_monthly(at_end_of_customers), mrr_start),
    }


def _monthly(memberships: QuerySet) -> Decimal:
    """Exact MRR of these memberships: price / 1 for monthly, price / 12 for yearly."""
    sums = memberships.aggregate(
        monthly=Sum("price", filter=Q(interval=Membership.Interval.MONTH)),
        yearly=Sum("price", filter=Q(interval=Membership.Interval.YEAR)),
    )
    return Decimal(sums["monthly"] or 0) + Decimal(sums["yearly"] or 0) / 12


FIGURES = Figures(
    name="retention.memberships",
    keys=("mrr_start", "mrr_churned", "mrr_churn_rate", "net_mrr_retention"),
    count=lambda scope: mrr(scope.period, scope.customers),
)
