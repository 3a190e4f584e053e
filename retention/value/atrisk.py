"""Customers at risk: who is slipping away, why, and how far the list can be trusted.

`score(as_of)` runs nightly after the predictions (retention/value/predictions.py) and
writes one AtRisk row for every customer still counted active on `as_of` (a paid
order within the activity window) who shows at least one of the registered reasons:
retention's own (retention/value/reasons.py: unlikely to be active, overdue, an
abandoned course, an open complaint, a membership not renewing) and those the programs
add with `register_reason` (a detractor's answer, a lapsed loyalty member):

    from retention.value.atrisk import Reason, register_reason

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
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import numpy as np
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.db.models import (
    Case,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    IntegerField,
    JSONField,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import Cast, JSONObject, Round
from django.utils import timezone
from scipy import stats

from retention.figures import reports
from retention.periods import is_month_end
from retention.sales.models import Order
from retention.value import predictions
from retention.value.models import AtRisk, CustomerPrediction

BACKTEST_REPORT = "atrisk-backtest"
BACKTEST_DAYS = 90
TOP = (100, 1000)


# Reasons --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reason:
    """One sign that a customer is slipping away: how it is found for a day's customers in
    one query, what of it is kept, and how it reads.

    `annotate(as_of, rows)` adds to the day's candidates (CustomerPrediction rows of
    customers still active, with `since_last`, `days_since` and `usual_gap` already there)
    the annotations the reason needs; `present` is a condition over them. `facts` names
    what to keep, `{name: annotation}`: a contributed reason's facts are kept in
    AtRisk.details under its code (no column per app); retention's own (`columns=True`)
    in AtRisk columns of those names, which `on_rows` and `shows` then read. `describe(row,
    facts)` puts the reason in words. `order` places it in lists, filters and codes,
    `telling` in the words (most telling first).
    """

    code: str
    label: str
    annotate: Callable[[date, QuerySet], QuerySet]
    present: Q
    describe: Callable[[AtRisk, dict], str]
    facts: dict[str, str] = field(default_factory=dict, hash=False)
    order: int = 100
    telling: int = 100
    columns: bool = False
    on_rows: Q | None = None  # the condition over AtRisk rows (given by column reasons)
    shows: Callable[[dict], bool] | None = None  # a column reason on a row, from its facts

    def condition(self) -> Q:
        """The AtRisk rows that show this reason."""
        return self.on_rows if self.columns else Q(details__has_key=self.code)

    def facts_of(self, row: AtRisk) -> dict | None:
        """What the row keeps of this reason, or None when the row does not show it."""
        if not self.columns:
            return (row.details or {}).get(self.code)
        facts = {name: getattr(row, name) for name in self.facts}
        return facts if self.shows(facts) else None


REASONS: list[Reason] = []


def register_reason(reason: Reason) -> None:
    """Add a reason to every night's scoring (apps call this in their AppConfig.ready).

    Registering the same reason again changes nothing; another reason with the same code
    is refused, as is a column reason without the conditions that read its columns.
    """
    if reason in REASONS:
        return
    if any(other.code == reason.code for other in REASONS):
        raise ImproperlyConfigured(f"an at-risk reason {reason.code!r} is registered already")
    if reason.columns and (reason.on_rows is None or reason.shows is None):
        raise ImproperlyConfigured(f"at-risk reason {reason.code!r} keeps columns: give "
                                   "on_rows and shows")
    REASONS.append(reason)
    REASONS.sort(key=lambda r: (r.order, r.code))


def reasons() -> list[Reason]:
    """The registered reasons, in their order."""
    return list(REASONS)


def reason(code: str) -> Reason | None:
    return next((r for r in REASONS if r.code == code), None)


def codes_of(row: AtRisk) -> list[str]:
    """The codes of a row's reasons, in the reasons' order."""
    found = [r.code for r in REASONS if r.facts_of(row) is not None]
    # Kept by a reason no longer registered (its app removed): still the row's reason.
    found += sorted(set(row.details or {}) - {r.code for r in REASONS})
    return found


def in_words(row: AtRisk) -> list[str]:
    """The row's reasons in words, most telling first."""
    shown = [(r.telling, r.describe(row, facts)) for r in REASONS
             if (facts := r.facts_of(row)) is not None]
    words = [text for _telling, text in sorted(shown, key=lambda pair: pair[0])]
    registered = {r.code for r in REASONS}
    words += [f"{code}: {facts}" for code, facts in sorted((row.details or {}).items())
              if code not in registered]
    return words


