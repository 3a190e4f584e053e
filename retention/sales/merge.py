"""Valid order records written in set-based SQL: staging, repeated keys, the merge.

`Merge` never saves row by row:

1. records stream into a temporary staging table (COPY on PostgreSQL, batched
   inserts on SQLite), one staging row per order line;
2. keys that repeat in the input are resolved in SQL: the first row wins, a
   later row with the same content is a duplicate (changes nothing) and a later
   row with different content is reported as invalid;
3. missing customers are inserted, then the orders that are new or whose
   fingerprint changed are upserted, their lines replaced, and the cached
   order summary of every customer involved is refreshed.

Use it inside one transaction (`retention.sales.ingest.import_rows` does), so that a
failure leaves the database as it was.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.conf import settings
from django.db import connection
from django.utils import timezone

from retention.sales import summaries
from retention.sales.models import Customer, Order, OrderLine
from retention.sales.validation import DERIVED_KEY_PREFIX, OrderRecord, RowError, format_cents


@dataclass
class MergeResult:
    read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    invalid: int = 0
    warnings: int = 0  # valid rows with a warning (dated in the future)
    customers_created: int = 0
    written: bool = False
    # When asked for (API calls): order key -> "created" | "updated" | "unchanged",
    # and line -> order key of each valid row.
    outcomes: dict[str, str] = field(default_factory=dict)
    keys: dict[int, str] = field(default_factory=dict)
    # phase -> seconds, for `import_orders -v 2` and the benchmark
    timings: dict[str, float] = field(default_factory=dict)
    # The earliest order date, old or new, of the orders written (retention.sales.changes).
    earliest_changed_at: datetime | None = None

    def as_dict(self) -> dict[str, int | bool]:
        return {
            "read": self.read,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "invalid": self.invalid,
            "customers_created": self.customers_created,
            "written": self.written,
        }


STAGE = "ingest_stage"
TOUCHED = "ingest_touched"
CUSTOMERS = "ingest_customers"


class Merge:
    """Stage validated records and merge them into the order tables in set-based SQL.

    Use inside `transaction.atomic()`; see the module docstring for the steps.
    """

    BATCH = 5000

    def __init__(self):
        self.vendor = connection.vendor
        self.cursor = connection.cursor()
        self.customer = Customer._meta.db_table
        self.order = Order._meta.db_table
        self.line = OrderLine._meta.db_table
        self.now = timezone.now()

    # 1. Staging ---------------------------------------------------------------------------

    def create_stage(self) -> None:
        if self.vendor == "postgresql":
            # Hash joins and aggregates over the whole file stay in memory rather
            # than spilling to disk in batches; only for this transaction.
            self.cursor.execute("SET LOCAL work_mem = %s", [settings.RETENTION_IMPORT_WORK_MEM])
        timestamp = "timestamptz" if self.vendor == "postgresql" else "datetime"
        for table in (STAGE, TOUCHED, CUSTOMERS):
            self.cursor.execute(f"DROP TABLE IF EXISTS {table}")
        self.cursor.execute(
            f"""CREATE TEMPORARY TABLE {STAGE} (
                line integer NOT NULL, order_key varchar(64) NOT NULL,
                customer_ext varchar(64) NOT NULL, email varchar(254) NOT NULL,
                name varchar(200) NOT NULL, ordered_at {timestamp} NOT NULL,
                status varchar(10) NOT NULL, amount numeric(12, 2) NOT NULL,
                currency varchar(3) NOT NULL, coupon varchar(50) NOT NULL,
                fingerprint varchar(32) NOT NULL, position integer NOT NULL,
                course_id bigint, bundle_id bigint, line_price numeric(12, 2))"""
        )

    @staticmethod
    def _rows(record: OrderRecord, when) -> Iterator[tuple]:
        head = (record.line, record.key, record.customer_id, record.email, record.name, when,
                record.status, format_cents(record.amount_cents), record.currency,
                record.coupon_code, record.fingerprint)
        if not record.lines:
            yield (*head, 0, None, None, None)
        for position, course, bundle, price in record.lines:
            yield (*head, position, course, bundle, format_cents(price))

    @contextmanager
    def loading(self) -> Iterator[Callable[[OrderRecord], None]]:
        """Yield a function that adds one record to the staging table."""
        if self.vendor == "postgresql":
            columns = ("line, order_key, customer_ext, email, name, ordered_at, status, amount, "
                       "currency, coupon, fingerprint, position, course_id, bundle_id, line_price")
            with self.cursor.cursor.copy(f"COPY {STAGE} ({columns}) FROM STDIN") as copy:
                write_row = copy.write_row

                def add(record: OrderRecord) -> None:
                    for row in self._rows(record, record.ordered_at.isoformat()):
                        write_row(row)

                yield add
            self.cursor.execute(f"ANALYZE {STAGE}")  # temp tables have no statistics otherwise
        else:
            batch: list[tuple] = []
            adapt = connection.ops.adapt_datetimefield_value
            sql = f"INSERT INTO {STAGE} VALUES ({', '.join(['%s'] * 15)})"

            def add(record: OrderRecord) -> None:
                batch.extend(self._rows(record, adapt(record.ordered_at)))
                if len(batch) >= self.BATCH:
                    self.cursor.executemany(sql, batch)
                    batch.clear()

            yield add
            if batch:
                self.cursor.executemany(sql, batch)
            self.cursor.execute(f"CREATE INDEX {STAGE}_key ON {STAGE} (order_key, line)")
            self.cursor.execute(f"CREATE INDEX {STAGE}_customer ON {STAGE} (customer_ext)")

    # 2. Repeated keys ------------------------------------------------------------------------

    def repeated_keys(self) -> tuple[int, list[RowError]]:
        """Drop every staged order but the first of each key.

        Returns the number of exact duplicates dropped and an error for each
        later row whose content differs from the first.
        """
        self.cursor.execute(
            f"SELECT COUNT(*) FROM (SELECT order_key FROM {STAGE} WHERE position <= 1 "
            "GROUP BY order_key HAVING COUNT(*) > 1) repeated"
        )
        if not self.cursor.fetchone()[0]:
            return 0, []
        self.cursor.execute(
            f"""SELECT later.line, later.order_key, later.fingerprint = first.fingerprint, first.line
                FROM {STAGE} later
                JOIN (SELECT order_key, MIN(line) AS line FROM {STAGE} GROUP BY order_key) first_line
                  ON first_line.order_key = later.order_key AND later.line > first_line.line
                JOIN {STAGE} first ON first.order_key = first_line.order_key
                  AND first.line = first_line.line AND first.position <= 1
                WHERE later.position <= 1
                ORDER BY later.line"""
        )
        duplicates, errors = 0, []
        for line, key, same, first_line in self.cursor.fetchall():
            if same:
                duplicates += 1
            else:
                column = "order_id" if not key.startswith(DERIVED_KEY_PREFIX) else "status"
                what = f'order_id "{key}"' if column == "order_id" else "the same order"
                errors.append(RowError(
                    line, column, f"{what} already appears on line {first_line} with different values"
                ))
        self.cursor.execute(
            f"""DELETE FROM {STAGE} WHERE EXISTS (
                SELECT 1 FROM {STAGE} earlier
                WHERE earlier.order_key = {STAGE}.order_key AND earlier.line < {STAGE}.line)"""
        )
        return duplicates, errors

    # 3. Merge ----------------------------------------------------------------------------------

    def merge(self, result: MergeResult, *, outcomes: bool = False) -> None:
        with timed(result, "customers"):
            result.customers_created = self._insert_customers()
        with timed(result, "compare with stored orders"):
            self._find_touched(result, outcomes=outcomes)
        if result.created or result.updated:
            result.earliest_changed_at = self._earliest_changed()
            with timed(result, "upsert orders"):
                self._upsert_orders()
            with timed(result, "replace lines"):
                self._replace_lines()
            with timed(result, "customer summaries"):
                self._refresh_summaries()
        result.written = True

    def _insert_customers(self) -> int:
        """Insert the customers the database does not know yet; return how many.

        A new customer's orders are all in this import, so their order summary is
        computed here from the staging table; `_refresh_summaries` then rewrites
        only customers who existed before.
        """
        if self.vendor == "postgresql":
            first_rows = (f"SELECT DISTINCT ON (customer_ext) customer_ext, email, name "
                          f"FROM {STAGE} ORDER BY customer_ext, line")
        else:
            # SQLite: bare columns of a MIN() aggregate come from the row holding the minimum.
            first_rows = (f"SELECT customer_ext, email, name FROM (SELECT customer_ext, email, "
                          f"name, MIN(line) FROM {STAGE} GROUP BY customer_ext)")
        paid = f"SELECT * FROM {STAGE} WHERE position <= 1 AND status = 'paid'"
        self.cursor.execute(
            f"""INSERT INTO {self.customer} (external_id, email, name, customer_type,
                    organisation_name, sector, marketing_consent, acquisition_source,
                    first_order_at, last_order_at, order_count, total_spent,
                    created_at, updated_at)
                SELECT f.customer_ext, f.email, f.name, 'individual', '', '', %s, '',
                    p.first_at, p.last_at, COALESCE(p.n, 0), COALESCE(p.total, 0), %s, %s
                FROM ({first_rows}) f
                LEFT JOIN (
                    SELECT customer_ext, MIN(ordered_at) AS first_at, MAX(ordered_at) AS last_at,
                        COUNT(*) AS n, SUM(amount) AS total
                    FROM ({paid}) paid GROUP BY customer_ext
                ) p ON p.customer_ext = f.customer_ext
                WHERE true
                ON CONFLICT (external_id) DO NOTHING""",
            [False, self.now, self.now],
        )
        created = max(self.cursor.rowcount, 0)
        # Fill in contact details the platform had not sent before; never overwrite them.
        for column in ("email", "name"):
            self.cursor.execute(
                f"""UPDATE {self.customer} SET {column} = (
                        SELECT MIN(s.{column}) FROM {STAGE} s
                        WHERE s.customer_ext = {self.customer}.external_id AND s.{column} <> ''),
                    updated_at = %s
                    WHERE {column} = '' AND external_id IN (
                        SELECT customer_ext FROM {STAGE} WHERE {column} <> '')""",
                [self.now],
            )
        return created

    def _find_touched(self, result: MergeResult, *, outcomes: bool) -> None:
        """Record the staged orders that are new or changed, and count the outcomes."""
        staged_orders = self._count(f"SELECT COUNT(*) FROM {STAGE} WHERE position <= 1")
        self.cursor.execute(
            f"""CREATE TEMPORARY TABLE {TOUCHED} (
                order_key varchar(64) PRIMARY KEY, order_id bigint, old_customer_id bigint)"""
        )
        self.cursor.execute(
            f"""INSERT INTO {TOUCHED} (order_key, order_id, old_customer_id)
                SELECT s.order_key, o.id, o.customer_id FROM {STAGE} s
                LEFT JOIN {self.order} o ON o.external_id = s.order_key
                WHERE s.position <= 1 AND (o.id IS NULL OR o.fingerprint <> s.fingerprint)"""
        )
        if self.vendor == "postgresql":
            self.cursor.execute(f"ANALYZE {TOUCHED}")
        result.created = self._count(f"SELECT COUNT(*) FROM {TOUCHED} WHERE order_id IS NULL")
        result.updated = self._count(f"SELECT COUNT(*) FROM {TOUCHED} WHERE order_id IS NOT NULL")
        result.unchanged += staged_orders - result.created - result.updated
        if outcomes:
            self.cursor.execute(f"SELECT order_key FROM {STAGE} WHERE position <= 1")
            result.outcomes = dict.fromkeys((key for (key,) in self.cursor.fetchall()), "unchanged")
            self.cursor.execute(f"SELECT order_key, order_id IS NULL FROM {TOUCHED}")
            for key, created in self.cursor.fetchall():
                result.outcomes[key] = "created" if created else "updated"

    def _earliest_changed(self):
        """The earliest date of the orders about to be written: new dates and old ones."""
        self.cursor.execute(
            f"""SELECT MIN(moment) FROM (
                    SELECT s.ordered_at AS moment FROM {STAGE} s
                    JOIN {TOUCHED} t ON t.order_key = s.order_key WHERE s.position <= 1
                    UNION ALL
                    SELECT o.ordered_at FROM {self.order} o JOIN {TOUCHED} t ON t.order_id = o.id
                ) touched"""
        )
        moment = self.cursor.fetchone()[0]
        if isinstance(moment, str):  # SQLite returns the stored text
            moment = datetime.fromisoformat(moment)
        if moment is not None and timezone.is_naive(moment):
            moment = timezone.make_aware(moment, UTC)
        return moment

    def _upsert_orders(self) -> None:
        self.cursor.execute(
            f"""INSERT INTO {self.order} (external_id, customer_id, ordered_at, status, amount,
                    currency, coupon_code, fingerprint, created_at, updated_at)
                SELECT s.order_key, c.id, s.ordered_at, s.status, s.amount, s.currency,
                    s.coupon, s.fingerprint, %s, %s
                FROM {STAGE} s
                JOIN {TOUCHED} t ON t.order_key = s.order_key
                JOIN {self.customer} c ON c.external_id = s.customer_ext
                WHERE s.position <= 1
                -- In key order: two imports of overlapping files then wait for
                -- each other on the first shared key instead of deadlocking.
                ORDER BY s.order_key
                ON CONFLICT (external_id) DO UPDATE SET
                    customer_id = excluded.customer_id, ordered_at = excluded.ordered_at,
                    status = excluded.status, amount = excluded.amount,
                    currency = excluded.currency, coupon_code = excluded.coupon_code,
                    fingerprint = excluded.fingerprint, updated_at = excluded.updated_at""",
            [self.now, self.now],
        )

    def _replace_lines(self) -> None:
        # Delete through the orders as they are now, not through TOUCHED.order_id:
        # an import running beside this one may have created an order that this
        # one found missing, and its lines must go too (each statement sees what
        # committed before it started, under READ COMMITTED).
        self.cursor.execute(
            f"""DELETE FROM {self.line} WHERE order_id IN (
                SELECT o.id FROM {self.order} o JOIN {TOUCHED} t ON t.order_key = o.external_id)"""
        )
        self.cursor.execute(
            f"""INSERT INTO {self.line} (order_id, position, course_id, bundle_id, price)
                SELECT o.id, s.position, s.course_id, s.bundle_id, s.line_price
                FROM {STAGE} s
                JOIN {TOUCHED} t ON t.order_key = s.order_key
                JOIN {self.order} o ON o.external_id = s.order_key
                WHERE s.position >= 1"""
        )

    def _refresh_summaries(self) -> None:
        """Refresh the customers whose orders changed, an order's previous customer included."""
        self.cursor.execute(f"CREATE TEMPORARY TABLE {CUSTOMERS} (id bigint PRIMARY KEY)")
        self.cursor.execute(
            f"""INSERT INTO {CUSTOMERS} (id)
                SELECT c.id FROM {self.customer} c WHERE c.external_id IN (
                    SELECT s.customer_ext FROM {STAGE} s
                    JOIN {TOUCHED} t ON t.order_key = s.order_key)
                UNION
                SELECT old_customer_id FROM {TOUCHED} WHERE old_customer_id IS NOT NULL"""
        )
        summaries.refresh_ids_from(f"SELECT id FROM {CUSTOMERS}")

    def drop(self) -> None:
        for table in (STAGE, TOUCHED, CUSTOMERS):
            self.cursor.execute(f"DROP TABLE IF EXISTS {table}")

    def _count(self, sql: str) -> int:
        self.cursor.execute(sql)
        return self.cursor.fetchone()[0]


@contextmanager
def timed(result: MergeResult, phase: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    result.timings[phase] = result.timings.get(phase, 0.0) + time.perf_counter() - started
