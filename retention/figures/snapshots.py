"""Stored metric snapshots: what the nightly job, the pages and `compute_metrics --save` write.

`save` upserts one period's figures (one row per day, month or quarter and
subset; the row of a month or quarter in progress is updated each night), so
running a night twice leaves the same rows. `correct_after` recomputes the
stored snapshots a changed order can affect: every period ending on or after
the order's date (its activity windows and "first order ever" checks reach
forward, never back).

`figures` and `figures_many` are how pages read: the stored figures of a period
when they are current (nothing dated in the period was written since they were
computed, retention.sales.changes), otherwise computed now and stored, so the next
reader only reads.
"""

from __future__ import annotations

from datetime import date, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from retention.figures import metrics, registry
from retention.figures.models import MetricSnapshot
from retention.money import as_json
from retention.periods import Period, month_start, quarter_start
from retention.sales import changes


def grain_of(start: date, end: date) -> str:
    """Day; a calendar month or quarter, whole or to date; or custom.

    A month's row is keyed by its first day (its end moves on each night until the
    month is over), and so is a quarter's. A period within one month that starts on
    its first day is that month to date; one that starts on a quarter's first day and
    ends in a later month of the quarter is that quarter to date.
    """
    if start == end:
        return MetricSnapshot.Grain.DAY
    if start.day == 1 and end > start:
        if (end.year, end.month) == (start.year, start.month):
            return MetricSnapshot.Grain.MONTH
        months = (end.year - start.year) * 12 + end.month - start.month + 1
        if months <= 3 and start.month % 3 == 1:
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
    began = timezone.now()  # what the figures can have seen: writes before this moment
    figures = as_json(metrics.compute(
        start, end, window_days=window_days, new_offering_window_days=new_offering_window_days,
        subset=subset,
    ))
    grain = grain or grain_of(start, end)
    key = _key(grain, start, end, subset, figures["period"]["window_days"],
               figures["period"]["new_offering_window_days"])
    with transaction.atomic():
        snapshot, _ = MetricSnapshot.objects.update_or_create(
            **key, defaults={"end": end, "figures": figures, "computed_at": began}
        )
    return snapshot


def _key(grain: str, start: date, end: date, subset: metrics.Subset, window_days: int,
         new_offering_window_days: int) -> dict:
    """The unique key of a period's row (a custom period is keyed by its end too)."""
    key = {"grain": grain, "start": start, "subset": subset_key(subset),
           "window_days": window_days, "new_offering_window_days": new_offering_window_days}
    if grain == MetricSnapshot.Grain.CUSTOM:
        key["end"] = end
    return key


def figures(start: date, end: date, *, subset: metrics.Subset | None = None,
            window_days: int | None = None, new_offering_window_days: int | None = None,
            cache: dict | None = None) -> dict:
    """The period's figures (as `compute_metrics --json` prints them), stored or computed.

    Reads the stored row of the period when it is current: same end, same windows,
    and nothing dated on or before its end written since it was computed. Otherwise
    computes the figures and stores them. `cache` is one request's memory of the
    change look-ups (see retention.sales.changes.unchanged_through).
    """
    return figures_many([(start, end)], subset=subset, window_days=window_days,
                        new_offering_window_days=new_offering_window_days, cache=cache)[0]


