"""The proof that balances are right, and what the points still held are worth.

`reconcile()` compares every account's cached balances with its ledger's sums and every
lot's remaining points with its points less its draws, in a few set-based queries, and
values the outstanding points: at the program's cost per point, less the share that
history says will never be spent (breakage: points expired over points expired or
redeemed). `loyalty_reconcile` prints it, and the nightly step records it.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from django.db import connection
from django.db.models import Count, Sum

from loyalty.models import Account, Draw, Entry, Program

ACCOUNTS, ENTRIES, DRAWS = Account._meta.db_table, Entry._meta.db_table, Draw._meta.db_table


def _one(sql: str, params=()) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.fetchone()[0] or 0)


def mismatched_accounts() -> int:
    return _one(
        f"""SELECT COUNT(*) FROM {ACCOUNTS} a LEFT JOIN (
                SELECT account_id,
                    SUM(CASE WHEN status = 'available' THEN points ELSE 0 END) AS available,
                    SUM(CASE WHEN status = 'pending' THEN points ELSE 0 END) AS pending
                FROM {ENTRIES} GROUP BY account_id) s ON s.account_id = a.id
            WHERE a.available <> COALESCE(s.available, 0) OR a.pending <> COALESCE(s.pending, 0)""")


def inconsistent_lots() -> int:
    """Lots whose remaining is not their points less what was drawn from them."""
    return _one(
        f"""SELECT COUNT(*) FROM {ENTRIES} lot LEFT JOIN (
                SELECT lot_id, SUM(points) AS drawn FROM {DRAWS} GROUP BY lot_id) d
                ON d.lot_id = lot.id
            WHERE lot.points > 0 AND lot.kind IN ('earn', 'adjust')
              AND lot.remaining <> lot.points - COALESCE(d.drawn, 0)
              AND NOT (lot.remaining = 0 AND lot.status = 'pending')""")


def negative_lots() -> int:
    """Lots below zero: a negative remaining, or more drawn from them than they held."""
    return _one(
        f"""SELECT COUNT(*) FROM {ENTRIES} lot LEFT JOIN (
                SELECT lot_id, SUM(points) AS drawn FROM {DRAWS} GROUP BY lot_id) d
                ON d.lot_id = lot.id
            WHERE lot.remaining < 0 OR (lot.points > 0 AND COALESCE(d.drawn, 0) > lot.points)""")


def breakage_rate() -> Decimal:
    """Points expired over points expired or redeemed, over the whole history (0 without
    any)."""
    totals = Entry.objects.filter(kind__in=[Entry.Kind.EXPIRE, Entry.Kind.REDEEM]).values(
        "kind").annotate(points=Sum("points"))
    by_kind = {row["kind"]: -row["points"] for row in totals}
    expired, redeemed = by_kind.get(Entry.Kind.EXPIRE, 0), by_kind.get(Entry.Kind.REDEEM, 0)
    if expired + redeemed == 0:
        return Decimal("0")
    return Decimal(expired) / Decimal(expired + redeemed)


def reconcile() -> dict:
    program = Program.current()
    accounts = Account.objects.aggregate(n=Count("id"), available=Sum("available", default=0),
                                         pending=Sum("pending", default=0))
    points = int(accounts["available"]) + int(accounts["pending"])
    rate = breakage_rate()
    breakage = int((Decimal(points) * rate).quantize(Decimal("1"), rounding=ROUND_HALF_UP))
    value = (Decimal(points - breakage) * program.point_value).quantize(
        Decimal("0.01"), rounding=ROUND_HALF_UP)
    return {
        "accounts": accounts["n"],
        "entries": Entry.objects.count(),
        "mismatched_accounts": mismatched_accounts(),
        "negative_lots": negative_lots(),
        "inconsistent_lots": inconsistent_lots(),
        "liability": {"points": points, "value": f"{value:.2f}",
                      "expected_breakage_points": breakage,
                      "breakage_rate": f"{rate * 100:.1f}"},
    }


def is_sound(report: dict) -> bool:
    return not (report["mismatched_accounts"] or report["negative_lots"]
                or report["inconsistent_lots"])
