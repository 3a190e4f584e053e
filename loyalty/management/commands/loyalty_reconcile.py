"""loyalty_reconcile [--json]: every balance against its ledger, and the liability."""

import json

from django.core.management.base import BaseCommand

from loyalty import reconcile


class Command(BaseCommand):
    help = ("Check every account's balance against its ledger and every lot against its draws; "
            "value the points customers hold. Exits 1 when anything does not reconcile.")

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")

    def handle(self, *args, **options):
        report = reconcile.reconcile()
        if options["json"]:
            self.stdout.write(json.dumps(report))
        else:
            liability = report["liability"]
            self.stdout.write(
                f"{report['accounts']} accounts, {report['entries']} entries\n"
                f"mismatched accounts: {report['mismatched_accounts']}\n"
                f"negative lots: {report['negative_lots']}\n"
                f"inconsistent lots: {report['inconsistent_lots']}\n"
                f"liability: {liability['points']} points, worth {liability['value']}, of which "
                f"{liability['expected_breakage_points']} are expected never to be spent "
                f"({liability['breakage_rate']} % breakage)")
        if not reconcile.is_sound(report):
            self.stderr.write("The loyalty ledger does not reconcile.")
            raise SystemExit(1)