class WithoutNulls(Func):
    """A JSON object without its null members: the details of the reasons a row shows."""

    output_field = JSONField()

    def as_sqlite(self, compiler, connection, **extra):
        # An RFC 7396 merge patch onto {} drops the members whose value is null.
        return self.as_sql(compiler, connection, template="JSON_PATCH('{}', %(expressions)s)",
                           **extra)

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, function="JSONB_STRIP_NULLS", **extra)


def _details() -> Func | Value:
    """The contributed reasons' facts, each under its code when the customer shows it."""
    contributed = [r for r in REASONS if not r.columns]
    if not contributed:
        return Value({}, output_field=JSONField())
    return WithoutNulls(JSONObject(**{
        r.code: Case(When(r.present, then=JSONObject(**{name: F(annotation) for name, annotation
                                                         in r.facts.items()})),
                     default=Value(None), output_field=JSONField())
        for r in contributed}))


def _since_last_days():
    return ExpressionWrapper((F("age_weeks") - F("recency_weeks")) * 7, output_field=FloatField())


def candidates(as_of: date) -> QuerySet:
    """The day's predictions of customers still active, annotated with every reason, their
    number (`reason_total`) and the contributed reasons' facts (`reason_details`)."""
    window = settings.RETENTION_ACTIVITY_WINDOW_DAYS
    since = _since_last_days()
    rows = (CustomerPrediction.objects.filter(as_of=as_of)
            .alias(since_last=since)
            .filter(since_last__lt=window - 0.5)
            .annotate(
                days_since=Cast(Round(since), IntegerField()),
                usual_gap=Case(When(frequency__gte=1, then=Cast(Round(
                    F("recency_weeks") * 7 / F("frequency")), IntegerField())), default=None),
            ))
    for each in REASONS:
        rows = each.annotate(as_of, rows)
    count = sum((Case(When(each.present, then=Value(1)), default=Value(0)) for each in REASONS),
                Value(0))
    return rows.annotate(reason_total=count, reason_details=_details())


# What every row keeps, whatever its reasons: AtRisk column <- candidates' annotation.
CORE = {"as_of": "as_of", "customer_id": "customer_id", "score": "no_purchase_90d",
        "value_at_risk": "value_at_risk", "predicted_value_12m": "predicted_value_12m",
        "probability_active": "probability_active", "days_since_last": "days_since",
        "usual_gap_days": "usual_gap", "reason_count": "reason_total",
        "details": "reason_details"}


def score(as_of: date) -> int:
    """Replace the day's at-risk rows from its stored predictions; return how many.

    One INSERT ... SELECT: the candidates query computes every reason for every customer in
    the database; nothing is decided row by row.
    """
    columns = dict(CORE)
    for each in REASONS:
        if each.columns:
            columns.update(each.facts)
    select, params = candidates(as_of).filter(reason_total__gt=0).values(
        *columns.values()).query.sql_with_params()
    table = AtRisk._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        AtRisk.objects.filter(as_of=as_of).delete()
        cursor.execute(f"INSERT INTO {table} ({', '.join(columns)}) {select}", params)
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


def reason_backtest_day(today: date) -> date | None:
    """The latest stored at-risk list whose following 90 days are over by `today`."""
    return (AtRisk.objects.filter(as_of__lte=today - timedelta(days=BACKTEST_DAYS))
            .order_by("-as_of").values_list("as_of", flat=True).first())


