"""The referral figure of the spec, from the referrals the sales platform records on customers
(Customer.referred_by): who referred a customer whose first counting order is in the period.

Registered as `retention.referrals` (retention/apps.py); an app that records referrals of
its own (loyalty's referral codes) may take the figure over with `replaces`.
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef, QuerySet

from retention.figures.counting import Bounds
from retention.figures.registry import Figures
from retention.money import rate
from retention.sales.models import Customer, Order


def referrers(bounds: Bounds, customers) -> QuerySet:
    """Customers (of the subset) who referred someone whose first counting order is in P.

    Referrals are read from Customer.referred_by, which the sales platform sends; first
    orders from the orders themselves (an order in P and none before it).
    """
    counting = Order.objects.counting().filter(customer=OuterRef("pk"))
    referred = Customer.objects.filter(referred_by__isnull=False).filter(
        Exists(counting.filter(ordered_at__gte=bounds.start, ordered_at__lt=bounds.end)),
        ~Exists(counting.filter(ordered_at__lt=bounds.start)),
    )
    queryset = Customer.objects.all() if customers is None else customers
    return queryset.filter(pk__in=referred.values("referred_by"))


FIGURES = Figures(
    name="retention.referrals",
    keys=("referral_rate",),
    count=lambda scope: {"referrers": referrers(scope.bounds, scope.customers).count()},
    finish=lambda counted, figures: {
        "referral_rate": rate(counted["referrers"], figures["customers_end"])},
)
