"""Period metrics, exactly as shared/spec/metrics.md defines them.

`compute(start, end)` returns every key of the spec for the period [start, end]
(dates in the business time zone, both included), for all customers or a
`Subset`. Counting happens in the database: one aggregate over paid orders
grouped by customer gives the activity counts (S, E, N, R, …), the purchase
counts and the revenue; it is run for the period, for the previous period
(existing-customer revenue growth) and for the 365 days behind `clv_simple`.

Rounding happens in one place, `retention.money`: half away from zero (Decimal's
ROUND_HALF_UP), from exact values, once. A ratio over nothing is None
(JSON null), a count or a sum over nothing is 0.

Figures fed by later parts (predicted value, surveys) are None until their
tables exist. Interpretations of the spec, where it leaves room, are written
beside the code that makes them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection
from django.db.models import Avg, Exists, OuterRef, Q, QuerySet, Sum
from django.db.models.expressions import RawSQL

from retention.figures import spec
from retention.figures.counting import Bounds, activity, side_by_side
from retention.figures.models import CustomerSegment
from retention.money import growth, money, rate, ratio, round_half_up
from retention.periods import Period
from retention.sales.models import (
    CUSTOMER_TYPES,
    Bundle,
    Course,
    Customer,
    Enrolment,
    Membership,
    Order,
    OrderLine,
)
from retention.value.models import ClvFit, CustomerPrediction

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
    new_offering_window_days: int = field(default_factory=lambda: settings.NEW_OFFERING_WINDOW_DAYS)
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
    """Return {"period": {...}, and every spec.KEYS entry} for [start, end]."""
    options = options_for(start, end, window_days=window_days,
                          new_offering_window_days=new_offering_window_days, subset=subset)
    period = Period(start, end)
    previous = period.previous()
    zone = ZoneInfo(settings.TIME_ZONE)
    bounds = Bounds.of(period, options.window_days, zone)
    customers = options.subset.customers()
    # The per-customer aggregate takes most of the time; the other figures are counted
    # beside it, on a second connection that shares its snapshot where that is possible.
    now, (engaged, referring, mrr) = side_by_side(
        lambda: activity(bounds, customers),
        lambda: (_new_offering_engaged(period, options, bounds, customers),
                 referrers(bounds, customers).count(), _mrr(period, customers)),
    )
    predicted, predicted_from = _predicted_clv(end, bounds, customers)

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
        "predicted_clv_12m": predicted,
        "new_offering_engagement_rate": rate(engaged, S),
        "nps": None,  # survey responses arrive with the surveys issue
        "nps_responses": None,
        "csat": None,
        "survey_response_rate": None,
        "referral_rate": rate(referring, E),
        **mrr,
    }
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
            # What predicted_clv_12m read: the day of the predictions and their method.
            "predictions": predicted_from,
        },
        **{key: figures[key] for key in spec.KEYS},
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


def new_offerings(period: Period, options: Options) -> tuple[list[int], list[int]]:
    """Ids of the courses and bundles new for the period (launched on or after start − V)."""
    new_since = period.start - timedelta(days=options.new_offering_window_days)
    return (list(Course.objects.filter(launched_on__gte=new_since).values_list("pk", flat=True)),
            list(Bundle.objects.filter(launched_on__gte=new_since).values_list("pk", flat=True)))


def _engaged_sql(period: Period, options: Options, bounds: Bounds) -> tuple[str, list] | None:
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
    """The customers of `_engaged_sql`, as a queryset (for the lists behind the figure)."""
    found = _engaged_sql(period, options, bounds)
    if found is None:
        return Customer.objects.none()
    sql, params = found
    return Customer.objects.filter(pk__in=RawSQL(sql, params))


def _new_offering_engaged(period: Period, options: Options, bounds: Bounds, customers) -> int:
    """Customers active at the start who bought or started something new during the period.

    The engaged customers are few beside S, so they are found first (a union of two
    index scans) and each is checked for an order in the start window (an index probe).
    """
    found = _engaged_sql(period, options, bounds)
    if found is None:
        return 0
    engaged_sql, params = found
    order = Order._meta.db_table
    sql = (f"SELECT COUNT(*) FROM ({engaged_sql}) x WHERE EXISTS (SELECT 1 FROM {order} s"
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


def _mrr(period: Period, customers) -> dict:
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


def _predicted_clv(end: date, bounds: Bounds, customers) -> tuple[Decimal | None, dict | None]:
    """Mean stored predicted 12-month value of the customers active at the end (E), from
    the latest nightly predictions dated ≤ end (None when none are stored or none of E
    has one), and which predictions those were."""
    fit = (ClvFit.objects.filter(purpose=ClvFit.Purpose.NIGHTLY, as_of__lte=end)
           .order_by("-as_of", "-created_at").first())
    if fit is None:
        return None, None
    day = fit.as_of
    source = {"as_of": day.isoformat(), "method": "model" if fit.uses_models else "fallback",
              "method_summary": fit.method_summary()}
    active_end = Order.objects.counting().filter(ordered_at__gte=bounds.end_window,
                                                 ordered_at__lt=bounds.end)
    if customers is not None:
        active_end = active_end.filter(customer__in=customers)
    mean = CustomerPrediction.objects.filter(
        as_of=day, customer__in=active_end.values("customer")).aggregate(
        mean=Avg("predicted_value_12m"))["mean"]
    return (None if mean is None else round_half_up(Decimal(str(mean)))), source


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
