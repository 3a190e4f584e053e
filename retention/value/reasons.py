"""Retention's own at-risk reasons, found from its own data (retention/apps.py registers them
with `atrisk.register_reason`, as the programs register theirs):

- unlikely to be active: the model's probability of being active is below
  RETENTION_AT_RISK_ACTIVE_BELOW;
- overdue: the days since their last purchase exceed RETENTION_AT_RISK_OVERDUE_FACTOR
  times their own usual gap (weeks from first to last purchase / repeat purchases);
- an abandoned course: an enrolment started on or before the day, unfinished, with no
  activity (or, with none recorded, no start) in RETENTION_AT_RISK_ABANDONED_DAYS days,
  last touched within the activity window, and no activity on any course since;
- an open complaint ticket (opened by the day, not resolved by then);
- a membership running on the day and set not to renew.

Each keeps its facts in AtRisk columns of its own (the list sorts and filters on them).
"""

from __future__ import annotations

from datetime import date, timedelta

from django.conf import settings
from django.db.models import (
    Case,
    DateField,
    Exists,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from retention.money import rate
from retention.periods import business_zone, midnight
from retention.sales.models import Enrolment, Membership, SupportTicket
from retention.value.atrisk import Reason


def _low_active(as_of: date, rows: QuerySet) -> QuerySet:
    return rows.annotate(low=Case(
        When(probability_active__lt=settings.RETENTION_AT_RISK_ACTIVE_BELOW, then=Value(True)),
        default=Value(False)))


def _overdue(as_of: date, rows: QuerySet) -> QuerySet:
    factor = settings.RETENTION_AT_RISK_OVERDUE_FACTOR
    return rows.annotate(late=Case(When(Q(frequency__gte=1) & Q(
        since_last__gt=factor * F("recency_weeks") * 7 / F("frequency")),
        then=Value(True)), default=Value(False)))


def _abandoned(as_of: date, rows: QuerySet) -> QuerySet:
    zone = business_zone()
    end = midnight(as_of + timedelta(days=1), zone)
    cutoff_day = as_of - timedelta(days=settings.RETENTION_AT_RISK_ABANDONED_DAYS)
    cutoff = midnight(cutoff_day + timedelta(days=1), zone)
    # A course left behind is a sign only while it is the customer's latest learning: the
    # customer went quiet in the middle of it (no activity on any course since the cutoff)
    # and it was last touched within the activity window (an old abandonment, followed
    # by more buying, is history rather than a warning).
    window_start = as_of - timedelta(days=settings.RETENTION_ACTIVITY_WINDOW_DAYS)
    # (A course started since the cutoff with no activity recorded yet is learning too,
    # as the start stands for the activity of the enrolment itself below.)
    recent_learning = Enrolment.objects.filter(customer=OuterRef("customer")).filter(
        Q(last_activity_at__gte=cutoff, last_activity_at__lt=end)
        | Q(completed_on__gt=cutoff_day, completed_on__lte=as_of)
        | Q(last_activity_at__isnull=True, started_on__gt=cutoff_day, started_on__lte=as_of))
    abandoned = (Enrolment.objects.filter(customer=OuterRef("customer_id"),
                                          started_on__lte=as_of, progress_percent__lt=100)
                 .filter(Q(completed_on__isnull=True) | Q(completed_on__gt=as_of))
                 .filter(Q(last_activity_at__lt=cutoff,  # within the window, as orders
                           last_activity_at__gte=midnight(window_start + timedelta(days=1),
                                                          zone))
                         | Q(last_activity_at__isnull=True, started_on__lte=cutoff_day,
                             started_on__gt=window_start))
                 .filter(~Exists(recent_learning))
                 .order_by("-started_on", "-pk"))
    return rows.annotate(
        course=Coalesce(Subquery(abandoned.values("course__title")[:1]), Value("")),
        progress=Subquery(abandoned.values("progress_percent")[:1]),
        idle_since=Subquery(abandoned.annotate(
            day=Coalesce(TruncDate("last_activity_at", tzinfo=zone), "started_on",
                         output_field=DateField()))
            .values("day")[:1]),
    )


def _complaint(as_of: date, rows: QuerySet) -> QuerySet:
    end = midnight(as_of + timedelta(days=1))
    complaints = (SupportTicket.objects.filter(customer=OuterRef("customer_id"), is_complaint=True,
                                               opened_at__lt=end)
                  .filter(Q(resolved_at__gte=end) | Q(
                      resolved_at__isnull=True, status__in=[SupportTicket.Status.OPEN,
                                                            SupportTicket.Status.PENDING]))
                  .order_by("opened_at", "pk"))
    return rows.annotate(
        complaint=Coalesce(Subquery(complaints.values("subject")[:1]), Value("")),
        complaint_at=Subquery(complaints.values("opened_at")[:1]),
        has_complaint=Exists(complaints),
    )


def _not_renewing(as_of: date, rows: QuerySet) -> QuerySet:
    not_renewing = (Membership.objects.filter(customer=OuterRef("customer_id"), auto_renew=False,
                                              started_on__lte=as_of)
                    .filter(Q(ended_on__isnull=True) | Q(ended_on__gte=as_of))
                    # The soonest to end; SQLite sorts NULL first, PostgreSQL last.
                    .order_by(F("ended_on").asc(nulls_last=True), "pk"))
    return rows.annotate(
        plan=Coalesce(Subquery(not_renewing.values("plan")[:1]), Value("")),
        plan_ends=Subquery(not_renewing.values("ended_on")[:1]),
        has_plan=Exists(not_renewing),
    )


def _complaint_words(row, facts: dict) -> str:
    return _("Open complaint since %(day)s: %(subject)s") % {
        "day": timezone.localtime(facts["complaint_opened_at"]).date().isoformat(),
        "subject": facts["complaint_subject"] or _("(no subject)")}


def _membership_words(row, facts: dict) -> str:
    ends = facts["membership_ends_on"]
    return _("Membership “%(plan)s” set not to renew%(ends)s") % {
        "plan": facts["membership_plan"], "ends": f" (ends {ends.isoformat()})" if ends else ""}


REASONS = [
    Reason(
        "low_active", gettext_lazy("Unlikely to be active"), _low_active, Q(low=True),
        lambda row, facts: _("Unlikely to be still buying: %(chance)s %% chance of being active")
        % {"chance": rate(row.probability_active, 1, places=0)},
        facts={"low_active": "low"}, order=10, telling=10, columns=True,
        on_rows=Q(low_active=True), shows=lambda facts: facts["low_active"]),
    Reason(
        "overdue", gettext_lazy("Overdue"), _overdue, Q(late=True),
        lambda row, facts: _("Overdue: %(days)s days since the last order; usually every "
                             "%(gap)s days") % {"days": row.days_since_last,
                                                 "gap": row.usual_gap_days},
        facts={"overdue": "late"}, order=20, telling=20, columns=True,
        on_rows=Q(overdue=True), shows=lambda facts: facts["overdue"]),
    Reason(
        "abandoned_course", gettext_lazy("Abandoned course"), _abandoned, ~Q(course=""),
        lambda row, facts: _("Left “%(course)s” unfinished at %(progress)s %%, no activity "
                             "since %(day)s") % {"course": facts["abandoned_course"],
                                                  "progress": facts["abandoned_progress"] or 0,
                                                  "day": facts["abandoned_since"].isoformat()},
        facts={"abandoned_course": "course", "abandoned_progress": "progress",
               "abandoned_since": "idle_since"}, order=30, telling=50, columns=True,
        on_rows=~Q(abandoned_course=""), shows=lambda facts: bool(facts["abandoned_course"])),
    Reason(
        "complaint", gettext_lazy("Open complaint"), _complaint, Q(has_complaint=True),
        _complaint_words,
        facts={"complaint_subject": "complaint", "complaint_opened_at": "complaint_at"},
        order=40, telling=30, columns=True, on_rows=Q(complaint_opened_at__isnull=False),
        shows=lambda facts: facts["complaint_opened_at"] is not None),
    Reason(
        "membership", gettext_lazy("Membership not renewing"), _not_renewing, Q(has_plan=True),
        _membership_words,
        facts={"membership_plan": "plan", "membership_ends_on": "plan_ends"}, order=50,
        telling=60, columns=True, on_rows=~Q(membership_plan=""),
        shows=lambda facts: bool(facts["membership_plan"])),
]
