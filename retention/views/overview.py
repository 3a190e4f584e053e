"""The managers' overview: every metric for a period and a subset, against the previous period
and the quarter's targets, with trend charts. Figures are read from stored snapshots
(retention.figures.snapshots), computed and stored on a first view."""

from __future__ import annotations

from datetime import date, timedelta

from django.conf import settings
from django.db.models import Min
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _

from retention.figures import drilldown, metrics, registry, reports, snapshots, spec, targets
from retention.figures.models import Alert, Target
from retention.money import from_json
from retention.periods import Period, last_complete_day, quarter_label, quarter_of
from retention.sales.models import CUSTOMER_TYPES, Course, Order
from retention.value import reports as value_reports
from retention.value.models import AtRisk, FollowUp
from retention.views.access import blank, csv_download, managers_only
from retention.views.choice import PERIODS, Choice, parse

GROUPS = [  # how the cards are grouped on the page, in order
    (_("Retention and churn"), ["retention_rate", "churn_rate", "customers_start", "customers_end",
                                "retained_customers", "churned_customers", "new_customers",
                                "reactivated_customers"]),
    (_("Purchases"), ["orders", "revenue", "buyers", "repeat_purchase_rate",
                      "repeat_customer_share", "returning_customer_rate", "purchase_frequency",
                      "average_order_value", "existing_customer_revenue",
                      "existing_customer_revenue_growth_rate"]),
    (_("Value and engagement"), ["clv_simple", "historical_clv", "predicted_clv_12m",
                                 "new_offering_engagement_rate", "referral_rate"]),
    (_("Satisfaction"), ["nps", "nps_responses", "csat", "survey_response_rate"]),
    (_("Memberships"), ["mrr_start", "mrr_churned", "mrr_churn_rate", "net_mrr_retention"]),
]
TREND_KEYS = ["retention_rate", "churn_rate", "repeat_purchase_rate", "new_offering_engagement_rate"]
TRENDS = {"quarters": _("Last 8 quarters"), "months": _("Last 12 months")}
def figures_for(choice: Choice, cache: dict) -> tuple[dict, dict]:
    """(figures of the period, of the previous period), from snapshots; or InvalidPeriod."""
    metrics.options_for(choice.start, choice.end, subset=choice.subset)  # explain bad requests
    previous = Period(choice.start, choice.end).previous()
    # The previous period may reach before a segment's first snapshot: no data, not an error.
    current, before = snapshots.figures_many(
        [(choice.start, choice.end), (previous.start, previous.end)], subset=choice.subset,
        cache=cache, unavailable_as_none=True)
    return from_json(current), from_json(before)


def groups(by_key: dict) -> list[tuple[str, list[dict]]]:
    """The cards in their groups; figures that apps register beyond the spec come last."""
    grouped = [(title, [by_key[key] for key in keys]) for title, keys in GROUPS]
    shown = {key for _title, keys in GROUPS for key in keys}
    more = [row for key, row in by_key.items() if key not in shown]
    return grouped + ([(_("More figures"), more)] if more else [])


def rows(current: dict, previous: dict, statuses: dict, choice: Choice) -> list[dict]:
    result = []
    definitions = registry.definitions()
    for key in registry.keys():
        value, before = current.get(key), previous.get(key)
        change = None if value is None or before is None else value - before
        customers = drilldown.FIGURE_SETS.get(key)
        result.append({
            "key": key, "label": registry.label(key),
            "definition": definitions[key], "value": value, "previous": before,
            "change": change, "target": statuses.get(key),
            "customers_url": customers and f"/metrics/customers/?{choice.query(set=customers)}",
        })
    return result


def target_statuses(choice: Choice, as_of: date, cache: dict) -> dict:
    """The status of the quarter's targets (for the subset asked for), by metric."""
    year, quarter = quarter_of(choice.start)
    found = Target.objects.filter(year=year, quarter=quarter, source=choice.subset.source,
                                  customer_type=choice.subset.customer_type,
                                  category=choice.subset.category)
    return {target.metric: {"target": target,
                            "evaluation": targets.evaluate(target, today=as_of,
                                                           figures=targets.stored_figures(target, cache))}
            for target in found}


ATTENTION_ROWS = 5


def attention(as_of: date) -> dict:
    """What needs a manager's attention now: the latest alerts, the customers at risk worth
    most on the latest night, and follow-ups past their due date. A few small queries."""
    latest = AtRisk.objects.order_by("-as_of").values_list("as_of", flat=True).first()
    # Ranked as the at-risk page ranks them: by expected value lost.
    at_risk = (AtRisk.objects.filter(as_of=latest).select_related("customer")
               .annotate(expected_loss=value_reports.expected_loss())
               .order_by("-expected_loss", "-value_at_risk", "customer_id")[:ATTENTION_ROWS]
               if latest else [])
    return {
        "alerts": list(Alert.objects.filter(raised_at__date__gte=as_of - timedelta(days=31))
                       .select_related("rule").order_by("-raised_at")[:ATTENTION_ROWS]),
        "at_risk": list(at_risk), "at_risk_on": latest,
        "at_risk_count": AtRisk.objects.filter(as_of=latest).count() if latest else 0,
        # As the admin's "Open and past their due date" filter counts them (due before today).
        "overdue": FollowUp.objects.filter(status=FollowUp.Status.OPEN,
                                           due_on__lt=as_of + timedelta(days=1)).count(),
    }


