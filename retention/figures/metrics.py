"""Period metrics, exactly as shared/spec/metrics.md defines them.

`compute(start, end)` returns every key of the spec for the period [start, end]
(dates in the business time zone, both included), for all customers or a
`Subset`. Counting happens in the database: the main pass (retention.figures.counting),
one aggregate over paid orders grouped by customer, gives the activity counts (S, E, N,
R, …), the purchase counts and the revenue of the period, of the previous period
(existing-customer revenue growth) and of the 365 days behind `clv_simple`, in one query;
this module turns it into figures.

Rounding happens in one place, `retention.money`: half away from zero (Decimal's
ROUND_HALF_UP), from exact values, once. A ratio over nothing is None
(JSON null), a count or a sum over nothing is 0.

Every other figure comes from the part that owns its data
through the registry (retention.figures.registry): memberships, new-offering engagement,
referrals, predicted value, and the programs' figures. A spec key nobody counts is None.
Interpretations of the spec, where it leaves room, are written beside the code that makes
them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Exists, OuterRef, Q, QuerySet

from retention.figures import registry, spec
from retention.figures.counting import Bounds, activity, side_by_side
from retention.figures.models import CustomerSegment
from retention.figures.registry import Scope
from retention.money import growth, money, rate, ratio, round_half_up
from retention.periods import Period
from retention.sales.models import CUSTOMER_TYPES, Customer, Order, OrderLine

CLV_LIFETIME_CAP_YEARS = Decimal(10)
# Periods reach back two windows (the previous period's start window); keep that in range.
EARLIEST, LATEST = date(1900, 1, 1), date(2999, 12, 31)


class InvalidPeriod(ValueError):
    """The dates, window or subset asked for cannot be computed; the message says why."""


@dataclass(frozen=True)
class Subset:
    """Which customers the figures count. Empty: all customers."""

    source: str = ""
    customer_type: str = ""
    category: str = ""
    segment: str = ""
    # Buyers of these course or bundle codes: a paid order with a line for one of them.
    offerings: tuple[str, ...] = ()
    # The snapshot date the segment is read from (set by `compute`: the latest on or
    # before the period's start, so the figures follow the customers who were in it).
    segment_on: date | None = None

    def describe(self) -> dict[str, str]:
        shown = {name: value for name, value in self.__dict__.items() if value}
        if self.segment_on:
            shown["segment_on"] = self.segment_on.isoformat()
        if self.offerings:
            shown["offerings"] = ",".join(self.offerings)
        return shown

    def customers(self) -> QuerySet | None:
        """The customers of the subset, or None for everyone."""
        if not (self.source or self.customer_type or self.category or self.segment
                or self.offerings):
            return None
        queryset = Customer.objects.all()
        if self.segment:
            queryset = queryset.filter(
                pk__in=CustomerSegment.objects.filter(snapshot_on=self.segment_on,
                                                      segment=self.segment).values("customer")
            )
        if self.source:
            queryset = queryset.filter(acquisition_source=self.source)
        if self.customer_type in ("individual", "organisation"):
            queryset = queryset.filter(customer_type=self.customer_type)
        elif self.customer_type:
            queryset = queryset.filter(sector=self.customer_type)
        if self.category:
            # Buyers of a course category: a paid order with a line for a course of the
            # category, or for a bundle that holds one.
            lines = OrderLine.objects.filter(
                order__customer=OuterRef("pk"), order__status=Order.Status.PAID
            ).filter(Q(course__category=self.category) | Q(bundle__courses__category=self.category))
            queryset = queryset.filter(Exists(lines))
        if self.offerings:
            bought = OrderLine.objects.filter(order__status=Order.Status.PAID).filter(
                Q(course__code__in=self.offerings) | Q(bundle__code__in=self.offerings)
            ).values("order__customer")
            queryset = queryset.filter(pk__in=bought)
        return queryset


@dataclass
class Options:
    window_days: int = field(default_factory=lambda: settings.RETENTION_ACTIVITY_WINDOW_DAYS)
    new_offering_window_days: int = field(default_factory=lambda: settings.RETENTION_NEW_OFFERING_WINDOW_DAYS)
    subset: Subset = field(default_factory=Subset)


def options_for(start: date, end: date, *, window_days: int | None = None,
                new_offering_window_days: int | None = None,
                subset: Subset | None = None) -> Options:
    """Check a request for figures and return its options (raises InvalidPeriod).

    A segment subset is read from the latest snapshot on or before `start`.
    """
    if end < start:
        raise InvalidPeriod(f"the end {end} is before the start {start}")
    options = Options(subset=subset or Subset())
    if window_days is not None:
        options.window_days = window_days
    if new_offering_window_days is not None:
        options.new_offering_window_days = new_offering_window_days
    if options.window_days < 1:
        raise InvalidPeriod("the activity window must be at least 1 day")
    if options.new_offering_window_days < 0:
        raise InvalidPeriod("the new-offering window cannot be negative")
    earliest_start = EARLIEST + timedelta(days=max(options.window_days, 365) * 2)
    if start < earliest_start:
        raise InvalidPeriod(f"the start must be on or after {earliest_start} with this window")
    if end > LATEST:
        raise InvalidPeriod(f"the end must be on or before {LATEST}")
    if options.subset.customer_type and options.subset.customer_type not in CUSTOMER_TYPES:
        raise InvalidPeriod(
            f"unknown customer type {options.subset.customer_type!r} "
            f"(use one of {', '.join(CUSTOMER_TYPES)})"
        )
    if options.subset.segment:
        options.subset = with_segment_date(options.subset, start)
    return options


def compute(start: date, end: date, *, window_days: int | None = None,
            new_offering_window_days: int | None = None, subset: Subset | None = None) -> dict:
    """Return {"period": {...}, and every key of `registry.keys()`} for [start, end]."""
    options = options_for(start, end, window_days=window_days,
                          new_offering_window_days=new_offering_window_days, subset=subset)
    period = Period(start, end)
    previous = period.previous()
    zone = ZoneInfo(settings.TIME_ZONE)
    bounds = Bounds.of(period, options.window_days, zone)
    customers = options.subset.customers()
    scope = Scope(period=period, options=options, bounds=bounds, customers=customers)
    # The per-customer aggregate takes most of the time; the registered figures are counted
    # beside it, on a second connection that shares its snapshot where that is possible.
    now, counted = side_by_side(lambda: activity(bounds, customers),
                                lambda: registry.count_all(scope))

    S, E, R = now["customers_start"], now["customers_end"], now["retained"]
    retention = rate(R, S)
    figures = {
        "customers_start": S,
        "customers_end": E,
        "new_customers": now["new"],
        "retained_customers": R,
        "reactivated_customers": now["reactivated"],
        "churned_customers": S - R,
        "retention_rate": retention,
        "churn_rate": None if retention is None else Decimal(100) - retention,
        "orders": now["orders"],
        "revenue": money(now["revenue"]),
        "buyers": now["buyers"],
        "repeat_purchase_rate": rate(now["repeat_buyers"], now["buyers"]),
        "repeat_customer_share": rate(now["repeat_to_end"], now["customers_to_end"]),
        "returning_customer_rate": rate(now["returning_buyers"], now["buyers"]),
        "purchase_frequency": ratio(now["orders"], now["buyers"]),
        "average_order_value": ratio(now["revenue"], now["orders"]),
        "existing_customer_revenue": money(now["existing_revenue"]),
        "existing_customer_revenue_growth_rate": growth(
            now["existing_revenue"], now["existing_revenue_previous"]
        ),
        "historical_clv": ratio(now["revenue_to_end"], now["customers_to_end"]),
        "clv_simple": _clv_simple(now),
    }
    figures.update(registry.finish_all(counted, figures))
    return {
        "period": {
            "start": start.isoformat(),
            "end": end.isoformat(),
            "days": period.days,
            "previous_start": previous.start.isoformat(),
            "previous_end": previous.end.isoformat(),
            "window_days": options.window_days,
            "new_offering_window_days": options.new_offering_window_days,
            "time_zone": settings.TIME_ZONE,
            "subset": options.subset.describe(),
            # What registered figures read (value's: the predictions' day and method).
            **scope.notes,
        },
        # Every key, in order; a spec key that nothing registered counts is null.
        **{key: figures.get(key) for key in registry.keys()},
    }


def with_segment_date(subset: Subset, start: date) -> Subset:
    if subset.segment not in spec.SEGMENT_NAMES:
        raise InvalidPeriod(f"unknown segment {subset.segment!r} (use one of "
                            f"{', '.join(spec.SEGMENT_NAMES)})")
    on = (CustomerSegment.objects.filter(snapshot_on__lte=start).order_by("-snapshot_on")
          .values_list("snapshot_on", flat=True).first())
    if on is None:
        raise InvalidPeriod(f"no segment snapshot on or before {start} (run_nightly makes them)")
    return dataclasses.replace(subset, segment_on=on)


def _clv_simple(counts: dict) -> Decimal | None:
    """AOV × orders per buyer × expected lifetime over the 365 days Y ending at `end`.

    AOV × (orders / buyers) is revenue / buyers. The lifetime is 100 / churn rate,
    that is S / (S − R) years from exact counts, capped at 10 (no churn gives 10).
    """
    S, R, buyers = counts["year_start"], counts["year_retained"], counts["year_buyers"]
    if not S or not buyers:
        return None
    churned = S - R
    lifetime = CLV_LIFETIME_CAP_YEARS if churned == 0 else min(
        CLV_LIFETIME_CAP_YEARS, Decimal(S) / Decimal(churned)
    )
    return round_half_up(Decimal(counts["year_revenue"]) / buyers * lifetime)


__all__ = ["InvalidPeriod", "Subset", "compute"]