def figures_many(periods: list[tuple[date, date]], *, subset: metrics.Subset | None = None,
                 window_days: int | None = None, new_offering_window_days: int | None = None,
                 cache: dict | None = None, unavailable_as_none: bool = False) -> list[dict]:
    """`figures` for several periods of one subset: their stored rows in one query.

    A period that cannot be counted (a segment before its first snapshot) raises
    InvalidPeriod, or with `unavailable_as_none` gives every figure as None ("no data"),
    as a trend reaching back before the data needs.
    """
    subset = subset or metrics.Subset()
    window_days = window_days or settings.RETENTION_ACTIVITY_WINDOW_DAYS
    if new_offering_window_days is None:
        new_offering_window_days = settings.RETENTION_NEW_OFFERING_WINDOW_DAYS
    keys = [_key(grain_of(start, end), start, end, subset, window_days,
                 new_offering_window_days) for start, end in periods]
    wanted = Q(pk__in=[])
    for key in keys:
        wanted |= Q(**key)
    stored = {}
    for row in MetricSnapshot.objects.filter(wanted):
        stored[row.grain, row.start, row.end] = row
    cache = {} if cache is None else cache
    changes.look_up([row.computed_at for row in stored.values()], cache)
    result = []
    # A row stored before an app registered more figures lacks their keys: computed again.
    expected = set(registry.keys())
    for (start, end), key in zip(periods, keys, strict=True):
        row = stored.get((key["grain"], start, end))
        if (row is None or not expected <= row.figures.keys()
                or not changes.unchanged_through(end, row.computed_at, cache=cache)):
            try:
                row = save(start, end, grain=key["grain"], subset=subset,
                           window_days=window_days,
                           new_offering_window_days=new_offering_window_days)
            except metrics.InvalidPeriod:
                if not unavailable_as_none:
                    raise
                result.append(dict.fromkeys(registry.keys()))
                continue
        result.append(row.figures)
    return result


TREND_LENGTHS = {"quarters": 8, "months": 12}


def trend_periods(as_of: date, grain: str) -> list[tuple[date, date]]:
    """The last 8 calendar quarters or 12 months, the one holding `as_of` running to it."""
    starts = [quarter_start(as_of) if grain == "quarters" else month_start(as_of)]
    for _ in range(TREND_LENGTHS[grain] - 1):
        before = starts[0] - timedelta(days=1)
        starts.insert(0, quarter_start(before) if grain == "quarters" else month_start(before))
    ends = [next_start - timedelta(days=1) for next_start in starts[1:]] + [as_of]
    return list(zip(starts, ends, strict=True))


def page_periods(as_of: date) -> list[tuple[date, date]]:
    """The periods the overview shows without being asked: this and last quarter and month
    (to `as_of`), the previous period of each, and both trends."""
    this_quarter, this_month = quarter_start(as_of), month_start(as_of)
    last_quarter_end = this_quarter - timedelta(days=1)
    last_month_end = this_month - timedelta(days=1)
    chosen = [(this_quarter, as_of), (quarter_start(last_quarter_end), last_quarter_end),
              (this_month, as_of), (month_start(last_month_end), last_month_end)]
    previous = [Period(*period).previous() for period in chosen]
    periods = [*chosen, *((p.start, p.end) for p in previous),
               *trend_periods(as_of, "quarters"), *trend_periods(as_of, "months")]
    return list(dict.fromkeys(periods))


def save_night(night: date, *, subset: metrics.Subset | None = None) -> list[MetricSnapshot]:
    """The day's, the month-to-date's and the quarter-to-date's figures for `night`."""
    first = month_start(night)
    return [
        save(night, night, grain=MetricSnapshot.Grain.DAY, subset=subset),
        save(first, night, grain=MetricSnapshot.Grain.MONTH, subset=subset),
        save(quarter_start(night), night, grain=MetricSnapshot.Grain.QUARTER, subset=subset),
    ]


def correct_after(day: date, *, skip: set[int] = frozenset()) -> int:
    """Bring up to date the stored snapshots whose period ends on or after `day`.

    Day, month and quarter snapshots are recomputed (they are the history the admin
    and the alerts read); custom periods are deleted, and computed again when a page
    asks for them. Returns how many were recomputed.
    """
    affected = MetricSnapshot.objects.filter(end__gte=day).exclude(pk__in=skip)
    affected.filter(grain=MetricSnapshot.Grain.CUSTOM).delete()
    corrected = 0
    for snapshot in affected.exclude(grain=MetricSnapshot.Grain.CUSTOM).order_by("start").iterator():
        save(snapshot.start, snapshot.end, grain=snapshot.grain,
             subset=subset_from_key(snapshot.subset), window_days=snapshot.window_days,
             new_offering_window_days=snapshot.new_offering_window_days)
        corrected += 1
    return corrected
