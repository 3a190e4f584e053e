"""Tiers: judged every night on the points earned (or the money spent) over the last 12
months, never on the balance.

`evaluate(day)` sets every account's qualifying amount in one UPDATE, then moves
customers up at once, and down only after the program's grace period: a customer who
falls below their tier's threshold keeps it until `grace_until`, is emailed that they are
about to move down, and moves down then unless they have earned it back. Each move is
emailed once (the outbox's key names the account, the tier and the day).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from django.db import connection, transaction
from django.db.models import Sum

from loyalty.models import Account, Entry, Program, Tier
from loyalty.sql import end_of, start_of
from retention.mail import outbox
from retention.mail.models import OutboxMessage, Topic
from retention.sales.models import Order

WINDOW_DAYS = 365


@dataclass
class Moves:
    up: int = 0
    warned: int = 0
    down: int = 0
    kept: int = 0


def window_start(day: date) -> date:
    return day - timedelta(days=WINDOW_DAYS - 1)


def qualifying_sql(program: Program) -> str:
    """SQL of one account's qualifying amount over the window (%(start)s … %(end)s)."""
    if program.tier_basis == "spend":
        return (f"COALESCE((SELECT FLOOR(SUM(o.amount)) FROM {Order._meta.db_table} o "
                f"WHERE o.customer_id = {Account._meta.db_table}.customer_id AND o.status = 'paid' "
                "AND o.ordered_at >= %(from)s AND o.ordered_at < %(until)s), 0)")
    return (f"COALESCE((SELECT SUM(e.points) FROM {Entry._meta.db_table} e "
            f"WHERE e.account_id = {Account._meta.db_table}.id AND e.kind IN ('earn', 'reverse') "
            "AND e.earned_on >= %(start)s AND e.earned_on <= %(end)s), 0)")


def evaluate(day: date, program: Program | None = None) -> Moves:
    program = program or Program.current()
    accounts, tiers = Account._meta.db_table, Tier._meta.db_table
    params = {"start": window_start(day), "end": day, "from": start_of(window_start(day)),
              "until": end_of(day)}
    moves = Moves()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {accounts} SET tier_qualifying = CAST({qualifying_sql(program)} AS integer) "
                "WHERE held_out = %(no)s", {**params, "no": False})
        if not Tier.objects.exists():
            return moves
        target = (f"(SELECT t.id FROM {tiers} t WHERE t.threshold <= {accounts}.tier_qualifying "
                  "ORDER BY t.threshold DESC LIMIT 1)")
        rank = f"(SELECT t.threshold FROM {tiers} t WHERE t.id = {accounts}.tier_id)"
        with connection.cursor() as cursor:
            # Up (or into a first tier): at once.
            cursor.execute(
                f"SELECT id, {target} FROM {accounts} WHERE held_out = %s AND {target} IS NOT NULL "
                f"AND (tier_id IS NULL OR (SELECT t.threshold FROM {tiers} t WHERE t.id = {target}) "
                f"> {rank})", [False])
            ups = cursor.fetchall()
            # Back above the threshold during the grace period: the warning is lifted.
            cursor.execute(
                f"UPDATE {accounts} SET grace_until = NULL WHERE grace_until IS NOT NULL AND "
                f"tier_id IS NOT NULL AND tier_qualifying >= {rank}")
            moves.kept = max(cursor.rowcount, 0)
            # Below the tier's threshold: warned first, down once the grace period is over.
            cursor.execute(
                f"SELECT id, {target}, grace_until FROM {accounts} WHERE held_out = %s AND "
                f"tier_id IS NOT NULL AND tier_qualifying < {rank}", [False])
            below = cursor.fetchall()
        for account_id, tier_id in ups:
            Account.objects.filter(pk=account_id).update(tier_id=tier_id, tier_since=day,
                                                         grace_until=None)
            _email(account_id, "email/loyalty_tier_up", f"up:{tier_id}", day)
            moves.up += 1
        grace_until = day + timedelta(days=program.tier_grace_days)
        for account_id, tier_id, grace in below:
            if grace is None and program.tier_grace_days:
                Account.objects.filter(pk=account_id).update(grace_until=grace_until)
                _email(account_id, "email/loyalty_tier_down_warning", f"warn:{grace_until}", day)
                moves.warned += 1
            elif grace is None or grace <= day:
                Account.objects.filter(pk=account_id).update(tier_id=tier_id, tier_since=day,
                                                             grace_until=None)
                moves.down += 1
    return moves


def _email(account_id: int, template: str, what: str, day: date) -> None:
    account = Account.objects.select_related("customer", "tier").get(pk=account_id)
    progress = progress_of(account, day)
    outbox.queue(account.customer, template=template, purpose="loyalty tier",
                 kind=OutboxMessage.Kind.MARKETING, topic=Topic.LOYALTY,
                 key=f"loyalty-tier:{account_id}:{what}",
                 context={**progress, "tier": account.tier.title if account.tier else "",
                          "tier_benefits": [line.strip() for line in (
                              account.tier.benefits.splitlines() if account.tier else [])
                              if line.strip()],
                          "grace_until": account.grace_until})


def progress_of(account: Account, day: date) -> dict:
    """What the customer needs to reach the next tier and to keep theirs (API and page).

    `next_tier`: the next tier up and what is still needed for it. `keep_tier`: for a
    customer with a tier above the lowest, what they must earn by when: during a grace
    period, the shortfall by its end; otherwise, the amount that will have left the
    12-month window by the date it first drops below the threshold, if it does so within
    the coming 12 months.
    """
    program = Program.current()
    qualifying = account.tier_qualifying
    tiers = list(Tier.objects.all())
    current = next((t for t in tiers if t.pk == account.tier_id), None)
    above = [t for t in tiers if t.threshold > (current.threshold if current else -1)]
    next_tier = ({"code": above[0].code, "title": above[0].title,
                  "needed": max(0, above[0].threshold - qualifying)} if above else None)
    keep = None
    if current is not None and current.threshold > 0:
        if account.grace_until:
            keep = {"needed": max(0, current.threshold - qualifying), "by": account.grace_until}
        elif program.tier_basis == "points":
            keep = _keep_by_points(account, current, day)
    return {"qualifying": qualifying, "basis": program.tier_basis, "next_tier": next_tier,
            "keep_tier": keep, "tier": current}


def _keep_by_points(account: Account, tier: Tier, day: date) -> dict | None:
    """The first day the window's sum drops below the threshold as earnings age out, and by
    how much (the customer must earn that by then to keep the tier)."""
    by_day = (Entry.objects.filter(account=account, kind__in=[Entry.Kind.EARN, Entry.Kind.REVERSE],
                                   earned_on__gte=window_start(day), earned_on__lte=day)
              .values("earned_on").annotate(s=Sum("points")).order_by("earned_on"))
    total = sum(row["s"] for row in by_day)
    for row in by_day:
        total -= row["s"]
        if total < tier.threshold:
            return {"needed": tier.threshold - total,
                    "by": row["earned_on"] + timedelta(days=WINDOW_DAYS - 1)}
    return None
