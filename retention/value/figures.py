"""The predicted lifetime value of the spec (`predicted_clv_12m`): the mean stored 12-month
prediction of the customers active at the end of the period, and which predictions it read.

Registered as `value.predicted_clv` (retention/apps.py): the figures engine knows nothing of
the predictions; this part of value counts them for it.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.db.models import Avg

from retention.figures.counting import Bounds
from retention.figures.registry import Figures, Scope
from retention.money import round_half_up
from retention.sales.models import Order
from retention.value.models import ClvFit, CustomerPrediction


def predicted_clv(end: date, bounds: Bounds, customers) -> tuple[Decimal | None, dict | None]:
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


def count(scope: Scope) -> dict:
    """The figure, with the predictions it read noted in the answer's `period`."""
    value, source = predicted_clv(scope.period.end, scope.bounds, scope.customers)
    scope.notes["predictions"] = source
    return {"predicted_clv_12m": value}


FIGURES = Figures(name="value.predicted_clv", keys=("predicted_clv_12m",), count=count)
