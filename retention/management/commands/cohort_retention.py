"""cohort_retention --start YYYY-MM-DD --end YYYY-MM-DD [--json]: monthly cohorts."""

import json
from datetime import date

from django.core.management.base import BaseCommand, CommandError

from retention.figures import cohorts, metrics
from retention.money import as_json


class Command(BaseCommand):
    help = (
        "Monthly cohorts of first paid orders in the months overlapping [start, end], with the "
        "share of each cohort buying again in each later month up to end (the as-of date), and "
        "the cohort's revenue in each month."
    )

    def add_arguments(self, parser):
        parser.add_argument("--start", required=True, help="First day, YYYY-MM-DD.")
        parser.add_argument("--end", required=True, help="Last day and as-of date, YYYY-MM-DD.")
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")

    def handle(self, *args, **options):
        try:
            start, end = (date.fromisoformat(options[name]) for name in ("start", "end"))
        except ValueError as exc:
            raise CommandError(f"{exc}; use YYYY-MM-DD.") from None
        try:
            result = cohorts.table(start, end)
        except metrics.InvalidPeriod as exc:
            raise CommandError(f"{exc}.") from None
        if options["json"]:
            self.stdout.write(json.dumps(as_json(result), indent=2))
            return
        self.stdout.write(f"Cohort retention (% of the cohort buying in month +k), as of {result['as_of']}")
        for row in result["cohorts"]:
            cells = " ".join("    —" if value is None else f"{value:5.1f}" for value in row["retention"])
            self.stdout.write(f"  {row['cohort']}  {row['size']:>6}  {cells}")
