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

import bisect
import hashlib
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import connection, transaction
from django.utils import timezone

from retention import changes, summaries
from retention.models import Bundle, Course, Customer, Order, OrderLine, PriceChange

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
    # Price changes, oldest first: (changed_at, price before it in cents).
    changes: list[tuple[datetime, int]] = field(default_factory=list)

    def price_on(self, moment: datetime) -> int:
        """The list price in force at `moment`: before the first later change, its old price."""
        if self.changes:
            index = bisect.bisect_right(self.changes, moment, key=lambda change: change[0])
            if index < len(self.changes):
                return self.changes[index][1]
        return self.price_cents


@lru_cache(maxsize=65_536)
def _is_email(text: str) -> bool:
    # Cached: a customer's email repeats on each of their orders.
    try:
        validate_email(text)
    except ValidationError:
        return False
    return True


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
        self._items_cache: dict[str, tuple] = {}

    @classmethod
    def for_current_catalogue(cls) -> OrderValidator:
        offerings, by_pk = {}, {}
        for kind, model in (("bundle", Bundle), ("course", Course)):
            for pk, code, price in model.objects.values_list("pk", "code", "price"):
                offerings[code.lower()] = by_pk[kind, pk] = Offering(kind, pk, code, int(price * 100))
        changes = PriceChange.objects.order_by("changed_at", "pk").values_list(
            "course_id", "bundle_id", "changed_at", "old_price"
        )
        for course_id, bundle_id, changed_at, old_price in changes:
            offering = by_pk[("course", course_id) if course_id else ("bundle", bundle_id)]
            offering.changes.append((changed_at, int(old_price * 100)))
        return cls(
            offerings=offerings,
            currency=settings.RETENTION_CURRENCY,
            zone=ZoneInfo(settings.TIME_ZONE),
        )

    def validate(self, row: dict[str, str], line: int) -> tuple[OrderRecord | None, list[RowError]]:
        """Return the row as a record, or None and every problem found in it.

        This runs once per row of files with millions of rows, so it reads each
        column once and caches what repeats across rows (emails, item lists).
        """
        get = row.get
        order_id = (get("order_id") or "").strip()
        customer_id = (get("customer_id") or "").strip()
        ordered_at_text = (get("ordered_at") or "").strip()
        amount_text = (get("amount") or "").strip()
        email = (get("email") or "").strip()
        name = (get("name") or "").strip()
        status_text = (get("status") or "").strip()
        items_text = (get("items") or "").strip()
        coupon_code = (get("coupon_code") or "").strip()
        currency_text = (get("currency") or "").strip()
        errors: list[RowError] = []

        for column, value in (("order_id", order_id), ("customer_id", customer_id),
                              ("email", email), ("name", name), ("coupon_code", coupon_code)):
            if len(value) > MAX_LENGTHS[column]:
                errors.append(RowError(line, column, f"longer than {MAX_LENGTHS[column]} characters"))
        if not customer_id:
            errors.append(RowError(line, "customer_id", "required, but empty"))

        ordered_at = None
        if not ordered_at_text:
            errors.append(RowError(line, "ordered_at", "required, but empty"))
        elif (ordered_at := self._parse_datetime(ordered_at_text)) is None:
            errors.append(RowError(
                line, "ordered_at",
                f'unparsable date "{ordered_at_text}" (use YYYY-MM-DD or an ISO 8601 date-time, '
                f"years {MIN_YEAR} to {MAX_YEAR})",
            ))

        amount_cents = None
        if not amount_text:
            errors.append(RowError(line, "amount", "required, but empty"))
        else:
            amount_cents, problem = self._parse_amount(amount_text)
            if problem:
                errors.append(RowError(line, "amount", problem))

        status = status_text.lower() or "paid"
        if status not in STATUSES:
            errors.append(RowError(
                line, "status", f'unknown status "{status_text}" (use paid, refunded or cancelled)'
            ))

        currency = currency_text.upper() or self.currency
        if currency != self.currency:
            errors.append(RowError(
                line, "currency",
                f'"{currency_text}" is not the business currency {self.currency} '
                "(convert amounts before importing)",
            ))

        if email and not _is_email(email):
            errors.append(RowError(line, "email", f'"{email}" is not an email address'))

        offerings, problems = self._items(items_text) if items_text else ((), ())
        errors.extend(RowError(line, "items", problem) for problem in problems)

        if errors:
            return None, errors

        amount = format_cents(amount_cents)
        items = "|".join(offering.code for offering in offerings)
        ordered_utc = ordered_at.astimezone(UTC)
        moment = ordered_utc.isoformat()
        key = order_id or derived_key(customer_id, ordered_utc, amount, items, coupon_code, currency)
        content = "\x1f".join([customer_id, moment, status, amount, currency, coupon_code, items])
        return OrderRecord(
            line=line,
            key=key,
            customer_id=customer_id,
            email=email,
            name=name,
            ordered_at=ordered_utc,
            status=status,
            amount_cents=amount_cents,
            currency=currency,
            coupon_code=coupon_code,
            lines=allocate(amount_cents, offerings, ordered_utc),
            fingerprint=hashlib.blake2b(content.encode(), digest_size=16).hexdigest(),
        ), []

    def _items(self, text: str) -> tuple[tuple[Offering, ...], tuple[str, ...]]:
        """Resolve "CODE|CODE" to offerings, and say what is wrong with it (cached)."""
        if (cached := self._items_cache.get(text)) is not None:
            return cached
        offerings, problems = [], []
        for code in text.split("|"):
            code = code.strip()
            if not code:
                problems.append("empty item code between '|' separators")
            elif (offering := self.offerings.get(code.lower())) is None:
                problems.append(f'unknown item code "{code}" (not a course or bundle code)')
            else:
                offerings.append(offering)
        result = (tuple(offerings), tuple(problems))
        if len(self._items_cache) < 100_000:  # bounded: a file of unique item lists stays flat
            self._items_cache[text] = result
        return result

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