def reason_precision(day: date) -> dict:
    """How each reason of the list stored on `day` did: of the customers it named, the
    share with no paid order in the 90 days after (its precision), beside the share of
    every customer active that day (the base rate: what naming customers at random gets).

    Two aggregate queries: the day's at-risk rows with whether each bought, and the day's
    predictions (every customer active then) with the same.
    """
    zone = timezone.get_current_timezone()
    start = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)
    until = datetime.combine(day + timedelta(days=BACKTEST_DAYS + 1), time.min, tzinfo=zone)
    bought = Exists(Order.objects.counting().filter(
        customer=OuterRef("customer_id"), ordered_at__gte=start, ordered_at__lt=until))
    listed = AtRisk.objects.filter(as_of=day).annotate(bought=bought)
    found = listed.aggregate(
        customers=Count("pk"), lost=Count("pk", filter=Q(bought=False)),
        **{f"n_{r.code}": Count("pk", filter=r.condition()) for r in REASONS},
        **{f"lost_{r.code}": Count("pk", filter=r.condition() & Q(bought=False))
           for r in REASONS})
    window = settings.RETENTION_ACTIVITY_WINDOW_DAYS
    active = (CustomerPrediction.objects.filter(as_of=day)
              .alias(since_last=_since_last_days()).filter(since_last__lt=window - 0.5)
              .annotate(bought=bought)
              .aggregate(customers=Count("pk"), lost=Count("pk", filter=Q(bought=False))))
    base = _share(active["lost"], active["customers"])
    by_reason = {}
    for r in REASONS:
        named = found[f"n_{r.code}"]
        precision = _share(found[f"lost_{r.code}"], named)
        # No better than naming customers at random: it tells the team nothing (False);
        # None when it named too few customers to tell.
        telling = (None if named < MIN_TO_TELL or base is None
                   else precision > base)
        by_reason[r.code] = {"customers": named, "precision": precision, "telling": telling}
    return {"as_of": day.isoformat(), "until": (day + timedelta(days=BACKTEST_DAYS)).isoformat(),
            "active": active["customers"], "base_rate": base,
            "listed": found["customers"], "precision": _share(found["lost"], found["customers"]),
            "reasons": by_reason}


def _share(part: int, whole: int) -> float | None:
    return _percent(part / whole) if whole else None


REASONS_REPORT = "atrisk-reason-backtest"
# A reason that named fewer customers than this on the back-tested day is not judged.
MIN_TO_TELL = 30


def stored_reason_precision(today: date, *, refresh: bool = False) -> dict | None:
    """`reason_precision` of the latest list old enough, kept until its orders change."""
    day = reason_backtest_day(today)
    if day is None:
        return None
    return reports.cached(REASONS_REPORT, day.isoformat(),
                          depends_until=day + timedelta(days=BACKTEST_DAYS),
                          compute=lambda: reason_precision(day), refresh=refresh)


# The thresholds `calibrate` tries: reason code -> (setting, values), retention's reasons.
THRESHOLDS = {
    "low_active": ("RETENTION_AT_RISK_ACTIVE_BELOW", [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]),
    "overdue": ("RETENTION_AT_RISK_OVERDUE_FACTOR", [1.5, 2.0, 2.5, 3.0, 4.0, 5.0]),
    "abandoned_course": ("RETENTION_AT_RISK_ABANDONED_DAYS", [14, 30, 45, 60, 90, 120]),
}


def calibrate(day: date) -> dict:
    """Each threshold's values tried on the customers active on `day` (a day with stored
    predictions, 90 days or more back): how many each value names and how many of those
    bought nothing in the 90 days after, and the value to use. One aggregate query per value.

    The value to use names at least MIN_TO_TELL customers and has the best precision above
    the base rate; None when no value does better than chance (the reason predicts
    nothing on this business's history: leave it to the default view to pass over).
    """
    from django.test.utils import override_settings  # a public API, not only for tests

    zone = timezone.get_current_timezone()
    start = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)
    until = datetime.combine(day + timedelta(days=BACKTEST_DAYS + 1), time.min, tzinfo=zone)
    bought = Exists(Order.objects.counting().filter(
        customer=OuterRef("customer_id"), ordered_at__gte=start, ordered_at__lt=until))
    everyone = candidates(day).annotate(bought=bought).aggregate(
        customers=Count("pk"), lost=Count("pk", filter=Q(bought=False)))
    base = _share(everyone["lost"], everyone["customers"])
    out = {"as_of": day.isoformat(), "active": everyone["customers"], "base_rate": base,
           "reasons": {}}
    for code, (setting, values) in THRESHOLDS.items():
        found = reason(code)
        if found is None:
            continue
        tried = []
        for value in values:
            with override_settings(**{setting: value}):
                counts = candidates(day).annotate(bought=bought).aggregate(
                    named=Count("pk", filter=found.present),
                    lost=Count("pk", filter=found.present & Q(bought=False)))
            tried.append({"value": value, "customers": counts["named"],
                          "precision": _share(counts["lost"], counts["named"])})
        good = [t for t in tried if t["customers"] >= MIN_TO_TELL and base is not None
                and t["precision"] is not None and t["precision"] > base]
        best = max(good, key=lambda t: (t["precision"], t["customers"]), default=None)
        out["reasons"][code] = {"setting": setting, "current": getattr(settings, setting),
                                "tried": tried, "best": best and best["value"]}
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
