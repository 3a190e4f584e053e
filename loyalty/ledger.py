"""The points ledger: every change to a balance is an entry, and nothing else changes one.

Credits (points earned, and credits by staff) are **lots**: each remembers how many of its
points are still `remaining`, when it becomes available (points from an order stay pending
for the program's refund window) and when it expires. A debit (a redemption, an expiry, a
reversal, a debit by staff) draws on the available lots, oldest first, and records each
draw, so that a lot's remaining is its points less its draws, and an account's available
balance is the sum of its available entries, which is also the sum of its lots' remaining.

Single events go through `credit` and `debit`, with the account's row locked for the
debit, so two debits racing for one balance are served one after the other; the bulk paths
(earning from a whole import, releasing, expiring) are set-based and live in
loyalty/earning.py and loyalty/expiry.py, which end with `refresh` of the accounts they
touched. Every entry has a unique key: writing the same event twice writes it once.

    account = ledger.account_of(customer)
    ledger.adjust(customer, -50, reason="Goodwill reversed", key="ticket-12-undo", by=user)
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, Q, Sum
from django.utils import timezone

from loyalty.models import Account, Draw, Entry, Program
from retention.sales.models import Customer

Kind, Status, Source = Entry.Kind, Entry.Status, Entry.Source
CREDITS = (Kind.EARN, Kind.ADJUST)


class LedgerError(Exception):
    """A change the ledger refuses; `code` is the API's stable name for it."""

    code = "refused"


class InsufficientPoints(LedgerError):
    code = "insufficient_points"


_DAY: ContextVar[date | None] = ContextVar("loyalty_day", default=None)


def today() -> date:
    """The ledger's day: the business's today, or the day `on_day` sets (seed_demo's as-of)."""
    return _DAY.get() or timezone.localdate()


@contextmanager
def on_day(day: date) -> Iterator[None]:
    """Write entries as on `day` (pending windows, expiry dates, earned days)."""
    token = _DAY.set(day)
    try:
        yield
    finally:
        _DAY.reset(token)


# Accounts -------------------------------------------------------------------------------------


def holdout_bucket(customer_id: int) -> int:
    """0–99, stable for a customer and unguessable from outside (keyed by the secret): a
    customer is held out when their bucket is below the program's holdout percent."""
    digest = hashlib.blake2b(str(customer_id).encode(), digest_size=4,
                             key=settings.SECRET_KEY.encode()[:64]).digest()
    return int.from_bytes(digest, "big") % 100


def account_of(customer: Customer, *, lock: bool = False) -> Account:
    """The customer's account, opened the first time it is needed."""
    queryset = Account.objects.select_for_update() if lock else Account.objects
    account = queryset.filter(customer=customer).first()
    if account is not None:
        return account
    try:
        with transaction.atomic():
            Account.objects.create(
                customer=customer, created_at=timezone.now(),
                held_out=holdout_bucket(customer.pk) < Program.current().holdout_percent)
    except IntegrityError:
        pass  # opened by a concurrent call
    return queryset.get(customer=customer)


def open_accounts(customer_ids_sql: str, params: list | tuple = ()) -> int:
    """Open an account, in one statement, for each customer the SQL selects that has none.

    Holdout buckets are given in Python for the new ones only (a few bytes each); returns
    how many were opened.
    """
    table, customers = Account._meta.db_table, Customer._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT c.id FROM {customers} c WHERE c.id IN ({customer_ids_sql}) AND NOT EXISTS "
            f"(SELECT 1 FROM {table} a WHERE a.customer_id = c.id)", params)
        new = [row[0] for row in cursor.fetchall()]
    if not new:
        return 0
    percent, now = Program.current().holdout_percent, timezone.now()
    Account.objects.bulk_create(
        [Account(customer_id=pk, created_at=now, held_out=holdout_bucket(pk) < percent)
         for pk in new], batch_size=5000, ignore_conflicts=True)
    return len(new)


