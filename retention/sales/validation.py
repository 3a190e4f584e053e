"""Order rows checked one by one: what a CSV line or an API object must hold to be an order.

`OrderValidator.validate` turns a row into an `OrderRecord` (amounts in cents, date-times
aware in UTC, lines split over the items by their list prices of the order's date) or
returns every problem it finds as a `RowError` naming the line (or the position in an
API call), the column and the reason. It runs no queries: the catalogue and its price
history are read once, when the validator is made, so it can check millions of rows.
`retention.sales.merge` writes the valid records.
"""

from __future__ import annotations

import bisect
import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from retention.sales.models import Bundle, Course, PriceChange

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


FUTURE_TOLERANCE = timedelta(minutes=5)


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

    def __init__(self, *, offerings: dict[str, Offering], currency: str, zone: tzinfo,
                 future: str = "warn", now: datetime | None = None):
        self.offerings = offerings
        self.currency = currency.upper()
        self.zone = zone
        self._items_cache: dict[str, tuple] = {}
        # An order dated after this (a few minutes of clock difference allowed) is in the
        # future: warned about and imported, or refused (RETENTION_IMPORT_FUTURE_ORDERS).
        self.future_after = (now or datetime.now(UTC)) + FUTURE_TOLERANCE
        self.refuse_future = future == "refuse"
        # Warnings about valid rows since the caller last took them (take_warnings).
        self.warnings: list[RowError] = []

    def take_warnings(self) -> list[RowError]:
        warnings, self.warnings = self.warnings, []
        return warnings

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
            future=settings.RETENTION_IMPORT_FUTURE_ORDERS,
        )

    def validate(self, row: dict[str, str], line: int) -> tuple[OrderRecord | None, list[RowError]]:
        """Return the row as a record, or None and every problem found in it.

        This runs once per row of files with millions of rows, so it reads each
        column once and caches what repeats across rows (emails, item lists). It is one
        function of about 90 lines on purpose: the checks of the ten columns, in the order
        their messages are reported, and a call per column would cost a few microseconds a
        row on the import's busiest path.
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

        if ordered_at is not None and ordered_at > self.future_after:
            shown = ordered_at.astimezone(self.zone).isoformat(sep=" ", timespec="minutes")
            if self.refuse_future:
                errors.append(RowError(line, "ordered_at", f"dated in the future ({shown})"))
            else:
                self.warnings.append(RowError(
                    line, "ordered_at", f"warning: dated in the future ({shown}); imported "
                    "(RETENTION_IMPORT_FUTURE_ORDERS=refuse refuses such rows)"))

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
