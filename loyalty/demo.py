"""Loyalty's part of `seed_demo`: a believable program on the demo business's two years.

Connected to retention's demo signals (loyalty/apps.py): on `seeded`, the program's
settings, its rules, three tiers and five rewards are created, every demo order earns
through the same set-based path as an import, the demo's referrals are recorded and
rewarded, some customers redeem (deterministically, from the seed), points older than a
year expire, and the tiers are judged as on the as-of night. On `replacing`, loyalty's
rows go first, since they refer to the customers.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import numpy as np
from django.db.models import F

from loyalty import earning, expiry, ledger, redemptions, referrals, tiers
from loyalty.models import Account, Draw, Entry, Program, Redemption, Referral, Reward, Rule, Tier
from retention.sales.models import Course, Customer, Order


def delete(**kwargs) -> None:
    """Loyalty's rows, children first (the program's settings stay)."""
    for model in (Redemption, Draw, Referral, Entry, Account, Reward, Rule, Tier):
        model.objects.all().delete()


def build(*, as_of: date, seed: int, **kwargs) -> None:
    rng = np.random.default_rng(seed + 7)
    program = Program.current()
    program.name = "Learning Rewards"
    program.point_value = Decimal("0.10")
    program.holdout_percent = 10
    program.expiry_days = 540
    program.save()
    # The demo's accounts were opened by its imports before the program had a holdout.
    held_out = [pk for pk in Account.objects.values_list("customer_id", flat=True)
                if ledger.holdout_bucket(pk) < program.holdout_percent]
    Account.objects.filter(customer_id__in=held_out).update(held_out=True)
    # Expiry has been on since before the demo's history began.
    Program.objects.filter(pk=program.pk).update(expiry_enabled_on=as_of - timedelta(days=800))
    program.refresh_from_db()
    _rules(as_of)
    _tiers()
    _rewards()
    # Two years of orders, earned as the imports would have earned them, judged on as_of.
    with ledger.on_day(as_of):
        earning.earn_for_orders(Order.objects.all(), program=program)
        _referrals(as_of, rng)
        referrals.reward_referrers(as_of, program)
        _redemptions(rng, as_of)
        expiry.expire(as_of)
        tiers.evaluate(as_of, program)


def _rules(as_of: date) -> None:
    Rule.objects.bulk_create([
        Rule(code="points-per-rand", title="1 point per rand spent", kind=Rule.Kind.PER_AMOUNT,
             points=1),
        Rule(code="bundle-bonus", title="Bundle bonus", kind=Rule.Kind.BUNDLE, points=500),
        Rule(code="new-subject", title="A first course in a new subject",
             kind=Rule.Kind.FIRST_IN_CATEGORY, points=300, use_tier_multiplier=False),
        Rule(code="course-completed", title="Course completed", kind=Rule.Kind.COURSE_COMPLETED,
             points=200, cap=1000, cap_period=Rule.Period.YEAR),
        Rule(code="survey-answered", title="Thank you for your feedback",
             kind=Rule.Kind.SURVEY_ANSWERED, points=50, cap=200, cap_period=Rule.Period.YEAR,
             use_tier_multiplier=False),
        Rule(code="birthday", title="Happy birthday", kind=Rule.Kind.BIRTHDAY, points=250,
             use_tier_multiplier=False),
    ])


def _tiers() -> None:
    Tier.objects.bulk_create([
        Tier(code="member", title="Member", threshold=0,
             benefits="1 point per rand spent\nMember prices on bundles"),
        Tier(code="silver", title="Silver", threshold=5000, multiplier=Decimal("1.25"),
             discount_percent=5, early_access_days=3,
             benefits="1.25 points per rand\n5 % off every course\nNew courses 3 days early"),
        Tier(code="gold", title="Gold", threshold=12000, multiplier=Decimal("1.5"),
             discount_percent=10, early_access_days=7,
             benefits="1.5 points per rand\n10 % off every course\nNew courses a week early"),
    ])


def _rewards() -> None:
    free = Course.objects.filter(level="beginner").order_by("price", "code").first()
    Reward.objects.bulk_create([
        Reward(code="bonus-workbook", title="Exclusive workbook: Excel shortcuts",
               kind=Reward.Kind.CONTENT, points=1000),
        Reward(code="ten-percent-off", title="10 % off your next course",
               kind=Reward.Kind.PERCENT_OFF, value=Decimal("10"), points=2000),
        Reward(code="bundle-fifteen", title="15 % off a bundle", kind=Reward.Kind.BUNDLE_DISCOUNT,
               value=Decimal("15"), points=4000),
        Reward(code="r500-off", title="R500 off your next course", kind=Reward.Kind.AMOUNT_OFF,
               value=Decimal("500"), points=5000, per_customer_limit=2),
        Reward(code="free-course", title=f"A free course: {free.title}" if free else "A free course",
               kind=Reward.Kind.FREE_COURSE, course=free, points=10000, stock=25,
               per_customer_limit=1),
    ])


def _referrals(as_of: date, rng) -> None:
    referred = Customer.objects.filter(referred_by__isnull=False).select_related(
        "referred_by").order_by("pk")
    for customer in referred.iterator():
        account = Account.objects.filter(customer=customer.referred_by).first()
        if account is None:
            continue
        code = referrals.code_of(account)
        referrals.record(code, customer, key=f"demo-referral:{customer.pk}")
    # Their welcome points come with their first order (already imported): earn again.
    earning.earn_for_orders(Order.objects.filter(customer__referred_by__isnull=False))


def _redemptions(rng, as_of: date) -> None:
    rewards = list(Reward.objects.order_by("points"))
    rich = list(Account.objects.filter(available__gte=rewards[0].points, held_out=False)
                .select_related("customer").order_by("pk"))
    for account in rich:
        if rng.random() > 0.3:
            continue
        affordable = [r for r in rewards if r.points <= account.available]
        reward = affordable[int(rng.integers(0, len(affordable)))]
        try:
            redemptions.redeem(account.customer, reward, key=f"demo-redeem:{account.pk}")
        except redemptions.RedemptionRefused:
            continue
    # A third of the codes were used on a later order.
    used = [r.pk for r in Redemption.objects.order_by("pk") if rng.random() < 0.33]
    Redemption.objects.filter(pk__in=used).update(used_at=F("created_at") + timedelta(days=9))