def refresh(account_ids_sql: str, params: list | tuple = ()) -> None:
    """Set the cached balances of the accounts the SQL selects to their ledger's sums."""
    accounts, entries = Account._meta.db_table, Entry._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One aggregate over the accounts' entries, joined: the correlated form below
            # reads each account's entries three times, slow for a large import's accounts.
            cursor.execute(
                f"""UPDATE {accounts} SET available = s.available, pending = s.pending,
                        lifetime_earned = s.lifetime_earned
                    FROM (SELECT a.id,
                        COALESCE(SUM(CASE WHEN e.status = 'available' THEN e.points END), 0)
                            AS available,
                        COALESCE(SUM(CASE WHEN e.status = 'pending' THEN e.points END), 0)
                            AS pending,
                        COALESCE(SUM(CASE WHEN e.kind IN ('earn', 'reverse') THEN e.points END),
                            0) AS lifetime_earned
                        FROM {accounts} a LEFT JOIN {entries} e ON e.account_id = a.id
                        WHERE a.id IN ({account_ids_sql}) GROUP BY a.id) s
                    WHERE {accounts}.id = s.id""", params)
            return
        cursor.execute(
            f"""UPDATE {accounts} SET
                available = COALESCE((SELECT SUM(e.points) FROM {entries} e
                    WHERE e.account_id = {accounts}.id AND e.status = 'available'), 0),
                pending = COALESCE((SELECT SUM(e.points) FROM {entries} e
                    WHERE e.account_id = {accounts}.id AND e.status = 'pending'), 0),
                lifetime_earned = COALESCE((SELECT SUM(e.points) FROM {entries} e
                    WHERE e.account_id = {accounts}.id AND e.kind IN ('earn', 'reverse')), 0)
                WHERE id IN ({account_ids_sql})""", params)


def refresh_one(account: Account) -> None:
    refresh("%s", [account.pk])
    account.refresh_from_db(fields=["available", "pending", "lifetime_earned"])


# Single events ------------------------------------------------------------------------------


def _existing(key: str) -> Entry | None:
    return Entry.objects.filter(key=key).first()


def credit(account: Account, points: int, *, kind: str, reason: str, source: str, key: str,
           source_ref: str = "", rule=None, pending_until: date | None = None,
           earned_on: date | None = None) -> Entry:
    """Add a lot of `points` (> 0) to `account`, once per `key`; pending until
    `pending_until` when given (and later than today)."""
    if points <= 0:
        raise ValueError("a credit is a positive number of points")
    if (entry := _existing(key)) is not None:
        return entry
    day = today()
    pending = pending_until is not None and pending_until > day
    available_on = pending_until if pending else day
    entry = Entry(account=account, kind=kind, points=points, reason=reason[:200], source=source,
                  source_ref=source_ref[:100], rule=rule, key=key, created_at=timezone.now(),
                  earned_on=earned_on or day, status=Status.PENDING if pending else Status.AVAILABLE,
                  available_on=available_on, expires_on=expiry_of(available_on),
                  remaining=points)
    try:
        with transaction.atomic():
            entry.save()
            field = "pending" if pending else "available"
            changes = {field: F(field) + points}
            if kind == Kind.EARN:
                changes["lifetime_earned"] = F("lifetime_earned") + points
            Account.objects.filter(pk=account.pk).update(**changes)
    except IntegrityError:
        return Entry.objects.get(key=key)  # the same event, written by a concurrent call
    return entry


