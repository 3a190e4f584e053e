"""The managers' pages: every metric for a period and a subset, against the previous period
and the quarter's targets. Thin: parsing and shaping only; figures come from retention.metrics."""

import csv
from dataclasses import dataclass
from datetime import date, timedelta
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _

from django.conf import settings

from retention import metrics, segments, snapshots, targets
from retention.models import Course, Customer, MetricSnapshot, Target

MANAGERS = "Managers"
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
PERIODS = [("this_quarter", _("This quarter")), ("last_quarter", _("Last quarter")),
           ("this_month", _("This month")), ("last_month", _("Last month")),
           ("custom", _("Custom"))]


def managers_only(view):
    """Managers (the Managers group) and superusers; others are refused, strangers sent to log in."""
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        user = request.user
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path(), "/admin/login/")
        if not (user.is_active and (user.is_superuser or user.groups.filter(name=MANAGERS).exists())):
            raise PermissionDenied(_("The metrics pages are for managers."))
        return view(request, *args, **kwargs)
    return wrapper


@dataclass
class Choice:
    period: str
    start: date
    end: date
    subset: metrics.Subset
    errors: list[str]


def parse(query, today: date) -> Choice:
    """The period and subset asked for in the query string (defaults: this quarter, everyone)."""
    errors = []
    period = query.get("period", "this_quarter")
    quarter_start = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    month_start = today.replace(day=1)
    if period == "last_quarter":
        end = quarter_start - timedelta(days=1)
        start = date(end.year, 3 * ((end.month - 1) // 3) + 1, 1)
    elif period == "this_month":
        start, end = month_start, today
    elif period == "last_month":
        end = month_start - timedelta(days=1)
        start = end.replace(day=1)
    elif period == "custom":
        try:
            start, end = date.fromisoformat(query.get("start", "")), date.fromisoformat(query.get("end", ""))
        except ValueError:
            errors.append(_("Give the custom period's first and last days."))
            start, end = quarter_start, today
    else:
        period, start, end = "this_quarter", quarter_start, today
    subset = metrics.Subset(
        source=query.get("source", ""), customer_type=query.get("customer_type", ""),
        category=query.get("category", ""), segment=query.get("segment", ""),
    )
    return Choice(period, start, end, subset, errors)


def figures_for(choice: Choice):
    """(figures of the period, of the previous period), or raise metrics.InvalidPeriod."""
    current = metrics.compute(choice.start, choice.end, subset=choice.subset)
    previous_period = metrics.Period(choice.start, choice.end).previous()
    previous = metrics.compute(previous_period.start, previous_period.end, subset=choice.subset)
    return current, previous


def rows(current: dict, previous: dict, statuses: dict) -> list[dict]:
    result = []
    for key in metrics.KEYS:
        value, before = current[key], previous[key]
        change = None if value is None or before is None else value - before
        result.append({"key": key, "label": key.replace("_", " ").capitalize(),
                       "definition": metrics.DEFINITIONS[key], "value": value, "previous": before,
                       "change": change, "target": statuses.get(key)})
    return result


def target_statuses(choice: Choice, today: date) -> dict:
    """The status of this quarter's targets (for the subset asked for), by metric."""
    year, quarter = choice.start.year, (choice.start.month - 1) // 3 + 1
    found = Target.objects.filter(year=year, quarter=quarter, source=choice.subset.source,
                                  customer_type=choice.subset.customer_type,
                                  category=choice.subset.category)
    result = {}
    for target in found:
        evaluation = targets.evaluate(target, today=today)
        result[target.metric] = {"target": target, "evaluation": evaluation}
    return result


@managers_only
def overview(request):
    today = timezone.localdate()
    choice = parse(request.GET, today)
    context = {"choice": choice, "periods": PERIODS, "customer_types": metrics.CUSTOMER_TYPES,
               "segments": segments.NAMES, "errors": list(choice.errors)}
    context["sources"] = (Customer.objects.exclude(acquisition_source="").order_by()
                          .values_list("acquisition_source", flat=True).distinct())
    context["categories"] = Course.objects.order_by().values_list("category", flat=True).distinct()
    try:
        current, previous = figures_for(choice)
    except metrics.InvalidPeriod as exc:
        context["errors"].append(str(exc))
        return render(request, "retention/metrics_overview.html", context, status=400)
    by_key = {row["key"]: row for row in rows(current, previous, target_statuses(choice, today))}
    context.update(
        trend=trend(choice.subset, today),
        period=current["period"],
        groups=[(title, [by_key[key] for key in keys]) for title, keys in GROUPS],
        export_query=request.GET.urlencode(),
    )
    return render(request, "retention/metrics_overview.html", context)


@managers_only
def overview_csv(request):
    choice = parse(request.GET, timezone.localdate())
    try:
        current, previous = figures_for(choice)
    except metrics.InvalidPeriod as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain")
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="metrics-{choice.start}-{choice.end}.csv"')
    writer = csv.writer(response)
    writer.writerow(["metric", "value", "previous", "change", "definition", "start", "end",
                     "previous_start", "previous_end", "subset"])
    period = current["period"]
    subset = ";".join(f"{k}={v}" for k, v in period["subset"].items())
    for row in rows(current, previous, {}):
        writer.writerow([row["key"], _blank(row["value"]), _blank(row["previous"]),
                         _blank(row["change"]), row["definition"], period["start"], period["end"],
                         period["previous_start"], period["previous_end"], subset])
    return response


def _blank(value) -> str:
    return "" if value is None else str(value)


TREND_KEYS = ["retention_rate", "churn_rate", "repeat_purchase_rate", "new_offering_engagement_rate"]


def trend(subset: metrics.Subset, today: date, quarters: int = 8) -> dict:
    """The last `quarters` calendar quarters (the current one to date) from stored snapshots.

    A quarter without a snapshot is computed once and stored, so later views only read.
    """
    first = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    starts = [first]
    for _ in range(quarters - 1):
        previous_end = starts[0] - timedelta(days=1)
        starts.insert(0, date(previous_end.year, 3 * ((previous_end.month - 1) // 3) + 1, 1))
    key = snapshots.subset_key(subset)
    stored = {s.start: s for s in MetricSnapshot.objects.filter(
        grain=MetricSnapshot.Grain.QUARTER, start__in=starts, subset=key,
        window_days=settings.RETENTION_ACTIVITY_WINDOW_DAYS,
        new_offering_window_days=settings.NEW_OFFERING_WINDOW_DAYS)}
    labels, series = [], {name: [] for name in TREND_KEYS}
    for start in starts:
        end = min(targets.quarter_bounds(start.year, (start.month - 1) // 3 + 1)[1], today)
        snapshot = stored.get(start)
        if snapshot is None or snapshot.end < end:
            snapshot = snapshots.save(start, end, grain=MetricSnapshot.Grain.QUARTER, subset=subset)
        labels.append(f"{start.year} Q{(start.month - 1) // 3 + 1}")
        for name in TREND_KEYS:
            series[name].append(snapshot.figures[name])
    return {"labels": labels, "series": series}


def _quarter_asked(query, today: date) -> tuple[int, int, list[str]]:
    current = (today.year, (today.month - 1) // 3 + 1)
    try:
        year, quarter = int(query.get("year", current[0])), int(query.get("quarter", current[1]))
    except ValueError:
        return (*current, [_("Year and quarter are numbers.")])
    if not (2000 <= year <= 2999 and 1 <= quarter <= 4):
        return (*current, [_("Pick a quarter 1 to 4 of a year from 2000.")])
    return year, quarter, []


def scorecard_rows(year: int, quarter: int, today: date) -> list[dict]:
    """Each target of the quarter with its evaluation; figures are computed once per subset."""
    cache: dict = {}
    result = []
    for target in Target.objects.filter(year=year, quarter=quarter).order_by("metric", "pk"):
        evaluation = targets.evaluate(target, today=today,
                                      figures=targets.cached_figures(target, cache))
        subset = (target.source, target.customer_type, target.category)
        result.append({"target": target, "evaluation": evaluation,
                       "definition": metrics.DEFINITIONS.get(target.metric, ""),
                       "subset": ", ".join(v for v in subset if v) or _("all customers")})
    return result


@managers_only
def scorecard(request):
    today = timezone.localdate()
    year, quarter, errors = _quarter_asked(request.GET, today)
    first, last = targets.quarter_bounds(year, quarter)
    context = {"year": year, "quarter": quarter, "first": first, "last": last, "errors": errors,
               "rows": scorecard_rows(year, quarter, today), "today": today,
               "query": request.GET.urlencode()}
    return render(request, "retention/scorecard.html", context)


@managers_only
def scorecard_csv(request):
    today = timezone.localdate()
    year, quarter, _errors = _quarter_asked(request.GET, today)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="scorecard-{year}-Q{quarter}.csv"'
    writer = csv.writer(response)
    writer.writerow(["metric", "subset", "kind", "low", "high", "status", "final", "result",
                     "figure", "previous_figure", "period_start", "period_end",
                     "previous_start", "previous_end", "note"])
    for row in scorecard_rows(year, quarter, today):
        target, evaluation = row["target"], row["evaluation"]
        period, previous = evaluation.period or ("", ""), evaluation.previous_period or ("", "")
        writer.writerow([target.metric, row["subset"], target.kind, target.low, target.high,
                         evaluation.status, evaluation.final, _blank(evaluation.result),
                         _blank(evaluation.figure), _blank(evaluation.previous_figure),
                         *period, *previous, target.note])
    return response
