"""Tiers judged on the last 12 months (up at once, down after a warned grace period) and
referrals (welcome points, the referrer's reward after the refund window, refusals, the cap)."""

from datetime import date

import pytest
import time_machine

from loyalty import ledger, referrals, tiers
from loyalty.models import Account, Entry, Referral
from retention.mail.models import OutboxMessage
from retention.sales.models import Customer
from tests.factories import CustomerFactory
from tests.loyalty.helpers import import_csv, per_amount, program, three_tiers

pytestmark = pytest.mark.django_db


def account(external_id="C-1") -> Account:
    return Account.objects.select_related("tier").get(customer__external_id=external_id)


@time_machine.travel("2026-06-30 12:00Z", tick=False)
def test_a_customer_moves_up_at_once_and_down_only_after_a_warned_grace_period(tmp_path):
    three_tiers()
    per_amount()
    program(tier_grace_days=30)
    import_csv(tmp_path, "A-1,C-1,2025-07-10,1200.00,ann@example.com,Ann,paid,,,ZAR\n")

    assert tiers.evaluate(date(2026, 6, 30)).up == 1
    assert account().tier.code == "silver"
    assert OutboxMessage.objects.filter(template="email/loyalty_tier_up").count() == 1
    progress = tiers.progress_of(account(), date(2026, 6, 30))
    assert progress["next_tier"] == {"code": "gold", "title": "Gold", "needed": 1800}
    # the 1,200 points leave the window on 9 Jul 2026: keep 1,000 by then
    assert progress["keep_tier"] == {"needed": 1000, "by": date(2026, 7, 9)}

    moves = tiers.evaluate(date(2026, 7, 10))  # the order is 366 days old
    assert (moves.warned, account().tier.code, account().grace_until) == (
        1, "silver", date(2026, 8, 9))
    tiers.evaluate(date(2026, 7, 11))  # a rerun warns nobody twice
    assert OutboxMessage.objects.filter(
        template="email/loyalty_tier_down_warning").count() == 1
    assert tiers.evaluate(date(2026, 8, 10)).down == 1
    assert (account().tier.code, account().grace_until) == ("bronze", None)


def test_a_referral_brings_welcome_points_then_the_referrers_reward(tmp_path):
    per_amount()
    program(welcome_points=250, referrer_points=500, refund_days=14)
    ann = CustomerFactory(external_id="C-1", email="ann@example.com")
    code = referrals.code_of(ledger.account_of(ann))
    bob = CustomerFactory(external_id="C-2", email="bob@example.org")
    with time_machine.travel("2026-03-01 12:00Z", tick=False):
        recorded = referrals.record(code.lower(), bob, key="ref-bob-1")
        assert referrals.record(code, bob, key="ref-bob-1").created is False
        import_csv(tmp_path, "A-1,C-2,2026-03-01,100.00,,,paid,,,ZAR\n")
        import_csv(tmp_path, "A-1,C-2,2026-03-01,100.00,,,paid,,,ZAR\n")
        assert account("C-2").pending == 350  # 100 + the welcome 250, once

    assert recorded.referral.status == "pending"
    assert Customer.objects.get(pk=bob.pk).referred_by_id == ann.pk
    assert referrals.reward_referrers(date(2026, 3, 14)) == 0  # inside the refund window
    assert referrals.reward_referrers(date(2026, 3, 15)) == 1
    assert referrals.reward_referrers(date(2026, 3, 16)) == 0
    assert account("C-1").available == 500
    assert Referral.objects.get().status == "rewarded"


@pytest.mark.parametrize(("email", "fingerprint", "why"), [
    ("Ann.Smith+friend@Example.com", "", "near-identical email"),
    ("annsmith2@example.com", "", "near-identical email"),
    ("other@example.com", "card-1", "fingerprint"),
])
def test_self_referrals_are_recorded_as_refused_with_the_reason(email, fingerprint, why):
    ann = CustomerFactory(external_id="C-1", email="annsmith@example.com")
    code = referrals.code_of(ledger.account_of(ann))
    earlier = CustomerFactory(external_id="C-0", email="zed@example.net")
    referrals.record(code, earlier, key="ref-earlier", fingerprint="card-1")

    other = CustomerFactory(external_id="C-2", email=email)
    referral = referrals.record(code, other, key="ref-2", fingerprint=fingerprint).referral

    assert referral.status == "refused" and why.split()[-1] in referral.refused_because
    assert Customer.objects.get(pk=other.pk).referred_by_id is None


def test_a_customer_cannot_refer_themselves_and_unknown_codes_are_refused():
    ann = CustomerFactory(external_id="C-1")
    code = referrals.code_of(ledger.account_of(ann))
    assert referrals.record(code, ann, key="ref-self").referral.status == "refused"
    with pytest.raises(referrals.UnknownCode):
        referrals.record("NOPE1234", ann, key="ref-unknown")


def test_rewards_stop_at_the_referrers_yearly_cap(tmp_path):
    per_amount()
    program(referral_cap=2, welcome_points=0, refund_days=0)
    ann = CustomerFactory(external_id="C-1")
    code = referrals.code_of(ledger.account_of(ann))
    with time_machine.travel("2026-03-01 12:00Z", tick=False):
        for n in range(3):
            friend = CustomerFactory(external_id=f"F-{n}", email=f"friend{n}@x{n}.example")
            referrals.record(code, friend, key=f"ref-f{n}")
        import_csv(tmp_path, "".join(f"A-{n},F-{n},2026-03-01,10.00,,,paid,,,ZAR\n"
                                     for n in range(3)))
        assert referrals.reward_referrers(date(2026, 3, 2)) == 2
    assert sorted(Referral.objects.values_list("status", flat=True)) == [
        "capped", "rewarded", "rewarded"]
    assert Entry.objects.filter(account__customer=ann, source="referral").count() == 2
