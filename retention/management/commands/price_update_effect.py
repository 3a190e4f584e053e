"""price_update_effect [--date YYYY-MM-DD] [--days N] [--json]: before and after a price update."""

from datetime import date

from django.core.management.base import BaseCommand, CommandError

from retention.figures import price_update
from retention.money import dumps


class Command(BaseCommand):
    help = (
        "Compare the main metrics over the same number of days before and after a price update "
        "(default: the latest), for all customers and for the buyers of the repriced offerings."
    )

    def add_arguments(self, parser):
        parser.add_argument("--date", help="The day prices changed, YYYY-MM-DD (default: the latest).")
        parser.add_argument("--days", type=int, help="Days on each side (default: since the update).")
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")

    def handle(self, *args, **options):
        try:
            on = date.fromisoformat(options["date"]) if options["date"] else None
        except ValueError:
            raise CommandError(f"--date {options['date']!r} is not a date (use YYYY-MM-DD).") from None
        if options["days"] is not None and options["days"] < 1:
            raise CommandError("--days must be at least 1.")
        try:
            result = price_update.compare(on, days=options["days"])
        except price_update.NoPriceUpdate as exc:
            raise CommandError(f"{exc}.") from None
        if options["json"]:
            self.stdout.write(dumps(result, indent=2))
            return
        self.stdout.write(f"Price update of {result['date']}: {len(result['changes'])} prices changed; "
                          f"{result['before']['start']}..{result['before']['end']} against "
                          f"{result['after']['start']}..{result['after']['end']}")
        for group in ("all", "buyers_of_repriced"):
            self.stdout.write(f"  {group}")
            for key, row in result[group].items():
                self.stdout.write(f"    {key:<30} {_show(row['before']):>12} → {_show(row['after']):>12}"
                                  f"  ({_show(row['change'], signed=True)})")


def _show(value, signed=False) -> str:
    if value is None:
        return "—"
    return f"{value:+}" if signed else str(value)
