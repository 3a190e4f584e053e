"""The nightly life of lots: pending points released, expiring ones warned of, expired ones
taken, each in set-based SQL and safe to run twice (the entries' keys).

- `release(day)`: lots whose refund window has passed become available;
- `warn(day)`: one email per customer and expiry date, the program's warning days before;
- `expire(day)`: each lot past its expiry date gives its remaining points to an expiry
  entry keyed by the lot, so rerunning a night expires nothing twice;
- `switched(program)`: when expiry is switched on, the lots already held get their
  dates one full period later than that day, so nothing expires at once.
"""

from __future__ import annotations

from datetime import date, timedelta

from django.db import connection, transaction
from django.db.models import DateField, F, Sum, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from loyalty import ledger
from loyalty.models import Account, Draw, Entry, Program
from loyalty.sql import AddDays, lock_accounts
from retention.mail import outbox
from retention.mail.models import OutboxMessage, Topic

ENTRIES, ACCOUNTS, DRAWS = Entry._meta.db_table, Account._meta.db_table, Draw._meta.db_table


def release(day: date) -> int:
    """Make available the pending lots whose day has come; returns how many."""
    program = Program.current()
    with transaction.atomic():
        due = (f"SELECT account_id FROM {ENTRIES} WHERE status = 'pending' AND remaining > 0 "
               "AND available_on <= %s")
        lock_accounts(due, [day])
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE TEMPORARY TABLE loyalty_released AS {due}", [day])
            expires = "expires_on"
            params: list = [day]
            if program.expiry_days:
                expires = "COALESCE(expires_on, %s)"
                params = [ledger.expiry_of(day, program), day]
            cursor.execute(
                f"UPDATE {ENTRIES} SET status = 'available', expires_on = {expires} "
                "WHERE status = 'pending' AND remaining > 0 AND available_on <= %s", params)
            released = max(cursor.rowcount, 0)
            ledger.refresh("SELECT account_id FROM loyalty_released")
            cursor.execute("DROP TABLE loyalty_released")
    return released


def expire(day: date) -> int:
    """Expire what is left of every lot whose expiry date is on or before `day`."""
    due = (f"SELECT id FROM {ENTRIES} WHERE remaining > 0 AND status = 'available' "
           "AND expires_on IS NOT NULL AND expires_on <= %s")
    with transaction.atomic():
        lock_accounts(f"SELECT account_id FROM {ENTRIES} WHERE id IN ({due})", [day])
        with connection.cursor() as cursor:
            cursor.execute(
                f"""INSERT INTO {ENTRIES} (account_id, kind, points, status, reason, source,
                        source_ref, rule_id, key, created_at, earned_on, available_on,
                        expires_on, remaining, shortfall)
                    SELECT account_id, 'expire', -remaining, 'available',
                        'Expired: points from ' || available_on, 'program', key, NULL,
                        'expire:' || id, %s, %s, NULL, NULL, 0, 0
                    FROM {ENTRIES} WHERE id IN ({due})
                    ON CONFLICT (key) DO NOTHING""",
                [timezone.now(), day, day])
            expired = max(cursor.rowcount, 0)
            if not expired:
                return 0
            cursor.execute(
                f"""INSERT INTO {DRAWS} (debit_id, lot_id, points)
                    SELECT x.id, lot.id, lot.remaining FROM {ENTRIES} lot
                    JOIN {ENTRIES} x ON x.key = 'expire:' || lot.id
                    WHERE lot.id IN ({due})""", [day])
            cursor.execute(f"CREATE TEMPORARY TABLE loyalty_expired AS "
                           f"SELECT DISTINCT account_id FROM {ENTRIES} WHERE id IN ({due})", [day])
            cursor.execute(f"UPDATE {ENTRIES} SET remaining = 0 WHERE id IN ({due})", [day])
            ledger.refresh("SELECT account_id FROM loyalty_expired")
            cursor.execute("DROP TABLE loyalty_expired")
    return expired


def warn(day: date) -> int:
    """Queue the expiry warnings due today: points expiring in the next warning days, one
    email per customer and date (sent once, whatever the reruns)."""
    program = Program.current()
    if not program.expiry_days or not program.expiry_warning_days:
        return 0
    horizon = day + timedelta(days=program.expiry_warning_days)
    rows = (Entry.objects.filter(remaining__gt=0, status=Entry.Status.AVAILABLE,
                                 expires_on__gt=day, expires_on__lte=horizon,
                                 account__held_out=False)
            .values("account_id", "expires_on").annotate(points=Sum("remaining"))
            .order_by("account_id", "expires_on"))
    queued, account = 0, None
    for row in rows.iterator(chunk_size=1000):
        if account is None or account.pk != row["account_id"]:
            account = Account.objects.select_related("customer").get(pk=row["account_id"])
        outbox.queue(
            account.customer, template="email/loyalty_expiry_warning", purpose="loyalty expiry",
            kind=OutboxMessage.Kind.MARKETING, topic=Topic.LOYALTY,
            key=f"loyalty-expiry:{account.pk}:{row['expires_on']}",
            context={"points": row["points"], "expires_on": row["expires_on"],
                     "available": account.available})
        queued += 1
    return queued


def switched(program: Program) -> None:
    """Expiry was switched on, off, or given another length: date the lots still held.

    A lot expires the program's days after it became available, and never sooner than
    that long after expiry was switched on (`Program.expiry_enabled_on`), so switching it on
    expires nothing at once: the first expiry comes one full period later.
    """
    held = Entry.objects.filter(remaining__gt=0)
    if not program.expiry_days:
        held.exclude(expires_on=None).update(expires_on=None)
        return
    start = Greatest(Coalesce(F("available_on"), Value(program.expiry_enabled_on)),
                     Value(program.expiry_enabled_on), output_field=DateField())
    held.update(expires_on=AddDays(start, program.expiry_days))
