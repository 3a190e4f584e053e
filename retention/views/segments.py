"""Segment sizes on a snapshot date and the moves between two dates, with the revenue at stake.

    /metrics/segments/?on=DATE&first=DATE&second=DATE

Defaults: the latest snapshot, and the moves from the snapshot about a quarter before it.
Each count links to its customers; both tables export to CSV.
"""

from __future__ import annotations

from datetime import date

from django.shortcuts import render
from django.utils.translation import gettext as _

from retention.figures import segments, spec
from retention.figures.models import StoredReport
from retention.views.access import csv_download, managers_only


def dates_asked(query, available: list[date]) -> tuple[date, date, date, list[str]]:
    """(on, first, second) from the query, each a snapshot date; defaults as the module says."""
    errors = []
    first, second = segments.default_pair(available)
    defaults = {"on": second, "second": second, "first": first}
    chosen = {}
    for name, default in defaults.items():
        try:
            chosen[name] = date.fromisoformat(query[name]) if query.get(name) else default
        except ValueError:
            errors.append(_("Give %(name)s as a date (YYYY-MM-DD).") % {"name": name})
            chosen[name] = default
        if chosen[name] not in available:
            errors.append(_("No segment snapshot on %(day)s; showing %(default)s.")
                          % {"day": chosen[name], "default": default})
            chosen[name] = default
    if chosen["first"] > chosen["second"]:
        errors.append(_("The first date is after the second; they were swapped."))
        chosen["first"], chosen["second"] = chosen["second"], chosen["first"]
    return chosen["on"], chosen["first"], chosen["second"], errors


def sizes_on(on: date) -> dict[str, int]:
    row = StoredReport.objects.get(kind=segments.SIZES_REPORT, key=on.isoformat())
    return row.data["sizes"]


def matrix(found: list[dict]) -> tuple[list[str], list[dict]]:
    """The moves as rows (from) by columns (to), with totals; empty pairs are None."""
    origins = [name for name in ["new", *spec.SEGMENT_NAMES] if any(m["from"] == name for m in found)]
    cell = {(m["from"], m["to"]): m for m in found}
    rows = [{"origin": origin,
             "cells": [cell.get((origin, destination)) for destination in spec.SEGMENT_NAMES],
             "customers": sum(m["customers"] for m in found if m["from"] == origin),
             "revenue": sum(m["revenue"] for m in found if m["from"] == origin)}
            for origin in origins]
    return spec.SEGMENT_NAMES, rows


@managers_only
def segment_page(request):
    available = segments.snapshot_dates()
    if not available:
        return render(request, "retention/segments.html", {"errors": [
            _("No segment snapshot yet: the nightly job makes one (manage.py run_nightly).")]})
    on, first, second, errors = dates_asked(request.GET, available)
    sizes = sizes_on(on)
    total = sum(sizes.values())
    destinations, rows = matrix(segments.stored_migration(first, second))
    return render(request, "retention/segments.html", {
        "errors": errors, "on": on, "first": first, "second": second,
        "available": available[:120], "destinations": destinations, "rows": rows,
        "sizes": [{"name": name, "rule": rule, "customers": sizes.get(name, 0),
                   "share": round(100 * sizes.get(name, 0) / total, 1) if total else None}
                  for name, rule in spec.SEGMENTS],
        "chart": {"labels": [spec.SEGMENT_LABELS[n] for n in spec.SEGMENT_NAMES],
                  "values": [sizes.get(n, 0) for n in spec.SEGMENT_NAMES]},
        "total": total, "query": request.GET.urlencode(),
    })


@managers_only
def segment_csv(request):
    """?table=sizes (default) or moves, for the dates of the page."""
    available = segments.snapshot_dates()
    if not available:
        return csv_download("segments.csv", ["segment", "customers"], [])
    on, first, second, _errors = dates_asked(request.GET, available)
    if request.GET.get("table") == "moves":
        return csv_download(
            f"segment-moves-{first}-{second}.csv",
            ["from", "to", "customers", "revenue_at_stake", "first", "second"],
            ([m["from"], m["to"], m["customers"], m["revenue"], first, second]
             for m in segments.stored_migration(first, second)))
    sizes = sizes_on(on)
    return csv_download(f"segments-{on}.csv", ["segment", "customers", "rule", "on"],
                        ([name, sizes.get(name, 0), rule, on] for name, rule in spec.SEGMENTS))
