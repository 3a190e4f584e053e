"""The nightly pipeline: the steps the schedule runs once a day, in order.

`run(night)` is what both the Celery beat entry (`retention.tasks.run_nightly`)
and `manage.py run_nightly` call, for the night after the day `night` (by
default yesterday, the last complete day). Each run is recorded as a
NightlyRun, with what each step did and how long it took. Its cost follows the
data that changed since the previous run, not all history:

1. customer summaries: refresh the customers whose orders changed since the
   previous run (every write path keeps them right already; this is the safety
   net), or every customer with `full=True`;
2. segments: every customer's RFM scores and segment on `night`; daily
   snapshots older than RETENTION_SEGMENT_KEEP_DAYS are deleted, except those of
   the last day of a month, which are kept for good;
3. predictions: the predicted-value models fitted on the orders up to `night` and
   every customer's predictions stored (retention/value/predictions.py), then the customers
   at risk scored from them (retention/value/atrisk.py); both keep daily rows for
   RETENTION_SEGMENT_KEEP_DAYS days and month-end ones for good;
4. snapshots: the day's, the month-to-date's and the quarter-to-date's metrics,
   for all customers and for every subset a manager has looked at this quarter;
5. late data: from the change log (retention.sales.changes), the earliest day that
   writes since the previous run touched; stored day, month and quarter
   snapshots ending on or after it are recomputed, custom periods and stored
   reports ending on or after it are dropped (the pages compute them again when
   asked), and kept segment snapshots of the last year on or after it are redone;
6. pages: the figures and tables the managers' pages show first are computed
   and stored, so that a manager's first view only reads (with the at-risk
   back-tests and the month's holdout validation, each computed once);
7. alerts: each alert rule is checked and managers are emailed, once per alert;
8. outbox: the email sweep (also on the beat schedule every minute) and the
   deletion of messages older than RETENTION_OUTBOX_KEEP_DAYS;
9. change log: rows older than the previous run are deleted (their effects
   were dealt with in step 5 of that run or this one).

Running a night twice gives the same snapshots and segments.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import date, timedelta

from django.conf import settings
from django.db.models import Min
from django.utils import timezone

from retention import periods
from retention.value import atrisk, predictions
from retention.figures import alerts, cohorts, price_update, reports, segments, snapshots, targets
from retention.mail import outbox
from retention.sales import changes, summaries
from retention.value.models import ClvFit
from retention.nightly.models import NightlyRun
from retention.figures.models import MetricSnapshot, StoredReport, Target
from retention.sales.models import Customer, DataChange, Order

log = logging.getLogger(__name__)
LATE_SEGMENTS_DAYS = 366  # late data redoes kept segment snapshots of the last year only


def run(night: date, *, full: bool = False) -> list[tuple[str, str, float]]:
    """Run every step for `night`; return (step, outcome, seconds) triples."""
    previous = NightlyRun.objects.filter(finished_at__isnull=False).order_by("-started_at").first()
    record = NightlyRun.objects.create(night=night, started_at=timezone.now())
    outcomes: list[tuple[str, str, float]] = []

    def step(name: str, work: Callable[[], str]) -> None:
        began = time.perf_counter()
        outcome = work()
        seconds = round(time.perf_counter() - began, 3)
        outcomes.append((name, outcome, seconds))
        log.info("nightly %s: %s: %s (%.1f s)", night, name, outcome, seconds)

    step("customer summaries", lambda: _summaries(previous, full=full))
    made: list[MetricSnapshot] = []
    step("segments", lambda: _segments(night))
    step("predictions", lambda: _predictions(night))
    step("at-risk", lambda: _at_risk(night))
    step("snapshots", lambda: _snapshots(night, made))
    step("late data", lambda: _late_data(previous, night, made))
    step("pages", lambda: _pages(night))
    step("alerts", lambda: ", ".join(str(alert) for alert in alerts.check(night)) or "none raised")
    step("outbox", _outbox)
    step("change log", lambda: _prune_changes(previous))

    record.outcomes = outcomes
    record.finished_at = timezone.now()
    record.save(update_fields=["outcomes", "finished_at"])
    return outcomes


def _summaries(previous: NightlyRun | None, *, full: bool) -> str:
    if full or previous is None:
        corrected = summaries.refresh()
        return f"{Customer.objects.count()} customers checked, {corrected} corrected"
    # Orders written since the previous run began (a run racing a write sees it next time).
    changed = Order.objects.filter(updated_at__gte=previous.started_at)
    corrected = summaries.refresh(Customer.objects.filter(pk__in=changed.values("customer")))
    return f"customers with changed orders checked, {corrected} corrected"


def _segments(night: date) -> str:
    sizes = segments.snapshot(night)
    dropped = segments.prune(keep_days=settings.RETENTION_SEGMENT_KEEP_DAYS, today=night)
    shown = ", ".join(f"{name} {n}" for name, n in sizes.items() if n)
    return (shown or "no customer has ordered yet") + (
        f"; {dropped} old daily snapshot{'s' if dropped != 1 else ''} deleted" if dropped else "")


def _predictions(night: date) -> str:
    # The snapshots step comes after and reads these predictions: no change to log.
    fit = predictions.fit(night, purpose=ClvFit.Purpose.NIGHTLY, store=True, log_change=False)
    dropped = predictions.prune(keep_days=settings.RETENTION_SEGMENT_KEEP_DAYS, today=night)
    health = "models" if fit.uses_models else "simple rule: " + "; ".join(fit.fallback_reasons)
    return (f"{fit.customers} customers predicted with {health}"
            + (f"; {dropped} old days deleted" if dropped else ""))


def _at_risk(night: date) -> str:
    found = atrisk.score(night)
    atrisk.prune(keep_days=settings.RETENTION_SEGMENT_KEEP_DAYS, today=night)
    return f"{found} customers at risk"


def _snapshots(night: date, made: list[MetricSnapshot]) -> str:
    """The night's day, month and quarter to date, for everyone and the subsets looked at."""
    quarter_start = periods.quarter_start(night)
    looked_at = (MetricSnapshot.objects.filter(end__gte=quarter_start).exclude(subset="")
                 .order_by().values_list("subset", flat=True).distinct())
    subsets = [snapshots.subset_from_key(key) for key in ["", *looked_at]]
    for subset in subsets:
        made.extend(snapshots.save_night(night, subset=subset))
    return (", ".join(f"{s.grain} {s.start}..{s.end}" for s in made[:3])
            + (f"; the same for {len(subsets) - 1} subsets" if len(subsets) > 1 else ""))


