"""What the managers' pages show of the stored predictions and the at-risk list.

Everything here reads the rows the nightly run stored (CustomerPrediction, AtRisk)
and counts in the database: a summary is one aggregate, the distribution one grouped
query over a window function, a page of the list one query with its customers joined.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.db import connection
from django.db.models import (
    Count,
    Exists,
    ExpressionWrapper,
    F,
    FloatField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.functions import Cast
from django.utils.translation import gettext_lazy as _

from retention.money import money, rate, ratio
from retention.value import atrisk
from retention.value.models import AtRisk, CustomerPrediction, FollowUp

DECILES = 10

SORTS = {
    # Expected value lost: the value at risk times the chance of no purchase in 90 days.
    "expected_loss": ("-expected_loss", "-value_at_risk", "customer_id"),
    "value_at_risk": ("-value_at_risk", "-score", "customer_id"),
    "score": ("-score", "-value_at_risk", "customer_id"),
    "predicted_value": ("-predicted_value_12m", "customer_id"),
    "days_since_last": ("-days_since_last", "customer_id"),
}


# Predicted value --------------------------------------------------------------------------------


def value_summary(as_of: date) -> dict:
    """Customers predicted on `as_of`, their total and mean predicted 12-month value,
    expected purchases and value at risk, and how many are unlikely to be active (one query)."""
    found = CustomerPrediction.objects.filter(as_of=as_of).aggregate(
        customers=Count("pk"),
        value=Sum("predicted_value_12m"),
        purchases=Sum("expected_purchases_12m"),
        at_risk_value=Sum("value_at_risk"),
        unlikely=Count("pk", filter=Q(
            probability_active__lt=settings.RETENTION_AT_RISK_ACTIVE_BELOW)),
    )
    customers = found["customers"]
    total = money(found["value"])
    return {
        "customers": customers,
        "predicted_value": total,
        "mean_value": ratio(total, customers),
        "expected_purchases": round(float(found["purchases"] or 0), 1),
        "value_at_risk": money(found["at_risk_value"]),
        "unlikely_active": found["unlikely"],
    }


def distribution(as_of: date) -> list[dict]:
    """Customers in tenths by predicted value, highest first: each tenth's range, total and
    share of all predicted value (one grouped query over NTILE)."""
    table = CustomerPrediction._meta.db_table
    sql = f"""
        SELECT tenth, COUNT(*), MIN(v), MAX(v), SUM(v) FROM (
            SELECT NTILE({DECILES}) OVER (ORDER BY predicted_value_12m DESC, customer_id)
                   AS tenth, predicted_value_12m AS v
            FROM {table} WHERE as_of = %s) ranked
        GROUP BY tenth ORDER BY tenth
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [as_of])
        rows = cursor.fetchall()
    grand = sum((money(total) for *_rest, total in rows), Decimal(0))
    out = []
    for tenth, customers, low, high, total in rows:
        total = money(total)
        out.append({
            "tenth": tenth,
            "label": _("Top 10 %") if tenth == 1 else f"{(tenth - 1) * 10}–{tenth * 10} %",
            "customers": customers, "lowest": money(low), "highest": money(high),
            "value": total,
            "share": rate(total, grand),
        })
    return out


def top_customers(as_of: date, *, limit: int = 20) -> QuerySet:
    """The customers with the highest predicted value on `as_of` (customers joined)."""
    return (CustomerPrediction.objects.filter(as_of=as_of).select_related("customer")
            .order_by("-predicted_value_12m", "customer_id")[:limit])


def predictions_on(as_of: date) -> QuerySet:
    """Every prediction of `as_of`, highest value first, with the customer's id joined."""
    return (CustomerPrediction.objects.filter(as_of=as_of).select_related("customer")
            .order_by("-predicted_value_12m", "customer_id"))


def prediction_days() -> list[date]:
    """Days with stored predictions, newest first."""
    return list(CustomerPrediction.objects.order_by("-as_of").values_list(
        "as_of", flat=True).distinct())


# At risk ----------------------------------------------------------------------------------------


@dataclass
class RiskFilter:
    reason: str = ""
    customer_type: str = ""
    sort: str = "expected_loss"


def expected_loss():
    """value at risk × the chance of no purchase in the next 90 days, per row."""
    return ExpressionWrapper(Cast("value_at_risk", FloatField()) * F("score"),
                             output_field=FloatField())


def at_risk_rows(as_of: date, chosen: RiskFilter) -> QuerySet:
    """The day's at-risk rows as filtered and sorted, with their customer and the person
    their open follow-up is assigned to (joined and annotated: no query per row)."""
    rows = AtRisk.objects.filter(as_of=as_of)
    if chosen.reason:
        rows = rows.filter(atrisk.reason(chosen.reason).condition())
    if chosen.customer_type:
        rows = rows.filter(customer__customer_type=chosen.customer_type)
    follow_up = FollowUp.objects.filter(customer=OuterRef("customer_id"),
                                        status=FollowUp.Status.OPEN)
    return (rows.select_related("customer")
            .annotate(follow_up_with=Subquery(follow_up.values("assigned_to__username")[:1]),
                      expected_loss=expected_loss())
            .order_by(*SORTS[chosen.sort]))


def at_risk_summary(as_of: date, chosen: RiskFilter | None = None) -> dict:
    """How many are at risk on `as_of`, their value at risk and predicted value, and how
    many show each reason (one aggregate query, over the rows `chosen` keeps)."""
    rows = AtRisk.objects.filter(as_of=as_of)
    if chosen is not None and chosen.reason:
        rows = rows.filter(atrisk.reason(chosen.reason).condition())
    if chosen is not None and chosen.customer_type:
        rows = rows.filter(customer__customer_type=chosen.customer_type)
    open_follow_up = FollowUp.objects.filter(customer=OuterRef("customer_id"),
                                             status=FollowUp.Status.OPEN)
    reasons = atrisk.reasons()
    found = rows.annotate(followed=Exists(open_follow_up), loss=expected_loss()).aggregate(
        customers=Count("pk"), value_at_risk=Sum("value_at_risk"), expected_loss=Sum("loss"),
        predicted_value=Sum("predicted_value_12m"),
        followed_up=Count("pk", filter=Q(followed=True)),
        **{f"reason_{r.code}": Count("pk", filter=r.condition()) for r in reasons},
    )
    return {
        "customers": found["customers"],
        "value_at_risk": money(found["value_at_risk"]),
        "expected_loss": money(found["expected_loss"]),
        "predicted_value": money(found["predicted_value"]),
        "followed_up": found["followed_up"],
        "reasons": [{"code": r.code, "label": r.label, "customers": found[f"reason_{r.code}"]}
                    for r in reasons],
    }


def at_risk_days() -> list[date]:
    return list(AtRisk.objects.order_by("-as_of").values_list("as_of", flat=True).distinct())


def as_csv_rows(rows: QuerySet):
    """The list's rows as CSV values, streamed."""
    for row in rows.iterator(chunk_size=2000):
        yield [row.customer.external_id, row.customer.display_name, row.customer.email,
               row.customer.customer_type, row.as_of.isoformat(), money(row.expected_loss),
               row.value_at_risk, row.predicted_value_12m, round(row.probability_active, 4), round(row.score, 4),
               row.days_since_last, row.usual_gap_days, " | ".join(atrisk.in_words(row)),
               row.follow_up_with or ""]


CSV_COLUMNS = ["customer_id", "name", "email", "type", "as_of", "expected_loss", "value_at_risk",
               "predicted_value_12m", "probability_active", "no_purchase_90d_probability",
               "days_since_last", "usual_gap_days", "reasons", "follow_up_with"]

