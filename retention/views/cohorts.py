"""The cohort heatmap: monthly cohorts of first orders, their retention and revenue by month.

    /metrics/cohorts/?start=2025-01&end=2025-12   (months; default the last 12 to yesterday)

The table is cohort_retention's (retention.figures.cohorts), stored as a report and read back.
"""

from __future__ import annotations

from datetime import date

from django.shortcuts import render
from django.utils.translation import gettext as _

from retention.figures import cohorts, metrics
from retention.periods import last_complete_day, month_end, month_start
from retention.views.access import csv_download, managers_only


def months_asked(query, as_of: date) -> tuple[date, date, list[str]]:
    """The range's first day and as-of day from `start` and `end` months (YYYY-MM)."""
    errors = []
    first, _end = cohorts.default_range(as_of)
    last_month = month_start(as_of)
    try:
        if query.get("start"):
            first = date.fromisoformat(query["start"] + "-01")
        if query.get("end"):
            last_month = date.fromisoformat(query["end"] + "-01")
    except ValueError:
        errors.append(_("Give the months as YYYY-MM."))
    end = min(month_end(last_month), as_of)
    return first, end, errors


# The darkest shade: dark text on it still has a contrast of 4.5:1 (WCAG AA).
MAX_SHADE = 0.7


def shaded(values: list, top, *, partial_at: int | None = None) -> list[dict]:
    """Cells with a shade from 0 to MAX_SHADE: the value's share of `top`. The cell at
    `partial_at` is a month not over yet (counted to date)."""
    cells = []
    for k, value in enumerate(values):
        share = 0 if value is None or not top else max(0.0, min(1.0, float(value) / float(top)))
        cells.append({"value": value, "shade": round(share * MAX_SHADE, 2),
                      "partial": k == partial_at})
    return cells


def _months_between(first: date, second: date) -> int:
    return (second.year - first.year) * 12 + second.month - first.month


@managers_only
def cohort_page(request):
    as_of = last_complete_day()
    first, end, errors = months_asked(request.GET, as_of)
    context = {"errors": errors, "start": first.strftime("%Y-%m"), "end": end.strftime("%Y-%m"),
               "as_of": end, "query": request.GET.urlencode()}
    try:
        data = cohorts.stored_table(first, end)
    except metrics.InvalidPeriod as exc:
        context["errors"].append(str(exc))
        return render(request, "retention/cohorts.html", context, status=400)
    top_revenue = max((value for row in data["cohorts"] for value in row["revenue"][1:]),
                      default=0)
    # The last month is counted to date unless `end` is its last day: its cells are marked.
    partial_month = month_start(end) if end < month_end(end) else None

    def partial_at(cohort: str) -> int | None:
        if partial_month is None:
            return None
        return _months_between(date.fromisoformat(cohort + "-01"), partial_month)

    context["rows"] = [
        {"cohort": row["cohort"], "size": row["size"],
         "retention": shaded(row["retention"], 100, partial_at=partial_at(row["cohort"])),
         "revenue": shaded(row["revenue"], top_revenue or None,
                           partial_at=partial_at(row["cohort"]))}
        for row in data["cohorts"]
    ]
    context["partial_month"] = partial_month
    context["offsets"] = list(range(max((len(row["retention"]) for row in data["cohorts"]),
                                        default=0)))
    return render(request, "retention/cohorts.html", context)


@managers_only
def cohort_csv(request):
    """One table of the page: ?table=retention (default) or revenue."""
    first, end, _errors = months_asked(request.GET, last_complete_day())
    which = "revenue" if request.GET.get("table") == "revenue" else "retention"
    data = cohorts.stored_table(first, end)
    width = max((len(row[which]) for row in data["cohorts"]), default=0)
    return csv_download(
        f"cohort-{which}-{data['as_of']}.csv",
        ["cohort", "size", *[f"month_{k}" for k in range(width)]],
        ([row["cohort"], row["size"], *row[which]] for row in data["cohorts"]),
    )
