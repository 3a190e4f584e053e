"""Loyalty's steps of the nightly pipeline (registered in loyalty/apps.py):

12. loyalty points: the orders written since the previous run earn again (a safety net:
    every write path has earned already, and the keys make it a no-op then), pending
    points whose refund window passed are released, referrers rewarded, birthdays and
    completed courses given their bonuses, expiring points warned of and expired ones
    taken;
14. loyalty tiers: every account's tier judged on its last 12 months;
16. loyalty reconciliation: every balance checked against its ledger (a mismatch is
    logged as an error and shown in the run's record).

Each is safe to run twice for the same night.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from loyalty import earning, expiry, reconcile, referrals, tiers
from loyalty.models import Program, Rule
from loyalty.sql import end_of, start_of
from retention.nightly import Night, Step
from retention.sales.models import Customer, Enrolment, Order

log = logging.getLogger(__name__)
CATCH_UP_DAYS = 3


def points_step(night: Night) -> str:
    program = Program.current()
    since = night.previous.started_at if night.previous else None
    written = Order.objects.filter(updated_at__gte=since) if since else Order.objects.filter(
        ordered_at__gte=start_of(night.day - timedelta(days=CATCH_UP_DAYS)))
    earned = earning.earn_for_orders(written.filter(ordered_at__lt=end_of(night.day)), program=program)
    released = expiry.release(night.day)
    rewarded = referrals.reward_referrers(night.day, program)
    bonuses = _bonuses(night)
    warned = expiry.warn(night.day)
    expired = expiry.expire(night.day)
    return (f"{earned.total_lots} lots earned, {released} released, {rewarded} referrers "
            f"rewarded, {bonuses} bonuses, {warned} expiry warnings, {expired} lots expired")


def _bonuses(night: Night) -> int:
    """Birthdays of the night and courses completed in the last few days (keys make a rerun
    or an overlap give nothing twice)."""
    given = 0
    day = night.day
    if Rule.objects.filter(active=True, kind=Rule.Kind.BIRTHDAY).exists():
        born = Customer.objects.filter(birth_date__month=day.month, birth_date__day=day.day)
        for customer in born.iterator(chunk_size=500):
            given += len(earning.bonus(customer, Rule.Kind.BIRTHDAY, source="birthday",
                                       source_ref=str(day.year),
                                       key=f"birthday:{customer.pk}:{day.year}", earned_on=day))
    if Rule.objects.filter(active=True, kind=Rule.Kind.COURSE_COMPLETED).exists():
        done = Enrolment.objects.filter(
            Q(completed_on__gt=day - timedelta(days=CATCH_UP_DAYS)), completed_on__lte=day
        ).select_related("customer", "course")
        for enrolment in done.iterator(chunk_size=500):
            given += len(earning.bonus(
                enrolment.customer, Rule.Kind.COURSE_COMPLETED, source="enrolment",
                source_ref=enrolment.course.code, key=f"enrolment:{enrolment.pk}",
                earned_on=enrolment.completed_on))
    return given


def tiers_step(night: Night) -> str:
    moves = tiers.evaluate(night.day)
    return (f"{moves.up} moved up, {moves.warned} warned, {moves.down} moved down, "
            f"{moves.kept} kept their tier")


def reconcile_step(night: Night) -> str:
    report = reconcile.reconcile()
    words = (f"{report['accounts']} accounts, {report['mismatched_accounts']} mismatched, "
             f"{report['negative_lots']} negative lots, liability {report['liability']['points']} "
             f"points ({report['liability']['value']})")
    if not reconcile.is_sound(report):
        log.error("loyalty reconciliation failed: %s", words)
        return "FAILED: " + words
    return words


STEPS = [
    Step(order=12, name="loyalty points", run=points_step),
    Step(order=14, name="loyalty tiers", run=tiers_step),
    Step(order=16, name="loyalty reconciliation", run=reconcile_step),
]
