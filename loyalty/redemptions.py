"""Redeeming a reward: points debited, a single-use coupon code issued, the code emailed.

`redeem` runs in one transaction with the customer's account row locked, so two
redemptions racing for the last points of a balance are served one after the other and
the second is refused; a reward's stock is taken by one conditional UPDATE, so two
customers racing for its last unit cannot both have it. No code exists without its debit:
both are written in the same transaction, or neither. The same key again returns the
first redemption and changes nothing.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from loyalty import ledger
from loyalty.models import Entry, Redemption, Reward
from retention.mail import outbox
from retention.mail.models import OutboxMessage
from retention.sales.models import Customer

# No 0/O, 1/I/L: codes are read aloud and typed from emails.
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


class RedemptionRefused(ledger.LedgerError):
    def __init__(self, code: str, detail: str):
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class Redeemed:
    redemption: Redemption
    created: bool


def new_code() -> str:
    """A coupon code: 12 random characters (about 59 bits), in groups of four."""
    raw = "".join(secrets.choice(ALPHABET) for _ in range(12))
    return f"R-{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def available_rewards(on=None):
    day = on or ledger.today()
    return Reward.objects.filter(active=True).filter(
        Q(valid_from__isnull=True) | Q(valid_from__lte=day),
        Q(valid_until__isnull=True) | Q(valid_until__gte=day),
    ).exclude(stock=0)


def redeem(customer: Customer, reward: Reward, *, key: str) -> Redeemed:
    """Spend the customer's points on `reward`; raises RedemptionRefused with the API's code
    (insufficient_points, out_of_stock, limit_reached, reward_unavailable)."""
    if (existing := Redemption.objects.filter(key=key).first()) is not None:
        return Redeemed(existing, created=False)
    with transaction.atomic():
        account = ledger.account_of(customer, lock=True)
        # A call with the same key may have committed while this one waited for the lock.
        if (existing := Redemption.objects.filter(key=key).first()) is not None:
            return Redeemed(existing, created=False)
        reward = Reward.objects.get(pk=reward.pk)
        day = ledger.today()
        if not reward.active or (reward.valid_from and reward.valid_from > day) or (
                reward.valid_until and reward.valid_until < day):
            raise RedemptionRefused("reward_unavailable", f"{reward.title} cannot be redeemed now.")
        if account.held_out or account.available < reward.points:
            raise RedemptionRefused(
                "insufficient_points",
                f"{reward.title} costs {reward.points} points; {account.available} are available.")
        if reward.per_customer_limit is not None and Redemption.objects.filter(
                account=account, reward=reward).count() >= reward.per_customer_limit:
            raise RedemptionRefused(
                "limit_reached", f"{reward.title} can be redeemed {reward.per_customer_limit} "
                                 "time(s) per customer.")
        if reward.stock is not None and not Reward.objects.filter(
                pk=reward.pk, stock__gt=0).update(stock=F("stock") - 1):
            raise RedemptionRefused("out_of_stock", f"{reward.title} is out of stock.")
        entry = ledger.debit(account, reward.points, kind=Entry.Kind.REDEEM,
                             reason=f"Redeemed: {reward.title}", source=Entry.Source.REWARD,
                             source_ref=reward.code, key=f"redeem:{key}")
        now = timezone.now()
        redemption = Redemption.objects.create(
            account=account, reward=reward, points=reward.points, entry=entry,
            coupon_code=new_code(), key=key, created_at=now,
            expires_at=now + timedelta(days=reward.code_valid_days))
        redemption.available_after = account.available
        outbox.queue(customer, template="email/loyalty_redemption", purpose="loyalty redemption",
                     kind=OutboxMessage.Kind.TRANSACTIONAL, key=f"loyalty-redemption:{redemption.pk}",
                     context={"reward": reward.title, "code": redemption.coupon_code,
                              "expires_at": redemption.expires_at, "points": reward.points,
                              "available": account.available})
    return Redeemed(redemption, created=True)


redeem.alters_data = True


def available_after(redemption: Redemption) -> int:
    """The balance the redemption left (kept on a fresh redemption; read back otherwise)."""
    if hasattr(redemption, "available_after"):
        return redemption.available_after
    from django.db.models import Sum

    entry = redemption.entry
    return Entry.objects.filter(
        account_id=redemption.account_id, status=Entry.Status.AVAILABLE).filter(
        Q(created_at__lt=entry.created_at) | Q(created_at=entry.created_at, pk__lte=entry.pk)
    ).aggregate(s=Sum("points", default=0))["s"]
