"""Customers at risk: who is slipping away, why, and how far the list can be trusted.

`score(as_of)` runs nightly after the predictions (retention/value/predictions.py) and
writes one AtRisk row for every customer still counted active on `as_of` (a paid
order within the activity window) who shows at least one of these signs:

- unlikely to be active: the model's probability of being active is below
  RETENTION_AT_RISK_ACTIVE_BELOW;
- overdue: the days since their last purchase exceed RETENTION_AT_RISK_OVERDUE_FACTOR
  times their own usual gap (weeks from first to last purchase / repeat purchases);
- an abandoned course: an enrolment started on or before `as_of`, unfinished, with no
  activity (or, with none recorded, no start) in RETENTION_AT_RISK_ABANDONED_DAYS days,
  last touched within the activity window, and no activity on any course since;
- an open complaint ticket (opened by `as_of`, not resolved by then);
- a detractor answer (NPS 0–6) — filled in by the surveys app through `REASON_HOOKS`;
- a membership running on `as_of` and set not to renew.

Its score is the probability of no purchase in the next 90 days (from BG/NBD, or the
simple rule's Poisson reading when the model is not used), and its value at risk the
prediction's. Everything is one INSERT ... SELECT; nothing is decided row by row.

`backtest(day)` asks the question a manager should ask of the list: of the customers
active on a past day, did those the score ranked highest really not buy in the
following 90 days? It reports precision at the top 100 and 1,000 and the area under
the ROC curve, against ranking by days since the last order.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import (
    Case,
    DateField,
    Exists,
    ExpressionWrapper,
    F,
    FloatField,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce, Round, TruncDate
from scipy import stats

from retention.value import predictions
from retention.figures import reports
from retention.periods import is_month_end, midnight
from retention.value.models import AtRisk, CustomerPrediction
from retention.sales.models import Enrolment, Membership, Order, SupportTicket

BACKTEST_REPORT = "atrisk-backtest"
BACKTEST_DAYS = 90
TOP = (100, 1000)
# Other apps add reasons: a function (as_of, candidates queryset) -> the queryset with an
# annotation replaced; the surveys app sets `detractor` (the latest NPS answer when 0-6,
# else NULL), which fills AtRisk.detractor_score.
REASON_HOOKS: list[Callable] = []


def _since_last_days():
    return ExpressionWrapper((F("age_weeks") - F("recency_weeks")) * 7, output_field=FloatField())


def candidates(as_of: date) -> QuerySet:
    """The day's predictions of customers still active, annotated with every reason."""
    zone = ZoneInfo(settings.TIME_ZONE)
    end = midnight(as_of + timedelta(days=1), zone)
    window = settings.RETENTION_ACTIVITY_WINDOW_DAYS
    factor = settings.RETENTION_AT_RISK_OVERDUE_FACTOR
    cutoff_day = as_of - timedelta(days=settings.RETENTION_AT_RISK_ABANDONED_DAYS)
    cutoff = midnight(cutoff_day + timedelta(days=1), zone)

    # A course left behind is a sign only while it is the customer's latest learning: the
    # customer went quiet in the middle of it (no activity on any course since the cutoff)
    # and it was last touched within the activity window (an old abandonment, followed
    # by more buying, is history rather than a warning).
    window_start = as_of - timedelta(days=window)
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
    complaints = (SupportTicket.objects.filter(customer=OuterRef("customer_id"), is_complaint=True,
                                               opened_at__lt=end)
                  .filter(Q(resolved_at__gte=end) | Q(
                      resolved_at__isnull=True, status__in=[SupportTicket.Status.OPEN,
                                                            SupportTicket.Status.PENDING]))
                  .order_by("opened_at", "pk"))
    not_renewing = (Membership.objects.filter(customer=OuterRef("customer_id"), auto_renew=False,
                                              started_on__lte=as_of)
                    .filter(Q(ended_on__isnull=True) | Q(ended_on__gte=as_of))
                    # The soonest to end; SQLite sorts NULL first, PostgreSQL last.
                    .order_by(F("ended_on").asc(nulls_last=True), "pk"))
    since = _since_last_days()
    rows = (CustomerPrediction.objects.filter(as_of=as_of)
            .alias(since_last=since)
            .filter(since_last__lt=window - 0.5)
            .annotate(
                low=Case(When(probability_active__lt=settings.RETENTION_AT_RISK_ACTIVE_BELOW,
                              then=Value(True)), default=Value(False)),
                late=Case(When(Q(frequency__gte=1) & Q(
                    since_last__gt=factor * F("recency_weeks") * 7 / F("frequency")),
                    then=Value(True)), default=Value(False)),
                days_since=Cast(Round(since), IntegerField()),
                usual_gap=Case(When(frequency__gte=1, then=Cast(Round(
                    F("recency_weeks") * 7 / F("frequency")), IntegerField())), default=None),
                course=Coalesce(Subquery(abandoned.values("course__title")[:1]), Value("")),
                progress=Subquery(abandoned.values("progress_percent")[:1]),
                idle_since=Subquery(abandoned.annotate(
                    day=Coalesce(TruncDate("last_activity_at", tzinfo=zone), "started_on",
                                 output_field=DateField()))
                    .values("day")[:1]),
                complaint=Coalesce(Subquery(complaints.values("subject")[:1]), Value("")),
                complaint_at=Subquery(complaints.values("opened_at")[:1]),
                has_complaint=Exists(complaints),
                plan=Coalesce(Subquery(not_renewing.values("plan")[:1]), Value("")),
                plan_ends=Subquery(not_renewing.values("ended_on")[:1]),
                has_plan=Exists(not_renewing),
                detractor=Value(None, output_field=IntegerField()),
            ))
    for hook in REASON_HOOKS:
        rows = hook(as_of, rows)
    count = sum((Case(When(condition, then=Value(1)), default=Value(0)) for condition in (
        Q(low=True), Q(late=True), ~Q(course=""), Q(has_complaint=True), Q(has_plan=True),
        Q(detractor__isnull=False))), Value(0))
    return rows.annotate(reason_total=count)


