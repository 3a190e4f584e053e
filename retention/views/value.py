"""Predicted customer value: what customers are likely to be worth, and whether to trust it.

    /metrics/value/?as_of=DATE

Shows the nightly predictions of a day (the latest by default): the model's health
(parameters, convergence, the Gamma-Gamma check, or the simple rule used and why), the
distribution of predicted 12-month value in tenths, the top customers, the value at
risk, and the holdout validation (predicted against actual purchases after a split).
"""

from __future__ import annotations

from datetime import date

from django.shortcuts import render
from django.utils.translation import gettext as _

from retention.periods import last_complete_day
from retention.value import predictions, reports
from retention.value.models import ClvFit
from retention.views.access import csv_download, day_asked, managers_only

# Beyond this, the Gamma-Gamma assumption (spend independent of frequency) is doubtful.
CORRELATION_WARNING = 0.3


def _day_asked(query, available: list[date]) -> tuple[date | None, list[str]]:
    return day_asked(query, available,
                     missing=_("No predictions stored for %(day)s; showing %(latest)s."))


def health(fit: ClvFit) -> dict:
    """The fit as the page shows it, with a warning when Gamma-Gamma's check fails."""
    described = predictions.describe(fit)
    correlation = (fit.gamma_gamma or {}).get("frequency_spend_correlation")
    described["correlation"] = correlation
    described["correlation_doubtful"] = (correlation is not None
                                         and abs(correlation) > CORRELATION_WARNING)
    return described


def holdout_chart(record: ClvFit | None) -> dict | None:
    if record is None or not record.holdout:
        return None
    rows = record.holdout["by_calibration_purchases"]
    return {"labels": [row["calibration_purchases"] for row in rows],
            "series": {"predicted": [row["predicted_mean"] for row in rows],
                       "actual": [row["actual_mean"] for row in rows]}}


def holdout_gap(record: ClvFit | None) -> dict | None:
    """How far the holdout's predicted total is from the actual one, in words' parts."""
    error = (record.holdout or {}).get("error_percent") if record is not None else None
    return None if error is None else {"percent": abs(error), "above": error >= 0}


@managers_only
def value_page(request):
    available = reports.prediction_days()
    day, errors = _day_asked(request.GET, available)
    if day is None:
        return render(request, "retention/value.html", {"errors": [
            _("No predictions yet: the nightly job makes them (manage.py run_nightly).")]})
    fit = ClvFit.objects.filter(purpose=ClvFit.Purpose.NIGHTLY, as_of=day).order_by(
        "-created_at").first()
    tenths = reports.distribution(day)
    holdout = predictions.stored_holdout(last_complete_day())
    return render(request, "retention/value.html", {
        "errors": errors, "day": day, "available": available[:60],
        "fit": health(fit) if fit else predictions.describe(None),
        "summary": reports.value_summary(day),
        "tenths": tenths,
        "chart": {"labels": [str(row["label"]) for row in tenths],
                  "values": [float(row["value"]) for row in tenths]},
        "top": reports.top_customers(day),
        "holdout": holdout,
        "holdout_chart": holdout_chart(holdout),
        "holdout_gap": holdout_gap(holdout),
        "discount_percent": float(fit.monthly_discount) * 100 if fit else None,
    })


@managers_only
def value_csv(request):
    """Every customer's prediction of the day (the latest by default), highest value first."""
    available = reports.prediction_days()
    day, _errors = _day_asked(request.GET, available)
    header = ["customer_id", "name", "email", "type", "as_of", "probability_active", "expected_purchases_12m",
              "expected_value_per_purchase", "predicted_value_12m", "value_at_risk",
              "no_purchase_90d_probability", "repeat_purchases", "recency_weeks", "age_weeks"]
    if day is None:
        return csv_download("predicted-value.csv", header, [])
    rows = reports.predictions_on(day)
    return csv_download(f"predicted-value-{day}.csv", header, (
        [p.customer.external_id, p.customer.display_name, p.customer.email,
         p.customer.customer_type, p.as_of.isoformat(), round(p.probability_active, 4),
         round(p.expected_purchases_12m, 4), p.expected_value_per_purchase,
         p.predicted_value_12m, p.value_at_risk, round(p.no_purchase_90d, 4), p.frequency,
         round(p.recency_weeks, 2), round(p.age_weeks, 2)]
        for p in rows.iterator(chunk_size=2000)), stream=True)

