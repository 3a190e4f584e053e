"""seed_demo [--seed N] [--as-of YYYY-MM-DD] [--customers N] [--if-empty | --replace]: demo data."""

from datetime import date, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from retention import demo


class Command(BaseCommand):
    help = (
        "Fill an empty database with realistic demo data: customers, 30 courses, 5 bundles, "
        "two years of orders ending at the as-of date with a price update about four months "
        "before it, memberships, enrolments and support tickets. The same --seed, --as-of and "
        "--customers give the same data."
    )

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=42, help="Random seed (default 42).")
        parser.add_argument(
            "--as-of",
            help="Last day of the history, YYYY-MM-DD (default: yesterday, so that nothing is "
            "dated in the future).",
        )
        parser.add_argument(
            "--customers", type=int, default=2000, help="Number of customers (default 2000)."
        )
        existing = parser.add_mutually_exclusive_group()
        existing.add_argument(
            "--if-empty", action="store_true",
            help="Do nothing, successfully, when customers or a catalogue exist already.",
        )
        existing.add_argument(
            "--replace", action="store_true",
            help="Delete the existing customers, catalogue, orders, memberships, enrolments "
            "and tickets first.",
        )

    def handle(self, *args, seed, as_of, customers, if_empty, replace, **options):
        try:
            # Yesterday: the history ends at the end of the as-of day, which for today
            # would put some orders and activity later than now.
            as_of = (date.fromisoformat(as_of) if as_of
                     else timezone.localdate() - timedelta(days=1))
        except ValueError:
            raise CommandError(f"--as-of {as_of!r} is not a date (use YYYY-MM-DD).") from None
        if customers < 1:
            raise CommandError("--customers must be at least 1.")
        if if_empty and demo.has_data():
            self.stdout.write("Data exists already: no demo data added.")
            return
        try:
            summary = demo.seed(seed=seed, as_of=as_of, customers=customers, replace=replace)
        except demo.DataExists as exc:
            raise CommandError(str(exc)) from None

        types, statuses = summary.customers_by_type, summary.orders_by_status
        orders = sum(statuses.values())
        self.stdout.write(
            "\n".join([
                f"Demo data (seed {summary.seed}, as of {summary.as_of}):",
                f"  customers: {sum(types.values())} ({types.get('individual', 0)} individuals, "
                f"{types.get('organisation', 0)} organisations: "
                + ", ".join(f"{n} {sector}" for sector, n in summary.sectors.items()) + ")",
                f"  catalogue: {summary.courses} courses, {summary.bundles} bundles",
                f"  orders: {orders} ("
                + ", ".join(f"{statuses.get(s, 0)} {s}" for s in ("paid", "refunded", "cancelled"))
                + ")",
                f"  price update: {timezone.localtime(summary.price_update_at):%Y-%m-%d %H:%M} "
                f"({summary.price_changes} prices changed)",
                f"  memberships: {summary.memberships} ({summary.memberships_cancelled} cancelled)",
                f"  enrolments: {summary.enrolments} ({summary.enrolments_completed} completed)",
                f"  support tickets: {summary.tickets} ({summary.complaints} complaints)",
            ])
        )
