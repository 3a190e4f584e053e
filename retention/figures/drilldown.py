"""The customers behind a figure: who churned, who came back, who took up something new.

Each set is the filter that the figure counts, applied to the same per-customer rows
(retention.figures.counting.per_customer) or the same subqueries, so a list always holds as
many customers as its figure says. `customers(name, start, end, subset=...)` returns
a Customer queryset; the pages paginate and export it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Q, QuerySet

from retention.figures import counting, engagement, metrics, referrals
from retention.figures.counting import ACTIVE_END, ACTIVE_START, BOUGHT, Bounds
from retention.figures.models import CustomerSegment
from retention.periods import Period
from retention.sales.models import Customer


class UnknownSet(LookupError):
    """Not the name of a set of customers behind a figure."""


@dataclass(frozen=True)
class CustomerSet:
    name: str
    title: str
    figure: str  # the metric key that counts exactly these customers

    def rule(self, bounds: Bounds) -> Q | None:
        """The condition on per-customer rows, or None for the sets counted otherwise."""
        existing = counting.existing(bounds)
        return {
            "active_start": ACTIVE_START,
            "active_end": ACTIVE_END,
            "new": Q(first_at__gte=bounds.start),
            "retained": ACTIVE_START & ACTIVE_END,
            "churned": ACTIVE_START & ~ACTIVE_END,
            "reactivated": ACTIVE_END & ~ACTIVE_START & existing,
            "buyers": BOUGHT,
            "repeat_buyers": Q(n_period__gte=2),
            "returning_buyers": BOUGHT & existing,
            "repeat_to_end": Q(n_to_end__gte=2),
        }.get(self.name)


SETS = {s.name: s for s in [
    CustomerSet("active_start", "Active at the start of the period (S)", "customers_start"),
    CustomerSet("active_end", "Active at the end of the period (E)", "customers_end"),
    CustomerSet("new", "New customers: first paid order in the period", "new_customers"),
    CustomerSet("retained", "Retained: active at the start and at the end", "retained_customers"),
    CustomerSet("churned", "Churned: active at the start, not at the end", "churned_customers"),
    CustomerSet("reactivated", "Came back: active at the end, not at the start, bought before",
                "reactivated_customers"),
    CustomerSet("buyers", "Buyers in the period", "buyers"),
    CustomerSet("repeat_buyers", "Bought twice or more in the period", "repeat_purchase_rate"),
    CustomerSet("returning_buyers", "Buyers who had bought before the period",
                "returning_customer_rate"),
    CustomerSet("repeat_to_end", "Customers with two or more paid orders by the end",
                "repeat_customer_share"),
    CustomerSet("engaged", "Active at the start and took up a course or bundle new for the "
                           "period", "new_offering_engagement_rate"),
    CustomerSet("referrers", "Referred a customer whose first order is in the period",
                "referral_rate"),
]}

# The set behind each figure that counts customers (the managers' cards link to it).
FIGURE_SETS = {
    "customers_start": "active_start", "customers_end": "active_end", "new_customers": "new",
    "retained_customers": "retained", "retention_rate": "retained",
    "churned_customers": "churned", "churn_rate": "churned",
    "reactivated_customers": "reactivated", "buyers": "buyers",
    "repeat_purchase_rate": "repeat_buyers", "returning_customer_rate": "returning_buyers",
    "existing_customer_revenue": "returning_buyers", "repeat_customer_share": "repeat_to_end",
    "new_offering_engagement_rate": "engaged", "referral_rate": "referrers",
}


def customers(name: str, start: date, end: date, *, subset: metrics.Subset | None = None,
              window_days: int | None = None,
              new_offering_window_days: int | None = None) -> QuerySet:
    """The customers of set `name` for the period and subset (raises UnknownSet)."""
    if name not in SETS:
        raise UnknownSet(f"unknown set {name!r} (use one of {', '.join(SETS)})")
    options = metrics.options_for(start, end, window_days=window_days,
                                  new_offering_window_days=new_offering_window_days,
                                  subset=subset)
    period = Period(start, end)
    bounds = Bounds.of(period, options.window_days, ZoneInfo(settings.TIME_ZONE))
    within = options.subset.customers()
    rule = SETS[name].rule(bounds)
    if rule is not None:
        rows = counting.per_customer(bounds, within).filter(rule).values("customer")
        return Customer.objects.filter(pk__in=rows)
    if name == "referrers":
        return referrals.referrers(bounds, within)
    # engaged: took up something new, and active at the start
    active = counting.per_customer(bounds, within).filter(ACTIVE_START).values("customer")
    return engagement.engaged_with_new(period, options, bounds).filter(pk__in=active)


def in_segment(segment: str, on: date) -> QuerySet:
    """The customers in `segment` on the snapshot date `on`."""
    return Customer.objects.filter(
        pk__in=CustomerSegment.objects.filter(snapshot_on=on, segment=segment).values("customer"))


def moved(origin: str, destination: str, first: date, second: date) -> QuerySet:
    """The customers in `origin` on `first` (or "new": none then) and `destination` on `second`."""
    at_second = CustomerSegment.objects.filter(snapshot_on=second, segment=destination)
    if origin == "new":
        at_second = at_second.exclude(
            customer__in=CustomerSegment.objects.filter(snapshot_on=first).values("customer"))
    else:
        at_second = at_second.filter(customer__in=CustomerSegment.objects.filter(
            snapshot_on=first, segment=origin).values("customer"))
    return Customer.objects.filter(pk__in=at_second.values("customer"))
