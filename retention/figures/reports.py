"""Stored reports: the tables behind the managers' pages, computed once and read after.

A report (a cohort table, the segment sizes of a date, the moves between two dates, a
price update's effect) is computed by its own module; `cached` stores the result as a
StoredReport under its kind and parameters and returns the stored copy while it is
current, that is while nothing dated on or before `depends_until` has been written
since it was computed (retention.sales.changes). The nightly job computes the pages'
default reports, so that a manager's first view only reads.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from django.db import transaction
from django.utils import timezone

from retention.figures.models import StoredReport
from retention.money import as_json
from retention.sales import changes
from retention.sales.models import Customer


def cached(kind: str, key: str, *, depends_until: date, compute: Callable[[], dict],
           cache: dict | None = None, refresh: bool = False) -> dict:
    """The stored report `kind`/`key` if current, else `compute()`, stored and returned.

    `refresh` computes it again whatever is stored (the nightly job). Decimals and
    dates in the result are stored as JSON numbers and strings (`retention.money.as_json`), so callers get back what a reader of the stored row gets.
    """
    if not refresh:
        row = StoredReport.objects.filter(kind=kind, key=key).first()
        if row is not None and row.depends_until >= depends_until and changes.unchanged_through(
                row.depends_until, row.computed_at, cache=cache):
            return row.data
    began = timezone.now()
    data = as_json(compute())
    with transaction.atomic():
        StoredReport.objects.update_or_create(
            kind=kind, key=key,
            defaults={"depends_until": depends_until, "data": data, "computed_at": began},
        )
    return data


def acquisition_sources(*, refresh: bool = False) -> list[str]:
    """The customers' acquisition sources, for the pages' pickers, kept as a stored report.

    A DISTINCT over every customer costs more than the rest of a page (150 ms at 1M
    customers), so the list is stored and renewed by the nightly job: a new source
    appears in the picker the next day (a figure for it can be asked for at once).
    """
    row = None if refresh else StoredReport.objects.filter(kind="pickers", key="sources").first()
    if row is not None:
        return row.data["sources"]
    sources = sorted(Customer.objects.exclude(acquisition_source="").order_by()
                     .values_list("acquisition_source", flat=True).distinct())
    StoredReport.objects.update_or_create(
        kind="pickers", key="sources",
        defaults={"depends_until": date.max, "data": {"sources": sources},
                  "computed_at": timezone.now()})
    return sources
