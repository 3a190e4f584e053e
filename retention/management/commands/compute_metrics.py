"""compute_metrics --start YYYY-MM-DD --end YYYY-MM-DD [...] [--json]: the period metrics."""

import json
from datetime import date

from django.core.management.base import BaseCommand, CommandError

from retention.figures import metrics, snapshots
from retention.money import as_json
from retention.sales.models import CUSTOMER_TYPES


class Command(BaseCommand):
    help = (
        "Compute the period metrics of the metric spec for [start, end] (dates in TIME_ZONE, both "
        "included), for all customers or a subset. --json prints one object with every key."
    )

    def add_arguments(self, parser):
        parser.add_argument("--start", required=True, help="First day, YYYY-MM-DD.")
        parser.add_argument("--end", required=True, help="Last day, YYYY-MM-DD.")
        parser.add_argument("--window-days", type=int,
                            help="Activity window W (default RETENTION_ACTIVITY_WINDOW_DAYS).")
        parser.add_argument("--new-offering-window-days", type=int,
                            help="New-offering window V (default RETENTION_NEW_OFFERING_WINDOW_DAYS).")
        parser.add_argument("--source", default="", help="Only customers of this acquisition source.")
        parser.add_argument("--customer-type", default="",
                            help=f"Only customers of this type: {', '.join(CUSTOMER_TYPES)}.")
        parser.add_argument("--category", default="",
                            help="Only customers who bought a course of this category.")
        parser.add_argument("--segment", default="",
                            help="Only customers of this segment on the latest snapshot on or "
                            "before --start.")
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")
        parser.add_argument("--save", action="store_true", help="Store the figures as a snapshot.")

    def handle(self, *args, **options):
        start, end = (_date(options[name], name) for name in ("start", "end"))
        subset = metrics.Subset(source=options["source"], customer_type=options["customer_type"],
                                category=options["category"], segment=options["segment"])
        windows = {"window_days": options["window_days"],
                   "new_offering_window_days": options["new_offering_window_days"]}
        try:
            if options["save"]:
                snapshot = snapshots.save(start, end, subset=subset, **windows)
                figures = snapshot.figures
                self.stderr.write(f"Saved as {snapshot.grain} snapshot {snapshot.pk}.")
            else:
                figures = as_json(metrics.compute(start, end, subset=subset, **windows))
        except metrics.InvalidPeriod as exc:
            raise CommandError(f"{exc}.") from None
        if options["json"]:
            self.stdout.write(json.dumps(figures, indent=2))
            return
        period = figures.pop("period")
        self.stdout.write(
            f"{period['start']} to {period['end']} (previous: {period['previous_start']} to "
            f"{period['previous_end']}), window {period['window_days']} days"
            + (f", subset {period['subset']}" if period["subset"] else "")
        )
        width = max(map(len, figures))
        for key, value in figures.items():
            self.stdout.write(f"  {key:<{width}}  {'—' if value is None else value}")


def _date(text: str, name: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"--{name} {text!r} is not a date (use YYYY-MM-DD).") from None
