"""run_nightly [--date YYYY-MM-DD] [--full]: run the nightly pipeline once."""

from datetime import date

from django.core.management.base import BaseCommand, CommandError

from retention import nightly, periods
from retention.safetext import printable


class Command(BaseCommand):
    help = (
        "Run the nightly pipeline once, the same code the schedule runs, for the night after "
        "--date (default: yesterday, the last complete day)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--date", help="The day whose night to run, YYYY-MM-DD.")
        parser.add_argument("--full", action="store_true",
                            help="Check every customer's summary, not only those with changes.")

    def handle(self, *args, **options):
        try:
            night = date.fromisoformat(options["date"]) if options["date"] else periods.last_complete_day()
        except ValueError:
            raise CommandError(f"--date {options['date']!r} is not a date (use YYYY-MM-DD).") from None
        for name, outcome, seconds in nightly.run(night, full=options["full"]):
            self.stdout.write(printable(f"{name}: {outcome} ({seconds:.1f} s)"))
