"""seed_demo's work: generate the demo business in one transaction, with the quarter's targets
and a year of month-end segment snapshots, or refuse to mix it with existing data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q
from django.dispatch import Signal

from retention.demo.business import DemoBusiness
from retention.figures import segments, targets
from retention.figures.models import AlertRule, CustomerSegment, MetricSnapshot, StoredReport
from retention.mail import consent
from retention.mail.models import ConsentRecord
from retention.periods import month_ends_before, previous_quarter, quarter_of
from retention.sales.models import (
    Bundle,
    Course,
    Customer,
    Enrolment,
    Membership,
    Order,
    OrderLine,
    PriceChange,
    SupportTicket,
)
from retention.value import atrisk, predictions
from retention.value.models import ClvFit


# The programs' demo data, without retention knowing them (loyalty connects to both):
# `replacing` before the domain data is deleted (delete your rows that refer to it),
# `seeded` after the business is built, inside the same transaction, with `as_of` and
# `seed` (build yours from the stored customers and orders, deterministically).
replacing = Signal()
seeded = Signal()


class DataExists(Exception):
    def __init__(self) -> None:
        super().__init__("Demo data would mix with existing data: use --replace or --if-empty")


def has_data() -> bool:
    """Return whether customers or a catalogue exist (demo data would mix with them)."""
    return Customer.objects.exists() or Course.objects.exists() or Bundle.objects.exists()


def delete_domain_data() -> None:
    """Delete the domain data, children before parents (orders and lines protect courses).

    That is orders, lines, memberships, enrolments, tickets, price changes, bundles,
    courses, segments and customers, and the figures stored from them; other apps' rows
    that cascade from customers go with them.
    """
    for model in (OrderLine, Order, Membership, Enrolment, SupportTicket, PriceChange,
                  Bundle, Course, CustomerSegment, Customer):
        model.objects.all().delete()
    # The tables stored from that data (snapshots, reports) describe it no more.
    for model in (MetricSnapshot, StoredReport):
        model.objects.all().delete()


delete_domain_data.alters_data = True


@dataclass
class Summary:
    seed: int
    as_of: date
    price_update_at: datetime
    customers_by_type: dict[str, int]
    sectors: dict[str, int]
    courses: int
    bundles: int
    orders_by_status: dict[str, int]
    price_changes: int
    memberships: int
    memberships_cancelled: int
    enrolments: int
    enrolments_completed: int
    tickets: int
    complaints: int


def seed(*, seed: int = 42, as_of: date, customers: int = 2000, replace: bool = False) -> Summary:
    """Generate the demo data in one transaction and return a summary of what is stored.

    Raises DataExists when customers or a catalogue exist, unless `replace`,
    which deletes the domain data first (see `delete_domain_data`).
    """
    with transaction.atomic():
        if has_data():
            if not replace:
                raise DataExists()
            replacing.send(sender=DemoBusiness)
            delete_domain_data()
        business = DemoBusiness(np.random.default_rng(seed), as_of=as_of, customers=customers)
        business.build()
        seeded.send(sender=DemoBusiness, as_of=as_of, seed=seed)
        # The business's plan for the quarter of the as-of date (spec "Targets"), and for
        # the two quarters before, so the scorecard shows finished quarters met or missed.
        quarter = quarter_of(as_of)
        for _ in range(3):
            targets.load_plan(*quarter)
            quarter = previous_quarter(*quarter)
        _consent_evidence()
        _alert_rules()
        # A year of month-end segment snapshots, as a year of nightly runs leaves them,
        # so that the segment moves have a history to show.
        for month_end in month_ends_before(as_of, 12):
            segments.snapshot(month_end)
        # The predictions and at-risk list of the last month-end 90 days or more back, as
        # that night's run left them: the at-risk page back-tests each reason against it.
        history = next(day for day in reversed(month_ends_before(as_of, 12))
                       if day <= as_of - timedelta(days=atrisk.BACKTEST_DAYS))
        predictions.fit(history, purpose=ClvFit.Purpose.NIGHTLY, store=True)
        atrisk.score(history)
        return summarise(seed=seed, as_of=as_of, price_update_at=business.price_update_at)


seed.alters_data = True


def _consent_evidence() -> None:
    """The evidence a real import keeps of each consent the platform sent: who, when, and
    the wording they were shown (one insert)."""
    ConsentRecord.objects.bulk_create([
        ConsentRecord(customer_id=pk, subject=consent.MARKETING, granted=True,
                      method=ConsentRecord.Method.PLATFORM,
                      wording=settings.RETENTION_CONSENT_WORDING,
                      detail="demo data: given at sign-up", recorded_at=signed_up_at)
        for pk, signed_up_at in Customer.objects.filter(marketing_consent=True)
        .values_list("pk", "signed_up_at")], batch_size=2000)


def _alert_rules() -> None:
    """Two alerts a retention team sets first: orders falling, churn rising."""
    for metric, direction, threshold in (("orders", AlertRule.Direction.DOWN, "30"),
                                         ("churn_rate", AlertRule.Direction.UP, "20")):
        AlertRule.objects.get_or_create(metric=metric, direction=direction,
                                        defaults={"threshold_percent": Decimal(threshold)})


def summarise(*, seed: int, as_of: date, price_update_at: datetime) -> Summary:
    """Count what is stored (a handful of aggregate queries)."""
    def by(queryset, column):
        rows = queryset.order_by(column).values_list(column).annotate(n=Count("pk"))
        return dict(rows)

    memberships = Membership.objects.aggregate(
        all=Count("pk"), cancelled=Count("pk", filter=Q(cancelled_at__isnull=False)))
    enrolments = Enrolment.objects.aggregate(
        all=Count("pk"), completed=Count("pk", filter=Q(completed_on__isnull=False)))
    tickets = SupportTicket.objects.aggregate(
        all=Count("pk"), complaints=Count("pk", filter=Q(is_complaint=True)))
    return Summary(
        seed=seed, as_of=as_of, price_update_at=price_update_at,
        customers_by_type=by(Customer.objects.all(), "customer_type"),
        sectors=by(Customer.objects.filter(customer_type="organisation"), "sector"),
        courses=Course.objects.count(), bundles=Bundle.objects.count(),
        orders_by_status=by(Order.objects.all(), "status"),
        price_changes=PriceChange.objects.count(),
        memberships=memberships["all"], memberships_cancelled=memberships["cancelled"],
        enrolments=enrolments["all"], enrolments_completed=enrolments["completed"],
        tickets=tickets["all"], complaints=tickets["complaints"],
    )
