"""Stored metric snapshots: what the nightly job and `compute_metrics --save` write.

`save` upserts one period's figures (one row per day, month or quarter and
subset; the row of a month or quarter in progress is updated each night), so
running a night twice leaves the same rows. `correct_after` recomputes the
stored snapshots a changed order can affect: every period ending on or after
the order's date (its activity windows and "first order ever" checks reach
forward, never back).
"""

from __future__ import annotations

from datetime import date, timedelta

from django.db import transaction
from django.utils import timezone

from retention import metrics
from retention.models import MetricSnapshot


def grain_of(start: date, end: date) -> str:
    """Day, a calendar month, a calendar quarter, or custom."""
    if start == end:
        return MetricSnapshot.Grain.DAY
    if start.day == 1 and (end + timedelta(days=1)).day == 1:
        months = (end.year - start.year) * 12 + end.month - start.month + 1
        if months == 1:
            return MetricSnapshot.Grain.MONTH
        if months == 3 and start.month % 3 == 1:
            return MetricSnapshot.Grain.QUARTER
    return MetricSnapshot.Grain.CUSTOM


def subset_key(subset: metrics.Subset) -> str:
    """A stable text for a subset, e.g. "customer_type=government;source=partner"."""
    return ";".join(f"{name}={value}" for name, value in sorted(subset.describe().items()))


def subset_from_key(key: str) -> metrics.Subset:
    return metrics.Subset(**dict(part.split("=", 1) for part in key.split(";") if part))


def save(start: date, end: date, *, grain: str | None = None, subset: metrics.Subset | None = None,
         window_days: int | None = None, new_offering_window_days: int | None = None
         ) -> MetricSnapshot:
    """Compute the period's figures and store them, replacing the period's earlier row."""
    subset = subset or metrics.Subset()
    figures = metrics.as_json(metrics.compute(
        start, end, window_days=window_days, new_offering_window_days=new_offering_window_days,
        subset=subset,
    ))
    grain = grain or grain_of(start, end)
    key = {
        "grain": grain, "start": start, "subset": subset_key(subset),
        "window_days": figures["period"]["window_days"],
        "new_offering_window_days": figures["period"]["new_offering_window_days"],
    }
    if grain == MetricSnapshot.Grain.CUSTOM:
        key["end"] = end
    with transaction.atomic():
        snapshot, _ = MetricSnapshot.objects.update_or_create(
            **key, defaults={"end": end, "figures": figures, "computed_at": timezone.now()}
        )
    return snapshot


def save_night(night: date) -> list[MetricSnapshot]:
    """The day's, the month-to-date's and the quarter-to-date's figures for `night`."""
    month_start = night.replace(day=1)
    quarter_start = date(night.year, 3 * ((night.month - 1) // 3) + 1, 1)
    return [
        save(night, night, grain=MetricSnapshot.Grain.DAY),
        save(month_start, night, grain=MetricSnapshot.Grain.MONTH),
        save(quarter_start, night, grain=MetricSnapshot.Grain.QUARTER),
    ]


def correct_after(day: date, *, skip: set[int] = frozenset()) -> int:
    """Recompute every stored snapshot whose period ends on or after `day`; return how many."""
    corrected = 0
    stale = MetricSnapshot.objects.filter(end__gte=day).exclude(pk__in=skip).order_by("start")
    for snapshot in stale.iterator():
        save(snapshot.start, snapshot.end, grain=snapshot.grain,
             subset=subset_from_key(snapshot.subset), window_days=snapshot.window_days,
             new_offering_window_days=snapshot.new_offering_window_days)
        corrected += 1
    return corrected
