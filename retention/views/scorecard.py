"""The quarter scorecard (the quarterly business review): each target, its result, its status
and the figures behind it; printable, and as CSV."""

from __future__ import annotations

from datetime import date

from django.shortcuts import render
from django.utils.translation import gettext as _

from retention.figures import registry, targets
from retention.figures.models import Target
from retention.periods import last_complete_day, quarter_bounds, quarter_of
from retention.views.access import blank, csv_download, managers_only


def _quarter_asked(query, as_of: date) -> tuple[int, int, list[str]]:
    current = quarter_of(as_of)
    try:
        year, quarter = int(query.get("year", current[0])), int(query.get("quarter", current[1]))
    except ValueError:
        return (*current, [_("Year and quarter are numbers.")])
    if not (2000 <= year <= 2999 and 1 <= quarter <= 4):
        return (*current, [_("Pick a quarter 1 to 4 of a year from 2000.")])
    return year, quarter, []


def scorecard_rows(year: int, quarter: int, as_of: date) -> list[dict]:
    """Each target of the quarter with its evaluation, from stored figures."""
    cache: dict = {}
    result = []
    for target in Target.objects.filter(year=year, quarter=quarter).order_by("metric", "pk"):
        evaluation = targets.evaluate(target, today=as_of, figures=targets.stored_figures(target, cache))
        subset = (target.source, target.customer_type, target.category)
        result.append({"target": target, "evaluation": evaluation,
                       "definition": registry.definitions().get(target.metric, ""),
                       "subset": ", ".join(v for v in subset if v) or _("all customers")})
    return result


@managers_only
def scorecard(request):
    as_of = last_complete_day()
    year, quarter, errors = _quarter_asked(request.GET, as_of)
    first, last = quarter_bounds(year, quarter)
    context = {"year": year, "quarter": quarter, "first": first, "last": last, "errors": errors,
               "rows": scorecard_rows(year, quarter, as_of), "today": as_of,
               "query": request.GET.urlencode()}
    return render(request, "retention/scorecard.html", context)


@managers_only
def scorecard_csv(request):
    as_of = last_complete_day()
    year, quarter, _errors = _quarter_asked(request.GET, as_of)

    def lines():
        for row in scorecard_rows(year, quarter, as_of):
            target, evaluation = row["target"], row["evaluation"]
            period, previous = evaluation.period or ("", ""), evaluation.previous_period or ("", "")
            yield [target.metric, row["subset"], target.kind, target.low, target.high,
                   evaluation.status, evaluation.final, blank(evaluation.result),
                   blank(evaluation.figure), blank(evaluation.previous_figure),
                   *period, *previous, target.note]

    return csv_download(
        f"scorecard-{year}-Q{quarter}.csv",
        ["metric", "subset", "kind", "low", "high", "status", "final", "result", "figure",
         "previous_figure", "period_start", "period_end", "previous_start", "previous_end",
         "note"],
        lines(),
    )
