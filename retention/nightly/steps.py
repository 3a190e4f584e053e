"""Retention's own steps of the nightly pipeline, in their order (retention/apps.py registers
them with `nightly.register_step`, as the programs register theirs). Each reads what it
needs of `Night` and returns what it did, in words:

10. customer summaries: refresh the customers whose orders changed since the
    previous run (every write path keeps them right already; this is the safety
    net), or every customer with `full=True`;
20. segments: every customer's RFM scores and segment on the night; daily
    snapshots older than RETENTION_SEGMENT_KEEP_DAYS are deleted, except those of
    the last day of a month, which are kept for good;
30. predictions: the predicted-value models fitted on the orders up to the night and
    every customer's predictions stored (retention/value/predictions.py); daily rows are
    kept RETENTION_PREDICTION_KEEP_DAYS days, month-end ones for good;
40. at-risk: the customers at risk scored from them (retention/value/atrisk.py); daily
    lists are kept RETENTION_AT_RISK_KEEP_DAYS days, month-end ones for good;
50. snapshots: the day's, the month-to-date's and the quarter-to-date's metrics,
    for all customers and for every subset a manager has looked at this quarter;
60. late data: from the change log (retention.sales.changes), the earliest day that
    writes since the previous run touched; stored day, month and quarter
    snapshots ending on or after it are recomputed, custom periods and stored
    reports ending on or after it are dropped (the pages compute them again when
    asked), and kept segment snapshots of the last year on or after it are redone;
70. pages: the figures and tables the managers' pages show first are computed
    and stored, so that a manager's first view only reads (with the at-risk
    back-tests and the month's holdout validation, each computed once);
80. alerts: each alert rule is checked and managers are emailed, once per alert;
90. outbox: the email sweep (also on the beat schedule every minute) and the
    deletion of messages older than RETENTION_OUTBOX_KEEP_DAYS;
100. change log: rows older than the previous run are deleted (their effects
    were dealt with in the late-data step of that run or this one).

Running a night twice gives the same snapshots and segments.
"""

from __future__ import annotations

from datetime import date, timedelta

from django.conf import settings
from django.db.models import Min

from retention import periods
from retention.figures import alerts, cohorts, price_update, reports, segments, snapshots, targets
from retention.figures.models import MetricSnapshot, StoredReport, Target
from retention.mail import outbox
from retention.nightly.pipeline import Night, Step
from retention.sales import changes, summaries
from retention.sales.models import Customer, DataChange, Order
from retention.value import atrisk, predictions
from retention.value.models import ClvFit

LATE_SEGMENTS_DAYS = 366  # late data redoes kept segment snapshots of the last year only


def summaries_step(night: Night) -> str:
    previous = night.previous
    if night.full or previous is None:
        corrected = summaries.refresh()
        return f"{Customer.objects.count()} customers checked, {corrected} corrected"
    # Orders written since the previous run began (a run racing a write sees it next time).
    changed = Order.objects.filter(updated_at__gte=previous.started_at)
    corrected = summaries.refresh(Customer.objects.filter(pk__in=changed.values("customer")))
    return f"customers with changed orders checked, {corrected} corrected"


def segments_step(night: Night) -> str:
    sizes = segments.snapshot(night.day)
    dropped = segments.prune(keep_days=settings.RETENTION_SEGMENT_KEEP_DAYS, today=night.day)
    shown = ", ".join(f"{name} {n}" for name, n in sizes.items() if n)
    return (shown or "no customer has ordered yet") + (
        f"; {dropped} old daily snapshot{'s' if dropped != 1 else ''} deleted" if dropped else "")


def predictions_step(night: Night) -> str:
    # The snapshots step comes after and reads these predictions: no change to log.
    fit = predictions.fit(night.day, purpose=ClvFit.Purpose.NIGHTLY, store=True,
                          log_change=False)
    dropped = predictions.prune(keep_days=settings.RETENTION_PREDICTION_KEEP_DAYS, today=night.day)
    health = "models" if fit.uses_models else "simple rule: " + "; ".join(fit.fallback_reasons)
    return (f"{fit.customers} customers predicted with {health}"
            + (f"; {dropped} old days deleted" if dropped else ""))


def at_risk_step(night: Night) -> str:
    found = atrisk.score(night.day)
    atrisk.prune(keep_days=settings.RETENTION_AT_RISK_KEEP_DAYS, today=night.day)
    return f"{found} customers at risk"


def snapshots_step(night: Night) -> str:
    """The night's day, month and quarter to date, for everyone and the subsets looked at
    (left in `night.shared["snapshots"]` for the late-data step, which need not redo them)."""
    made: list[MetricSnapshot] = night.shared.setdefault("snapshots", [])
    quarter_start = periods.quarter_start(night.day)
    looked_at = (MetricSnapshot.objects.filter(end__gte=quarter_start).exclude(subset="")
                 .order_by().values_list("subset", flat=True).distinct())
    subsets = [snapshots.subset_from_key(key) for key in ["", *looked_at]]
    for subset in subsets:
        made.extend(snapshots.save_night(night.day, subset=subset))
    return (", ".join(f"{s.grain} {s.start}..{s.end}" for s in made[:3])
            + (f"; the same for {len(subsets) - 1} subsets" if len(subsets) > 1 else ""))


def late_data_step(night: Night) -> str:
    previous, made = night.previous, night.shared.get("snapshots", [])
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
        if day <= on < night.day and on > night.day - timedelta(days=LATE_SEGMENTS_DAYS):
            segments.snapshot(on)
            redone += 1
    return (f"data changed back to {day}: {recomputed} snapshots recomputed, {dropped} stored "
            f"reports dropped, {redone} segment snapshots redone")


def pages_step(night: Night) -> str:
    return store_first_views(night.day)


def store_first_views(night: date) -> str:
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


def alerts_step(night: Night) -> str:
    return ", ".join(str(alert) for alert in alerts.check(night.day)) or "none raised"


def outbox_step(night: Night) -> str:
    """The sweep the beat schedule runs each minute (for installations without beat), and
    the cleanup of old messages."""
    swept = outbox.sweep()
    sent = sum(outbox.drain(batch=500).values())
    deleted = outbox.cleanup()
    return (f"{sent} due sent or settled, {swept['requeued']} requeued, {swept['failed']} "
            f"marked delivery unknown, {deleted} old messages deleted")


def change_log_step(night: Night) -> str:
    previous = night.previous
    if previous is None:
        return "kept"
    deleted = DataChange.objects.filter(
        recorded_at__lt=previous.started_at - changes.COMMIT_MARGIN).delete()[0]
    return f"{deleted} old rows deleted"


# The gaps between orders leave room for the programs' steps (loyalty's tiers and expiry
# before the snapshots, survey and campaign sends before the outbox).
STEPS = [
    Step(10, "customer summaries", summaries_step),
    Step(20, "segments", segments_step),
    Step(30, "predictions", predictions_step),
    Step(40, "at-risk", at_risk_step),
    Step(50, "snapshots", snapshots_step),
    Step(60, "late data", late_data_step),
    Step(70, "pages", pages_step),
    Step(80, "alerts", alerts_step),
    Step(90, "outbox", outbox_step),
    Step(100, "change log", change_log_step),
]
