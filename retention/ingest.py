"""Orders in: one validation and one merge, shared by `import_orders` and the API.

A row (a CSV line or an API object) becomes an `OrderRecord` through
`OrderValidator.validate`, which returns every problem it finds as a `RowError`
naming the line (or the position in an API call), the column and the reason.
Valid records are written by `Merge`, which never saves row by row:

1. records stream into a temporary staging table (COPY on PostgreSQL, batched
   inserts on SQLite), one staging row per order line;
2. keys that repeat in the input are resolved in SQL: the first row wins, a
   later row with the same content is a duplicate (changes nothing) and a later
   row with different content is reported as invalid;
3. missing customers are inserted, then the orders that are new or whose
   fingerprint changed are upserted, their lines replaced, and the cached
   order summary of every customer involved is refreshed.

Everything happens in one transaction, so a failure or an invalid row (unless
skipping was asked for) leaves the database as it was. Running the same input
twice has the effect of running it once: orders are keyed by the platform's
order id, or by `derived_key` for rows without one.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import connection, transaction
from django.db.models import Q
from django.db.models.expressions import RawSQL
from django.utils import timezone

from retention import summaries
from retention.models import Bundle, Course, Customer, Order, OrderLine

COLUMNS = (
    "order_id",
    "customer_id",
    "ordered_at",
    "amount",
    "email",
    "name",
    "status",
    "items",
    "coupon_code",
    "currency",
)
REQUIRED_COLUMNS = ("customer_id", "ordered_at", "amount")
STATUSES = ("paid", "refunded", "cancelled")
MAX_LENGTHS = {"order_id": 64, "customer_id": 64, "email": 254, "name": 200, "coupon_code": 50}
# Up to 10 digits before the point and 2 after: DecimalField(max_digits=12, decimal_places=2).
AMOUNT = re.compile(r"(\d{1,10})(?:\.(\d{1,2}))?")
AMOUNT_LOOSE = re.compile(r"-?\d*(?:\.\d*)?")
DERIVED_KEY_PREFIX = "row-"
# Orders dated outside these years are typing mistakes (and overflow time zone arithmetic).
MIN_YEAR, MAX_YEAR = 1970, 2999


@dataclass(frozen=True, slots=True)
class RowError:
    """One problem with one input row. `line` is a file line or an API list index."""

    line: int
    column: str | None
    message: str

    def __str__(self) -> str:
        if self.column:
            return f"line {self.line}, column {self.column}: {self.message}"
        return f"line {self.line}: {self.message}"


@dataclass(slots=True)
class OrderRecord:
    """A valid order, normalised: amounts in cents, date-times aware in UTC."""

    line: int
    key: str
    customer_id: str
    email: str
    name: str
    ordered_at: datetime
    status: str
    amount_cents: int
    currency: str
    coupon_code: str
    # (position, course pk or None, bundle pk or None, price in cents)
    lines: list[tuple[int, int | None, int | None, int]]
    fingerprint: str


@dataclass(slots=True)
class Offering:
    kind: str  # "course" or "bundle"
    pk: int
    code: str
    price_cents: int


def cents_to_decimal(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


def format_cents(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def derived_key(customer_id: str, ordered_at: datetime, amount: str, items: str, coupon: str,
                currency: str) -> str:
    """Return the order key of a row without an order id, derived from its content.

    The status is left out on purpose: re-importing the same order later marked
    `refunded` updates it instead of adding a second order. Two genuinely
    separate orders with identical content need order ids to stay apart.
    """
    content = "\x1f".join([customer_id, ordered_at.isoformat(), amount, items, coupon, currency])
    return DERIVED_KEY_PREFIX + hashlib.blake2b(content.encode(), digest_size=16).hexdigest()


class OrderValidator:
    """Checks rows against the catalogue, the business currency and time zone.

    Loads every course and bundle code once (one query each); `validate` runs
    no queries, so it can check millions of rows.
    """

    def __init__(self, *, offerings: dict[str, Offering], currency: str, zone: tzinfo):
        self.offerings = offerings
        self.currency = currency.upper()
        self.zone = zone

    @classmethod
    def for_current_catalogue(cls) -> OrderValidator:
        offerings = {}
        for kind, model in (("bundle", Bundle), ("course", Course)):
            for pk, code, price in model.objects.values_list("pk", "code", "price"):
                offerings[code.lower()] = Offering(kind, pk, code, int(price * 100))
        return cls(
            offerings=offerings,
            currency=settings.RETENTION_CURRENCY,
            zone=ZoneInfo(settings.TIME_ZONE),
        )

    def validate(self, row: dict[str, str], line: int) -> tuple[OrderRecord | None, list[RowError]]:
        """Return the row as a record, or None and every problem found in it."""
        errors: list[RowError] = []

        def fail(column: str, message: str) -> None:
            errors.append(RowError(line, column, message))

        values = {name: (row.get(name) or "").strip() for name in COLUMNS}
        for column, limit in MAX_LENGTHS.items():
            if len(values[column]) > limit:
                fail(column, f"longer than {limit} characters")
        for column in REQUIRED_COLUMNS:
            if not values[column]:
                fail(column, "required, but empty")

        ordered_at = None
        if values["ordered_at"]:
            ordered_at = self._parse_datetime(values["ordered_at"])
            if ordered_at is None:
                fail(
                    "ordered_at",
                    f'unparsable date "{values["ordered_at"]}" '
                    "(use YYYY-MM-DD or an ISO 8601 date-time, "
                    f"years {MIN_YEAR} to {MAX_YEAR})",
                )

        amount_cents = None
        if values["amount"]:
            amount_cents, problem = self._parse_amount(values["amount"])
            if problem:
                fail("amount", problem)

        status = values["status"].lower() or "paid"
        if status not in STATUSES:
            fail("status", f'unknown status "{values["status"]}" (use paid, refunded or cancelled)')

        currency = values["currency"].upper() or self.currency
        if currency != self.currency:
            fail(
                "currency",
                f'"{values["currency"]}" is not the business currency {self.currency} '
                "(convert amounts before importing)",
            )

        if values["email"]:
            try:
                validate_email(values["email"])
            except ValidationError:
                fail("email", f'"{values["email"]}" is not an email address')

        offerings: list[Offering] = []
        if values["items"]:
            for code in values["items"].split("|"):
                code = code.strip()
                if not code:
                    fail("items", "empty item code between '|' separators")
                elif (offering := self.offerings.get(code.lower())) is None:
                    fail("items", f'unknown item code "{code}" (not a course or bundle code)')
                else:
                    offerings.append(offering)

        if errors:
            return None, errors

        amount = format_cents(amount_cents)
        items = "|".join(offering.code for offering in offerings)
        ordered_utc = ordered_at.astimezone(UTC)
        key = values["order_id"] or derived_key(
            values["customer_id"], ordered_utc, amount, items, values["coupon_code"], currency
        )
        content = "\x1f".join(
            [values["customer_id"], ordered_utc.isoformat(), status, amount, currency,
             values["coupon_code"], items]
        )
        return OrderRecord(
            line=line,
            key=key,
            customer_id=values["customer_id"],
            email=values["email"],
            name=values["name"],
            ordered_at=ordered_utc,
            status=status,
            amount_cents=amount_cents,
            currency=currency,
            coupon_code=values["coupon_code"],
            lines=allocate(amount_cents, offerings),
            fingerprint=hashlib.blake2b(content.encode(), digest_size=16).hexdigest(),
        ), []

    def _parse_datetime(self, text: str) -> datetime | None:
        """A date is midnight in the business zone; a naive date-time is in that zone."""
        try:
            if len(text) == 10:
                day = date.fromisoformat(text)
                value = datetime(day.year, day.month, day.day)
            else:
                value = datetime.fromisoformat(text)
        except ValueError:
            return None
        if not MIN_YEAR <= value.year <= MAX_YEAR:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=self.zone)
        return value

    @staticmethod
    def _parse_amount(text: str) -> tuple[int | None, str | None]:
        if match := AMOUNT.fullmatch(text):
            whole, fraction = match.groups()
            return int(whole) * 100 + int((fraction or "0").ljust(2, "0")), None
        if AMOUNT_LOOSE.fullmatch(text) and any(ch.isdigit() for ch in text):
            if text.startswith("-"):
                return None, f'negative amount "{text}" (must be 0 or more)'
            if "." in text and len(text.split(".", 1)[1]) > 2:
                return None, f'"{text}" has more than 2 decimal places'
            if len(text.lstrip("-").split(".")[0]) > 10:
                return None, f'"{text}" is too large (at most 10 digits before the point)'
        return None, f'"{text}" is not an amount (use digits with an optional "." and 2 decimals)'


def allocate(amount_cents: int, offerings: list[Offering]) -> list[tuple[int, int | None, int | None, int]]:
    """Split an order's amount over its lines in proportion to their list prices.

    Shares are rounded down to the cent and the remainder goes to the last line,
    so the lines always add up to the amount. Free items share equally.
    """
    if not offerings:
        return []
    weights = [offering.price_cents for offering in offerings]
    if not any(weights):
        weights = [1] * len(offerings)
    total = sum(weights)
    shares = [amount_cents * weight // total for weight in weights]
    shares[-1] += amount_cents - sum(shares)
    return [
        (
            position,
            offering.pk if offering.kind == "course" else None,
            offering.pk if offering.kind == "bundle" else None,
            share,
        )
        for position, (offering, share) in enumerate(zip(offerings, shares, strict=True), start=1)
    ]


@dataclass
class MergeResult:
    read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    invalid: int = 0
    customers_created: int = 0
    written: bool = False
    # order key -> "created" | "updated" | "unchanged", when asked for (API calls)
    outcomes: dict[str, str] = field(default_factory=dict)

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
        timestamp = "timestamptz" if self.vendor == "postgresql" else "datetime"
        temp = "TEMPORARY"
        for table in (STAGE, TOUCHED):
            self.cursor.execute(f"DROP TABLE IF EXISTS {table}")
        self.cursor.execute(
            f"""CREATE {temp} TABLE {STAGE} (
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
        cursor, now = self.cursor, self.now
        staged_orders = self._count(f"SELECT COUNT(*) FROM {STAGE} WHERE position <= 1")

        if self.vendor == "postgresql":
            first_rows = (f"SELECT DISTINCT ON (customer_ext) customer_ext, email, name "
                          f"FROM {STAGE} ORDER BY customer_ext, line")
        else:
            # SQLite: bare columns of a MIN() aggregate come from the row holding the minimum.
            first_rows = (f"SELECT customer_ext, email, name FROM (SELECT customer_ext, email, "
                          f"name, MIN(line) FROM {STAGE} GROUP BY customer_ext)")
        cursor.execute(
            f"""INSERT INTO {self.customer} (external_id, email, name, customer_type,
                    organisation_name, sector, marketing_consent, acquisition_source,
                    order_count, total_spent, created_at, updated_at)
                SELECT customer_ext, email, name, 'individual', '', '', %s, '', 0, 0, %s, %s
                FROM ({first_rows}) first_rows WHERE true
                ON CONFLICT (external_id) DO NOTHING""",
            [False, now, now],
        )
        result.customers_created = max(cursor.rowcount, 0)
        # Fill in contact details the platform had not sent before; never overwrite them.
        for column in ("email", "name"):
            cursor.execute(
                f"""UPDATE {self.customer} SET {column} = (
                        SELECT MIN(s.{column}) FROM {STAGE} s
                        WHERE s.customer_ext = {self.customer}.external_id AND s.{column} <> ''),
                    updated_at = %s
                    WHERE {column} = '' AND external_id IN (
                        SELECT customer_ext FROM {STAGE} WHERE {column} <> '')""",
                [now],
            )

        cursor.execute(
            f"""CREATE TEMPORARY TABLE {TOUCHED} (
                order_key varchar(64) PRIMARY KEY, order_id bigint, old_customer_id bigint)"""
        )
        cursor.execute(
            f"""INSERT INTO {TOUCHED} (order_key, order_id, old_customer_id)
                SELECT s.order_key, o.id, o.customer_id FROM {STAGE} s
                LEFT JOIN {self.order} o ON o.external_id = s.order_key
                WHERE s.position <= 1 AND (o.id IS NULL OR o.fingerprint <> s.fingerprint)"""
        )
        result.created = self._count(f"SELECT COUNT(*) FROM {TOUCHED} WHERE order_id IS NULL")
        result.updated = self._count(f"SELECT COUNT(*) FROM {TOUCHED} WHERE order_id IS NOT NULL")
        result.unchanged += staged_orders - result.created - result.updated

        if outcomes:
            cursor.execute(f"SELECT order_key FROM {STAGE} WHERE position <= 1")
            result.outcomes = dict.fromkeys((key for (key,) in cursor.fetchall()), "unchanged")
            cursor.execute(f"SELECT order_key, order_id IS NULL FROM {TOUCHED}")
            for key, created in cursor.fetchall():
                result.outcomes[key] = "created" if created else "updated"

        if result.created or result.updated:
            cursor.execute(
                f"""INSERT INTO {self.order} (external_id, customer_id, ordered_at, status, amount,
                        currency, coupon_code, fingerprint, created_at, updated_at)
                    SELECT s.order_key, c.id, s.ordered_at, s.status, s.amount, s.currency,
                        s.coupon, s.fingerprint, %s, %s
                    FROM {STAGE} s
                    JOIN {TOUCHED} t ON t.order_key = s.order_key
                    JOIN {self.customer} c ON c.external_id = s.customer_ext
                    WHERE s.position <= 1
                    ON CONFLICT (external_id) DO UPDATE SET
                        customer_id = excluded.customer_id, ordered_at = excluded.ordered_at,
                        status = excluded.status, amount = excluded.amount,
                        currency = excluded.currency, coupon_code = excluded.coupon_code,
                        fingerprint = excluded.fingerprint, updated_at = excluded.updated_at""",
                [now, now],
            )
            cursor.execute(
                f"""DELETE FROM {self.line} WHERE order_id IN (
                    SELECT order_id FROM {TOUCHED} WHERE order_id IS NOT NULL)"""
            )
            cursor.execute(
                f"""INSERT INTO {self.line} (order_id, position, course_id, bundle_id, price)
                    SELECT o.id, s.position, s.course_id, s.bundle_id, s.line_price
                    FROM {STAGE} s
                    JOIN {TOUCHED} t ON t.order_key = s.order_key
                    JOIN {self.order} o ON o.external_id = s.order_key
                    WHERE s.position >= 1"""
            )
            touched_customers = Customer.objects.filter(
                Q(external_id__in=RawSQL(
                    f"SELECT s.customer_ext FROM {STAGE} s "
                    f"JOIN {TOUCHED} t ON t.order_key = s.order_key", []))
                | Q(pk__in=RawSQL(
                    f"SELECT old_customer_id FROM {TOUCHED} WHERE old_customer_id IS NOT NULL", []))
            )
            summaries.refresh(touched_customers)
        result.written = True

    def drop(self) -> None:
        for table in (STAGE, TOUCHED):
            self.cursor.execute(f"DROP TABLE IF EXISTS {table}")

    def _count(self, sql: str) -> int:
        self.cursor.execute(sql)
        return self.cursor.fetchone()[0]


def import_rows(
    rows: Iterable[tuple[int, dict[str, str] | RowError]],
    *,
    skip_invalid: bool = False,
    dry_run: bool = False,
    on_error: Callable[[RowError], None] = lambda error: None,
    outcomes: bool = False,
    validator: OrderValidator | None = None,
) -> MergeResult:
    """Validate and merge (line, row) pairs; return what happened.

    Nothing is written when a row is invalid unless `skip_invalid`, nor when
    `dry_run` (the counts then say what would have happened). Each problem is
    passed to `on_error` as it is found, so a caller can stream them.
    """
    validator = validator or OrderValidator.for_current_catalogue()
    result = MergeResult()
    with transaction.atomic():
        merge = Merge()
        merge.create_stage()
        # On an exception the rollback removes the staging tables with everything
        # else; dropping them here would fail in an aborted PostgreSQL transaction.
        _stage_and_merge(merge, rows, validator, result, skip_invalid=skip_invalid,
                         dry_run=dry_run, on_error=on_error, outcomes=outcomes)
        if not transaction.get_rollback():  # a rollback removes the tables already
            merge.drop()
        merge.cursor.close()
    return result


def _stage_and_merge(merge, rows, validator, result, *, skip_invalid, dry_run, on_error,
                     outcomes) -> None:
    with merge.loading() as add:
        for line, row in rows:
            result.read += 1
            if isinstance(row, RowError):  # the reader could not split this line into fields
                result.invalid += 1
                on_error(row)
                continue
            record, errors = validator.validate(row, line)
            if errors:
                result.invalid += 1
                for error in errors:
                    on_error(error)
            else:
                add(record)
    duplicates, errors = merge.repeated_keys()
    result.unchanged += duplicates
    result.invalid += len(errors)
    for error in errors:
        on_error(error)
    if result.invalid and not skip_invalid:
        transaction.set_rollback(True)
        return
    merge.merge(result, outcomes=outcomes)
    if dry_run:
        result.written = False
        transaction.set_rollback(True)
