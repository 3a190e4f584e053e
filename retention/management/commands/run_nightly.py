"""run_nightly [--date YYYY-MM-DD]: run the nightly pipeline once."""

from datetime import date

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from retention import nightly


class Command(BaseCommand):
    help = "Run the nightly pipeline once, the same code the schedule runs."

    def add_arguments(self, parser):
        parser.add_argument("--date", help="The night to run, YYYY-MM-DD (default: today).")

    def handle(self, *args, **options):
        try:
            day = date.fromisoformat(options["date"]) if options["date"] else timezone.localdate()
        except ValueError:
            raise CommandError(f"--date {options['date']!r} is not a date (use YYYY-MM-DD).") from None
        for name, outcome in nightly.run(day):
            self.stdout.write(f"{name}: {outcome}")