def debit(account: Account, points: int, *, kind: str, reason: str, source: str, key: str,
          source_ref: str = "") -> Entry:
    """Take `points` (> 0) from the available lots of `account`, oldest first, once per `key`.

    Call inside a transaction; the account's row is locked here until it commits, so
    debits of one account wait for each other. Raises InsufficientPoints.
    """
    if points <= 0:
        raise ValueError("a debit is a positive number of points")
    locked = Account.objects.select_for_update().get(pk=account.pk)
    if (entry := _existing(key)) is not None:
        return entry
    if locked.available < points:
        raise InsufficientPoints(
            f"{points} points asked for, {locked.available} available")
    entry = Entry.objects.create(
        account=account, kind=kind, points=-points, reason=reason[:200], source=source,
        source_ref=source_ref[:100], key=key, created_at=timezone.now(), earned_on=today())
    _draw(entry, account, points)
    Account.objects.filter(pk=account.pk).update(available=F("available") - points)
    account.available = locked.available - points
    return entry


def _draw(entry: Entry, account: Account, points: int) -> None:
    lots = (Entry.objects.select_for_update()
            .filter(account=account, status=Status.AVAILABLE, remaining__gt=0)
            .order_by("available_on", "id").only("id", "remaining"))
    left, draws = points, []
    for lot in lots.iterator(chunk_size=100):
        take = min(left, lot.remaining)
        draws.append(Draw(debit=entry, lot=lot, points=take))
        Entry.objects.filter(pk=lot.pk).update(remaining=F("remaining") - take)
        left -= take
        if not left:
            break
    if left:  # the cached balance said there was enough: the ledger disagrees
        raise LedgerError(f"account {account.pk}: the lots hold {points - left} of {points}")
    Draw.objects.bulk_create(draws)


@dataclass(frozen=True)
class Adjustment:
    entry: Entry
    created: bool


def adjust(customer: Customer, points: int, *, reason: str, key: str, by: str) -> Adjustment:
    """A credit or debit by staff or the platform (`by` says who), once per key."""
    if points == 0:
        raise ValueError("an adjustment of 0 points changes nothing")
    if (entry := _existing(key)) is not None:
        return Adjustment(entry, created=False)
    with transaction.atomic():
        account = account_of(customer)
        if points > 0:
            entry = credit(account, points, kind=Kind.ADJUST, reason=reason, source=Source.STAFF,
                           source_ref=by, key=key)
        else:
            entry = debit(account, -points, kind=Kind.ADJUST, reason=reason,
                          source=Source.STAFF, source_ref=by, key=key)
    return Adjustment(entry, created=True)


adjust.alters_data = True


# Dates ----------------------------------------------------------------------------------------


def expiry_of(available_on: date, program: Program | None = None) -> date | None:
    """When a lot available from `available_on` expires (None: expiry is off). Never sooner
    than one full period after expiry was switched on."""
    program = program or Program.current()
    if not program.expiry_days:
        return None
    start = max(available_on, program.expiry_enabled_on or available_on)
    return start + timedelta(days=program.expiry_days)


# Reading --------------------------------------------------------------------------------------


def expiring(account: Account, *, limit: int = 12) -> list[dict]:
    """The account's points still to expire, by date, soonest first."""
    rows = (Entry.objects.filter(account=account, remaining__gt=0, expires_on__isnull=False)
            .values("expires_on").annotate(points=Sum("remaining")).order_by("expires_on"))
    return [{"points": row["points"], "on": row["expires_on"]} for row in rows[:limit]]


def lots(account: Account) -> list[Entry]:
    """The lots still holding points, oldest first (pending ones included)."""
    return list(Entry.objects.filter(account=account, remaining__gt=0)
                .filter(Q(kind=Kind.EARN) | Q(kind=Kind.ADJUST))
                .order_by("available_on", "id"))


def ledger_sums(account_ids=None) -> dict:
    """Per account: the sums its ledger gives, to compare with the cached balances."""
    queryset = Entry.objects.all()
    if account_ids is not None:
        queryset = queryset.filter(account_id__in=account_ids)
    return {row["account_id"]: row for row in queryset.values("account_id").annotate(
        available=Sum("points", filter=Q(status=Status.AVAILABLE), default=0),
        pending=Sum("points", filter=Q(status=Status.PENDING), default=0),
        entries=Count("id"))}
