"""Orders in: one validation and one merge, shared by `import_orders` and the API.

A row (a CSV line or an API object) is checked by `retention.sales.validation` and
the valid ones are written by `retention.sales.merge`, in one transaction, so a
failure or an invalid row (unless skipping was asked for) leaves the database as it
was. Running the same input twice has the effect of running it once: orders are
keyed by the platform's order id, or by `validation.derived_key` for rows without
one. The change log (retention.sales.changes) records the earliest day written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django.db import transaction
from django.db.models.expressions import RawSQL
from django.utils import timezone

from retention.sales import changes, signals
from retention.sales.merge import TOUCHED, Merge, MergeResult, timed
from retention.sales.models import Order
from retention.sales.validation import OrderValidator, RowError


def import_rows(
    rows: Iterable[tuple[int, dict[str, str] | RowError]],
    *,
    skip_invalid: bool = False,
    dry_run: bool = False,
    on_error: Callable[[RowError], None] = lambda error: None,
    on_warning: Callable[[RowError], None] = lambda warning: None,
    outcomes: bool = False,
    validator: OrderValidator | None = None,
) -> MergeResult:
    """Validate and merge (line, row) pairs; return what happened.

    Nothing is written when a row is invalid unless `skip_invalid`, nor when
    `dry_run` (the counts then say what would have happened). Each problem is
    passed to `on_error` as it is found, so a caller can stream them; a valid row with
    something worth saying (an order dated in the future) is passed to `on_warning`.
    """
    validator = validator or OrderValidator.for_current_catalogue()
    result = MergeResult()
    with transaction.atomic():
        merge = Merge()
        merge.create_stage()
        # On an exception the rollback removes the staging tables with everything
        # else; dropping them here would fail in an aborted PostgreSQL transaction.
        _stage_and_merge(merge, rows, validator, result, skip_invalid=skip_invalid,
                         dry_run=dry_run, on_error=on_error, on_warning=on_warning,
                         outcomes=outcomes)
        if not transaction.get_rollback():  # a rollback removes the tables already
            merge.drop()
        merge.cursor.close()
    return result


def _stage_and_merge(merge, rows, validator, result, *, skip_invalid, dry_run, on_error,
                     on_warning, outcomes) -> None:
    with timed(result, "read, validate and stage"), merge.loading() as add:
        for line, row in rows:
            result.read += 1
            if isinstance(row, RowError):  # the reader could not split this line into fields
                result.invalid += 1
                on_error(row)
                continue
            record, errors = validator.validate(row, line)
            if validator.warnings:
                for warning in validator.take_warnings():
                    result.warnings += 1
                    on_warning(warning)
            if errors:
                result.invalid += 1
                for error in errors:
                    on_error(error)
            else:
                add(record)
                if outcomes:
                    result.keys[line] = record.key
    with timed(result, "repeated keys"):
        duplicates, errors = merge.repeated_keys()
    result.unchanged += duplicates
    result.invalid += len(errors)
    for error in errors:
        on_error(error)
    if result.invalid and not skip_invalid:
        transaction.set_rollback(True)
        return
    merge.merge(result, outcomes=outcomes)
    if not dry_run:
        with timed(result, "constraint checks"):
            # Foreign keys are checked at commit (Django makes them deferred); check
            # them now so the time is counted and a violation names this import.
            if merge.vendor == "postgresql":
                merge.cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                merge.cursor.execute("SET CONSTRAINTS ALL DEFERRED")  # Django's default again
    if dry_run:
        result.written = False
        transaction.set_rollback(True)
        return
    if result.created or result.updated:
        with timed(result, "programs"):
            # The programs (loyalty's points) act on the orders written, in this transaction.
            signals.send_written(Order.objects.filter(
                external_id__in=RawSQL(f"SELECT order_key FROM {TOUCHED}", ())))
    if result.earliest_changed_at is not None:
        # Last, so that the change is recorded as close to the commit as can be.
        changes.record(timezone.localtime(result.earliest_changed_at).date(), source="import")