COLUMNS = ("as_of", "customer_id", "score", "value_at_risk", "predicted_value_12m",
           "probability_active", "low_active", "days_since_last", "usual_gap_days", "overdue",
           "abandoned_course", "abandoned_progress", "abandoned_since", "complaint_subject",
           "complaint_opened_at", "membership_plan", "membership_ends_on", "detractor_score",
           "reason_count")
SOURCES = ("as_of", "customer_id", "no_purchase_90d", "value_at_risk", "predicted_value_12m",
           "probability_active", "low", "days_since", "usual_gap", "late", "course", "progress",
           "idle_since", "complaint", "complaint_at", "plan", "plan_ends", "detractor",
           "reason_total")


def score(as_of: date) -> int:
    """Replace the day's at-risk rows from its stored predictions; return how many."""
    select, params = candidates(as_of).filter(reason_total__gt=0).values(
        *SOURCES).query.sql_with_params()
    table = AtRisk._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        AtRisk.objects.filter(as_of=as_of).delete()
        cursor.execute(f"INSERT INTO {table} ({', '.join(COLUMNS)}) {select}", params)
        return cursor.rowcount


def latest_day() -> date | None:
    return (AtRisk.objects.order_by("-as_of").values_list("as_of", flat=True).first()
            or predictions.latest_fit() and predictions.latest_fit().as_of)


def prune(*, keep_days: int, today: date) -> int:
    """Delete at-risk rows older than `keep_days`, except month-end ones."""
    cutoff = today - timedelta(days=keep_days)
    old = (AtRisk.objects.filter(as_of__lt=cutoff).exclude(
        as_of__in=[d for d in AtRisk.objects.filter(as_of__lt=cutoff).order_by()
                   .values_list("as_of", flat=True).distinct()
                   if is_month_end(d)]))
    return old.delete()[0]


# Back-test --------------------------------------------------------------------------------------


def backtest(day: date) -> dict:
    """Rank the customers active on `day` by the score and by recency; check 90 days on."""
    inputs = predictions.read_inputs(day)
    window = settings.RETENTION_ACTIVITY_WINDOW_DAYS
    active = inputs.days_since_last < window
    models = predictions.fit_models(inputs)
    scores = predictions.score(models, inputs)
    bought = predictions.aligned(inputs.customer, predictions.purchase_days_between(
        day + timedelta(days=1), day + timedelta(days=BACKTEST_DAYS))) > 0
    lost = ~bought[active]
    model_rank = scores.no_purchase_90d[active]
    recency_rank = inputs.days_since_last[active].astype(float)
    result = {
        "as_of": day.isoformat(),
        "until": (day + timedelta(days=BACKTEST_DAYS)).isoformat(),
        "customers": int(active.sum()),
        "did_not_buy": int(lost.sum()),
        "base_rate": _percent(lost.mean()) if len(lost) else None,
        "method": "model" if models.purchases_method == predictions.MODEL else "fallback",
        "score": _quality(model_rank, lost),
        "recency_baseline": _quality(recency_rank, lost),
    }
    return result


def _percent(value) -> float:
    return round(float(value) * 100, 1)


def _quality(rank: np.ndarray, lost: np.ndarray) -> dict:
    """Precision among the top-ranked (ties broken by position, fixed) and the ROC AUC."""
    order = np.argsort(-rank, kind="stable")
    out = {}
    for k in TOP:
        top = lost[order[:k]]
        out[f"precision_at_{k}"] = _percent(top.mean()) if len(top) >= k else None
    positives, negatives = int(lost.sum()), int((~lost).sum())
    if positives and negatives:
        ranks = stats.rankdata(rank)  # ties share their mean rank (AUC counts them as halves)
        auc = (ranks[lost].sum() - positives * (positives + 1) / 2) / (positives * negatives)
        out["auc"] = round(float(auc), 3)
    else:
        out["auc"] = None
    return out


def backtest_days(today: date, count: int = 3) -> list[date]:
    """Month-ends whose following 90 days are complete by `today`, newest first."""
    days = []
    month_start = date(today.year, today.month, 1)
    while len(days) < count:
        end = month_start - timedelta(days=1)
        if end + timedelta(days=BACKTEST_DAYS) <= today:
            days.append(end)
        month_start = date(end.year, end.month, 1)
        if month_start.year < 2000:
            break
    return days


def stored_backtests(today: date, *, refresh: bool = False) -> list[dict]:
    """The back-tests of `backtest_days(today)`, each computed once and kept until orders
    dated up to its end change."""
    if not Order.objects.exists():
        return []
    out = []
    for day in backtest_days(today):
        until = day + timedelta(days=BACKTEST_DAYS)
        out.append(reports.cached(BACKTEST_REPORT, day.isoformat(), depends_until=until,
                                  compute=lambda day=day: backtest(day), refresh=refresh))
    return out
