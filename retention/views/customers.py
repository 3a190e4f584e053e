"""The customers behind a figure, a segment or a move between segments: a page and its CSV.

    /metrics/customers/?set=churned&period=last_quarter[&customer_type=…]
    /metrics/customers/?in_segment=loyalist&on=2025-09-30
    /metrics/customers/?moved_from=loyalist&moved_to=inactive&first=…&second=…

Lists are sorted by what the customers have spent (most first) and paginated; the CSV
holds every customer of the list.
"""

from __future__ import annotations

from datetime import date

from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import render
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from retention.figures import drilldown, metrics, spec
from retention.periods import last_complete_day
from retention.views.access import csv_download, managers_only
from retention.views.choice import SUBSET_FIELDS, parse

PAGE_SIZE = 50
COLUMNS = ["customer_id", "name", "type", "sector", "source", "first_order_at", "last_order_at",
           "orders", "total_spent"]


class BadList(ValueError):
    """The list asked for cannot be made; the message says why."""


def _date(query, name: str) -> date:
    try:
        return date.fromisoformat(query.get(name, ""))
    except ValueError:
        raise BadList(_("Give %(name)s as a date (YYYY-MM-DD).") % {"name": name}) from None


def chosen(query) -> tuple[str, str, object]:
    """(title, description, Customer queryset) for the list asked for, or raise BadList."""
    if "in_segment" in query:
        name, on = query["in_segment"], _date(query, "on")
        if name not in spec.SEGMENT_NAMES:
            raise BadList(_("Unknown segment %(name)s.") % {"name": name})
        return (_("%(name)s on %(on)s") % {"name": spec.SEGMENT_LABELS[name],
                                            "on": date_format(on)},
                dict(spec.SEGMENTS)[name], drilldown.in_segment(name, on))
    if "moved_from" in query:
        origin, destination = query["moved_from"], query.get("moved_to", "")
        first, second = _date(query, "first"), _date(query, "second")
        if origin not in ["new", *spec.SEGMENT_NAMES] or destination not in spec.SEGMENT_NAMES:
            raise BadList(_("Unknown segment in this move."))
        return (_("From %(origin)s on %(first)s to %(destination)s on %(second)s")
                % {"origin": spec.SEGMENT_LABELS[origin], "first": date_format(first),
                   "destination": spec.SEGMENT_LABELS[destination],
                   "second": date_format(second)},
                _("Customers in the first segment on the first date and the second on the "
                  "second date."), drilldown.moved(origin, destination, first, second))
    name = query.get("set", "")
    if name not in drilldown.SETS:
        raise BadList(_("Unknown list %(name)s.") % {"name": name})
    choice = parse(query, last_complete_day())
    if choice.errors:
        raise BadList(choice.errors[0])
    try:
        found = drilldown.customers(name, choice.start, choice.end, subset=choice.subset)
    except metrics.InvalidPeriod as exc:
        raise BadList(str(exc)) from None
    subset = ", ".join(f"{field} {getattr(choice.subset, field)}" for field in SUBSET_FIELDS
                       if getattr(choice.subset, field))
    description = _("%(start)s to %(end)s") % {"start": choice.start, "end": choice.end}
    if subset:
        description += f" · {subset}"
    return drilldown.SETS[name].title, description, found


def _listed(queryset):
    """The list's rows in order, with only the columns the page shows."""
    return queryset.order_by("-total_spent", "external_id").only(
        "pk", "external_id", "name", "organisation_name", "email", "customer_type", "sector",
        "acquisition_source", "first_order_at", "last_order_at", "order_count", "total_spent")


@managers_only
def customer_list(request):
    try:
        title, description, found = chosen(request.GET)
    except BadList as exc:
        return render(request, "retention/customer_list.html", {"errors": [str(exc)]},
                      status=400)
    paginator = Paginator(_listed(found), PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "retention/customer_list.html", {
        "title": title, "description": description, "page": page, "count": paginator.count,
        "query": query.urlencode(), "errors": [],
    })


@managers_only
def customer_list_csv(request):
    try:
        _title, _description, found = chosen(request.GET)
    except BadList as exc:
        raise Http404(str(exc)) from None
    rows = ([c.external_id, c.display_name, c.customer_type, c.sector, c.acquisition_source,
             c.first_order_at and c.first_order_at.isoformat(),
             c.last_order_at and c.last_order_at.isoformat(), c.order_count, c.total_spent]
            for c in _listed(found).iterator(chunk_size=2000))
    return csv_download("customers.csv", COLUMNS, rows, stream=True)