def _late_data(previous: NightlyRun | None, night: date, made: list[MetricSnapshot]) -> str:
    if previous is None:
        return "first run: nothing stored before it"
    since = previous.started_at - changes.COMMIT_MARGIN
    day = DataChange.objects.filter(recorded_at__gte=since).aggregate(
        first=Min("first_day"))["first"]
    if day is None:
        return "no data changed"
    recomputed = snapshots.correct_after(day, skip={snapshot.pk for snapshot in made})
    dropped = StoredReport.objects.filter(depends_until__gte=day).exclude(
        kind=segments.SIZES_REPORT).delete()[0]
    redone = 0
    for on in segments.snapshot_dates():
        if day <= on < night and on > night - timedelta(days=LATE_SEGMENTS_DAYS):
            segments.snapshot(on)
            redone += 1
    return (f"data changed back to {day}: {recomputed} snapshots recomputed, {dropped} stored "
            f"reports dropped, {redone} segment snapshots redone")


def _pages(night: date) -> str:
    """Store what the managers' pages show first (the figures to `night`)."""
    cache: dict = {}
    shown = snapshots.page_periods(night)
    snapshots.figures_many(shown, cache=cache)
    year, quarter = periods.quarter_of(night)
    for target in Target.objects.filter(year=year, quarter=quarter):
        targets.evaluate(target, today=night, figures=targets.stored_figures(target, cache))
    done = [f"{len(shown)} periods"]
    reports.acquisition_sources(refresh=True)
    cohorts.stored_table(*cohorts.default_range(night))
    done.append("cohorts")
    available = segments.snapshot_dates()
    if available:
        segments.stored_migration(*segments.default_pair(available))
        done.append("segment moves")
    if atrisk.stored_backtests(night):
        done.append("at-risk back-tests")
    if predictions.stored_holdout(night) is not None:
        done.append("holdout validation")
    try:
        price_update.stored_comparison(None, None, as_of=night)
        done.append("price update")
    except price_update.NoPriceUpdate:
        pass
    return ", ".join(done)


def _outbox() -> str:
    """The sweep the beat schedule runs each minute (for installations without beat), and
    the cleanup of old messages."""
    swept = outbox.sweep()
    sent = sum(outbox.drain(batch=500).values())
    deleted = outbox.cleanup()
    return (f"{sent} due sent or settled, {swept['requeued']} requeued, {swept['failed']} "
            f"marked delivery unknown, {deleted} old messages deleted")


def _prune_changes(previous: NightlyRun | None) -> str:
    if previous is None:
        return "kept"
    deleted = DataChange.objects.filter(
        recorded_at__lt=previous.started_at - changes.COMMIT_MARGIN).delete()[0]
    return f"{deleted} old rows deleted"