def trend(subset: metrics.Subset, as_of: date, grain: str, cache: dict) -> dict:
    """The last 8 quarters or 12 months (the current one to `as_of`), from stored snapshots.

    The current period is labelled "to date". A period that starts before there is a full
    activity window of orders behind it (the data's first paid order less than W days
    before its start) has its rates left out: with no history every customer at the start
    looks retained, and 100 % would mislead. `short_history` names those periods.
    """
    periods = snapshots.trend_periods(as_of, grain)
    # A segment's trend reaches back before its first snapshot: those periods have no data.
    stored = snapshots.figures_many(periods, subset=subset, cache=cache, unavailable_as_none=True)
    labels = [quarter_label(start) if grain == "quarters"
              else start.strftime("%Y-%m") for start, _end in periods]
    labels[-1] += " (to date)"
    first_paid = Order.objects.counting().aggregate(first=Min("ordered_at"))["first"]
    window = timedelta(days=settings.RETENTION_ACTIVITY_WINDOW_DAYS)
    short = [first_paid is None or timezone.localtime(first_paid).date() > start - window
             for start, _end in periods]
    series = {key: [None if too_short else figures[key]
                    for figures, too_short in zip(stored, short, strict=True)]
              for key in TREND_KEYS}
    return {"labels": labels, "grain": grain, "series": series,
            "names": {key: registry.label(key) for key in TREND_KEYS},
            "short_history": [label for label, too_short in zip(labels, short, strict=True)
                              if too_short]}


def picker_context(choice: Choice) -> dict:
    """What the period and subset pickers offer (the stored sources, the courses' categories)."""
    return {
        "choice": choice, "periods": PERIODS, "customer_types": CUSTOMER_TYPES,
        "segments": spec.SEGMENT_NAMES, "errors": list(choice.errors),
        "sources": reports.acquisition_sources(),
        "categories": Course.objects.order_by().values_list("category", flat=True).distinct(),
    }


@managers_only
def overview(request):
    as_of = last_complete_day()
    choice = parse(request.GET, as_of)
    grain = request.GET.get("trend") if request.GET.get("trend") in TRENDS else "quarters"
    context = picker_context(choice)
    cache: dict = {}
    try:
        current, previous = figures_for(choice, cache)
    except metrics.InvalidPeriod as exc:
        context["errors"].append(str(exc))
        return render(request, "retention/metrics_overview.html", context, status=400)
    by_key = {row["key"]: row
              for row in rows(current, previous, target_statuses(choice, as_of, cache), choice)}
    statuses = [row["target"] | {"key": row["key"]}
                for row in by_key.values() if row["target"]]
    context.update(
        as_of=as_of,
        targets=statuses, targets_quarter=quarter_label(choice.start),
        attention=attention(as_of),
        trend=trend(choice.subset, as_of, grain, cache),
        trend_title=TRENDS[grain],
        period=current["period"],
        groups=groups(by_key),
        export_query=choice.query(),
        other_trend_query=choice.query(trend="months" if grain == "quarters" else "quarters"),
    )
    return render(request, "retention/metrics_overview.html", context)


@managers_only
def overview_csv(request):
    choice = parse(request.GET, last_complete_day())
    try:
        current, previous = figures_for(choice, {})
    except metrics.InvalidPeriod as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain")
    period = current["period"]
    subset = ";".join(f"{k}={v}" for k, v in period["subset"].items())
    return csv_download(
        f"metrics-{choice.start}-{choice.end}.csv",
        ["metric", "value", "previous", "change", "definition", "start", "end",
         "previous_start", "previous_end", "window_days", "subset"],
        ([row["key"], blank(row["value"]), blank(row["previous"]), blank(row["change"]),
          row["definition"], period["start"], period["end"], period["previous_start"],
          period["previous_end"], period["window_days"], subset]
         for row in rows(current, previous, {}, choice)),
    )


@managers_only
def trend_csv(request):
    """The trend table of the page (8 quarters or 12 months) as CSV."""
    as_of = last_complete_day()
    choice = parse(request.GET, as_of)
    grain = request.GET.get("trend") if request.GET.get("trend") in TRENDS else "quarters"
    data = trend(choice.subset, as_of, grain, {})
    return csv_download(
        f"trend-{grain}-{as_of}.csv", ["metric", *data["labels"]],
        ([key, *values] for key, values in data["series"].items()),
    )
