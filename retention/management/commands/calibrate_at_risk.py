"""calibrate_at_risk [--date YYYY-MM-DD] [--json]: try the at-risk thresholds on history."""

import json
from datetime import date, timedelta

from django.core.management.base import BaseCommand, CommandError

from retention import periods
from retention.value import atrisk
from retention.value.models import CustomerPrediction


class Command(BaseCommand):
    help = (
        "Try each at-risk threshold (RETENTION_AT_RISK_ACTIVE_BELOW, _OVERDUE_FACTOR, "
        "_ABANDONED_DAYS) on a past day's stored predictions: how many customers each value "
        "names, how many of them bought nothing in the next 90 days, against the base rate, "
        "and the value to set. The default day is the latest with stored predictions 90 days "
        "or more back. Changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--date", help="A day with stored predictions, 90+ days back.")
        parser.add_argument("--json", action="store_true", help="Print the result as JSON.")

    def handle(self, *args, **options):
        latest = periods.last_complete_day() - timedelta(days=atrisk.BACKTEST_DAYS)
        if options["date"]:
            try:
                day = date.fromisoformat(options["date"])
            except ValueError:
                raise CommandError(f"--date {options['date']!r} is not a date (YYYY-MM-DD).") from None
            if day > latest:
                raise CommandError(f"--date {day} is less than 90 days back; use {latest} or before.")
        else:
            day = (CustomerPrediction.objects.filter(as_of__lte=latest).order_by("-as_of")
                   .values_list("as_of", flat=True).first())
        if day is None or not CustomerPrediction.objects.filter(as_of=day).exists():
            raise CommandError("No stored predictions 90 days or more back: the nightly job "
                               "keeps each month-end's; calibrate once one is old enough.")
        result = atrisk.calibrate(day)
        if options["json"]:
            self.stdout.write(json.dumps(result, indent=2))
            return
        self.stdout.write(f"Customers active on {result['as_of']}: {result['active']}; "
                          f"{result['base_rate']} % bought nothing in the next 90 days (base rate).")
        for code, found in result["reasons"].items():
            self.stdout.write(f"\n{code} ({found['setting']}, now {found['current']}):")
            for tried in found["tried"]:
                mark = "  <- use" if tried["value"] == found["best"] else ""
                precision = "—" if tried["precision"] is None else f"{tried['precision']} %"
                self.stdout.write(f"  {tried['value']:>6}: {tried['customers']:>7} named, "
                                  f"{precision:>7} bought nothing{mark}")
            if found["best"] is None:
                self.stdout.write("  no value does better than the base rate: this reason "
                                  "predicts nothing here (the at-risk page's default view "
                                  "passes over customers only it names).")
            else:
                self.stdout.write(f"  set {found['setting']}={found['best']}")
