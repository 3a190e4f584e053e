"""import_orders PATH [--dry-run] [--skip-invalid]: load orders from a CSV file."""

import os
import sys

from django.core.management.base import BaseCommand, CommandError
from django.db import OperationalError
from tqdm import tqdm

from retention.safetext import printable
from retention.sales import csvfiles, ingest

RETRYABLE = {"40P01", "40001"}  # deadlock detected, serialization failure


class Command(BaseCommand):
    help = (
        "Import orders from a UTF-8 CSV file with a header row. Required columns: customer_id, "
        "ordered_at, amount; optional: order_id, email, name, status, items, coupon_code, "
        "currency. Importing the same file twice changes nothing. By default nothing is "
        "written when any row is invalid."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="CSV file, or - for standard input")
        parser.add_argument(
            "--dry-run", action="store_true", help="Check and count, but write nothing."
        )
        parser.add_argument(
            "--skip-invalid",
            action="store_true",
            help="Import the valid rows even when some rows are invalid (each is still reported).",
        )

    def handle(self, *args, path, dry_run, skip_invalid, **options):
        if path == "-":
            raw, size = sys.stdin.buffer, None
        else:
            try:
                raw, size = open(path, "rb"), os.path.getsize(path)  # noqa: SIM115
            except OSError as exc:
                raise CommandError(f"cannot open {path}: {exc.strerror}") from None
        bar = tqdm(
            total=size, unit="B", unit_scale=True, desc="Importing", file=sys.stderr,
            disable=None if options["verbosity"] else True, leave=False,
        )
        header: list[str] = []

        def rows():
            position = 0
            for count, row in enumerate(csvfiles.read_orders(raw, header_out=header), 1):
                if count % 10000 == 0 and size:
                    now = raw.tell()
                    bar.update(now - position)
                    position = now
                yield row

        def report(error):
            bar.clear()
            self.stderr.write(printable(str(error)))  # the row's text is the file's, not ours

        try:
            result = ingest.import_rows(
                rows(), skip_invalid=skip_invalid, dry_run=dry_run, on_error=report,
                on_warning=report,
            )
        except csvfiles.CsvFileError as exc:
            raise CommandError(printable(f"{path}: {exc}. Nothing was written.")) from None
        except OperationalError as exc:
            if "database is locked" in str(exc):
                # SQLite: another writer (an import, the nightly job) held the database
                # longer than the 30 s the settings wait for it.
                raise CommandError(
                    "The database stayed busy with another writer (an import, the nightly job) "
                    "for longer than an import waits (30 seconds). Nothing was written; run it "
                    "again when the other one has finished."
                ) from None
            # PostgreSQL ends one of two imports that wait on each other's customers.
            if getattr(exc.__cause__, "sqlstate", None) not in RETRYABLE:
                raise
            raise CommandError(
                "Another import was changing the same customers at the same time, so this one "
                "was stopped. Nothing was written; run it again."
            ) from None
        finally:
            bar.close()
            raw.close()

        if unknown := csvfiles.unknown_columns(header):
            self.stderr.write(printable(f"note: ignored unknown column(s): {', '.join(unknown)}"))
        refused = result.invalid and not skip_invalid
        if refused:  # nothing was merged: say how the rows divide, which adds up to those read
            self.stdout.write(f"rows read: {result.read}, valid: {result.read - result.invalid}, "
                              f"invalid: {result.invalid}")
        else:
            self.stdout.write(
                f"rows read: {result.read}, created: {result.created}, updated: {result.updated}, "
                f"unchanged: {result.unchanged}, invalid: {result.invalid}"
                + (f" (customers created: {result.customers_created})" if result.written else "")
            )
        if result.warnings:
            self.stdout.write(f"warnings: {result.warnings} (above)")
        if options["verbosity"] >= 2:
            for phase, seconds in result.timings.items():
                self.stdout.write(f"  {phase}: {seconds:.2f} s")
        if dry_run:  # said first, so that it is said whatever the rows were
            self.stdout.write("Dry run: nothing was written.")
        if result.invalid and not skip_invalid:
            raise CommandError(
                f"{result.invalid} invalid row{'s' if result.invalid != 1 else ''}; nothing was "
                "written. Fix the rows above, or use --skip-invalid to import the valid rows."
            )
