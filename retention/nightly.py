"""The nightly pipeline: the steps the schedule runs once a day, in order.

`run(night)` is what both the Celery beat entry (`retention.tasks.run_nightly`)
and `manage.py run_nightly` call, for the night after the day `night` (by
default yesterday, the last complete day). Each run is recorded as a
NightlyRun. Its cost follows the data that changed since the previous run, not
all history:

1. customer summaries: refresh the customers whose orders changed since the
   previous run (every write path keeps them right already; this is the safety
   net), or every customer with `full=True`;
2. segments: every customer's RFM scores and segment on `night`;
3. snapshots: the day's, the month-to-date's and the quarter-to-date's metrics;
4. late data: stored snapshots of periods ending on or after the earliest order
   changed since the previous run (a late or refunded order) are recomputed;
5. alerts: each alert rule is checked and managers are emailed, once per alert.

Running a night twice gives the same snapshots.
"""

import logging
from datetime import date, timedelta

from django.db.models import Min
from django.utils import timezone

from retention import alerts, segments, snapshots, summaries
from retention.models import Customer, NightlyRun, Order

log = logging.getLogger(__name__)


def default_night() -> date:
    return timezone.localdate() - timedelta(days=1)


def run(night: date, *, full: bool = False) -> list[tuple[str, str]]:
    """Run every step for `night`; return (step, outcome) pairs."""
    previous = NightlyRun.objects.filter(finished_at__isnull=False).order_by("-started_at").first()
    record = NightlyRun.objects.create(night=night, started_at=timezone.now())
    # Orders written since the previous run began (a run racing a write sees it next time).
    changed = Order.objects.all() if previous is None else Order.objects.filter(
        updated_at__gte=previous.started_at
    )
    outcomes = []

    if full or previous is None:
        corrected = summaries.refresh()
        outcomes.append(("customer summaries",
                         f"{Customer.objects.count()} customers checked, {corrected} corrected"))
    else:
        customers = Customer.objects.filter(pk__in=changed.values("customer"))
        corrected = summaries.refresh(customers)
        outcomes.append(("customer summaries",
                         f"customers with changed orders checked, {corrected} corrected"))

    sizes = segments.snapshot(night)
    outcomes.append(("segments", ", ".join(f"{name} {n}" for name, n in sizes.items() if n)
                     or "no customer has ordered yet"))

    made = snapshots.save_night(night)
    outcomes.append(("snapshots", ", ".join(f"{s.grain} {s.start}..{s.end}" for s in made)))

    earliest = changed.aggregate(first=Min("ordered_at"))["first"]
    if earliest is not None:
        day = timezone.localtime(earliest).date()
        count = snapshots.correct_after(day, skip={snapshot.pk for snapshot in made})
        outcomes.append(("late data", f"orders changed back to {day}: {count} snapshots recomputed"))
    else:
        outcomes.append(("late data", "no order changed"))

    raised = alerts.check(night)
    outcomes.append(("alerts", ", ".join(str(alert) for alert in raised) or "none raised"))

    record.outcomes = outcomes
    record.finished_at = timezone.now()
    record.save(update_fields=["outcomes", "finished_at"])
    for name, outcome in outcomes:
        log.info("nightly %s: %s: %s", night, name, outcome)
    return outcomes