def allocate(
    amount_cents: int, offerings: tuple[Offering, ...] | list[Offering], moment: datetime
) -> list[tuple[int, int | None, int | None, int]]:
    """Split an order's amount over its lines in proportion to their list prices at `moment`.

    Shares are rounded down to the cent and the remainder goes to the last line,
    so the lines always add up to the amount. Free items share equally.
    """
    if not offerings:
        return []
    if len(offerings) == 1:
        offering = offerings[0]
        course = offering.pk if offering.kind == "course" else None
        return [(1, course, None if course else offering.pk, amount_cents)]
    weights = [offering.price_on(moment) for offering in offerings]
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
    # When asked for (API calls): order key -> "created" | "updated" | "unchanged",
    # and line -> order key of each valid row.
    outcomes: dict[str, str] = field(default_factory=dict)
    keys: dict[int, str] = field(default_factory=dict)
    # phase -> seconds, for `import_orders -v 2` and the benchmark
    timings: dict[str, float] = field(default_factory=dict)
    # The earliest order date, old or new, of the orders written (retention.changes).
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
            self.cursor.execute("SET LOCAL work_mem = %s", [settings.IMPORT_WORK_MEM])
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
        with _timed(result, "customers"):
            result.customers_created = self._insert_customers()
        with _timed(result, "compare with stored orders"):
            self._find_touched(result, outcomes=outcomes)
        if result.created or result.updated:
            result.earliest_changed_at = self._earliest_changed()
            with _timed(result, "upsert orders"):
                self._upsert_orders()
            with _timed(result, "replace lines"):
                self._replace_lines()
            with _timed(result, "customer summaries"):
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
def _timed(result: MergeResult, phase: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    result.timings[phase] = result.timings.get(phase, 0.0) + time.perf_counter() - started


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
    with _timed(result, "read, validate and stage"), merge.loading() as add:
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
                if outcomes:
                    result.keys[line] = record.key
    with _timed(result, "repeated keys"):
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
        with _timed(result, "constraint checks"):
            # Foreign keys are checked at commit (Django makes them deferred); check
            # them now so the time is counted and a violation names this import.
            if merge.vendor == "postgresql":
                merge.cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                merge.cursor.execute("SET CONSTRAINTS ALL DEFERRED")  # Django's default again
    if dry_run:
        result.written = False
        transaction.set_rollback(True)
    elif result.earliest_changed_at is not None:
        # Last, so that the change is recorded as close to the commit as can be.
        changes.record(timezone.localtime(result.earliest_changed_at).date(), source="import")
