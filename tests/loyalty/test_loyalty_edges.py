"""Adversarial cases of the loyalty core: files imported twice or overlapping, orders changed
after they earned, refunds of points partly spent (or expired), the nightly run twice for a
night, expiry switched on, keys of one kind of lot read as another's, and `loyalty_reconcile`."""

import io
import json
from datetime import date
from decimal import Decimal

import pytest
import time_machine
from django.core.management import call_command
from django.db.models import F

from loyalty import expiry, ledger, reconcile, redemptions, referrals
from loyalty.models import Account, Draw, Entry, Program, Redemption, Rule, Tier
from retention.sales.models import Customer
from tests.factories import BundleFactory, CustomerFactory
from tests.loyalty.helpers import import_csv, per_amount, program, reward

pytestmark = pytest.mark.django_db


def account(external_id="C-1") -> Account:
    return Account.objects.get(customer__external_id=external_id)


def ledger_state():
    """Everything of the ledger a rerun could change."""
    return (
        list(Entry.objects.order_by("id").values_list(
            "id", "account_id", "kind", "points", "status", "key", "remaining", "shortfall",
            "available_on", "expires_on", "created_at")),
        list(Draw.objects.order_by("id").values_list("debit_id", "lot_id", "points")),
        list(Account.objects.order_by("id").values_list(
            "id", "available", "pending", "lifetime_earned", "tier_id", "tier_qualifying",
            "grace_until")),
        list(Redemption.objects.order_by("id").values_list("id", "used_at")),
    )


def sound():
    report = reconcile.reconcile()
    assert reconcile.is_sound(report), report
    return report


def customer(external_id="C-1") -> Customer:
    return Customer.objects.get(external_id=external_id)


# Files twice, overlapping ---------------------------------------------------------------------


@time_machine.travel("2026-03-20 12:00Z", tick=False)
def test_the_same_file_twice_earns_once_with_every_kind_of_rule(tmp_path):
    per_amount(points=2)
    Rule.objects.create(code="bundle", title="Bundle bonus", kind=Rule.Kind.BUNDLE, points=100)
    gold = Tier.objects.create(code="gold", title="Gold", threshold=0,
                               multiplier=Decimal("1.5"))
    BundleFactory(code="PACK")
    ledger.account_of(CustomerFactory(external_id="C-1"))
    Account.objects.update(tier=gold)
    rows = ("A-1,C-1,2026-03-01,150.50,,,paid,PACK,,ZAR\n"
            "A-2,C-1,2026-03-15,20.00,,,paid,,,ZAR\n"
            ",C-2,2026-03-02,10.00,,,paid,,,ZAR\n")  # no order id: a key from its content

    import_csv(tmp_path, rows)
    first = ledger_state()
    out = import_csv(tmp_path, rows)

    assert "created: 0, updated: 0, unchanged: 3" in out
    assert ledger_state() == first
    earned = dict(Entry.objects.filter(account=account()).values_list("key", "points"))
    assert earned == {"order:A-1:spend": 451, "order:A-1:bundle": 150, "order:A-2:spend": 60}
    assert account("C-2").available == 20
    sound()


@time_machine.travel("2026-03-20 12:00Z", tick=False)
def test_an_overlapping_file_earns_only_its_new_orders(tmp_path):
    per_amount()
    import_csv(tmp_path, "A-1,C-1,2026-01-03,100.00,,,paid,,,ZAR\n"
                         "A-2,C-1,2026-01-04,100.00,,,paid,,,ZAR\n")
    import_csv(tmp_path, "A-2,C-1,2026-01-04,100.00,,,paid,,,ZAR\n"
                         "A-3,C-1,2026-01-05,100.00,,,paid,,,ZAR\n")

    assert dict(Entry.objects.values_list("key", "points")) == {
        "order:A-1:spend": 100, "order:A-2:spend": 100, "order:A-3:spend": 100}
    assert account().available == 300
    sound()


@time_machine.travel("2026-03-20 12:00Z", tick=False)
def test_an_order_earned_before_and_handed_over_again_counts_once_against_a_cap(tmp_path):
    """A-1 earned in the first file and comes again, changed, in the second (so it is handed
    to earning again beside the new A-2): its lot must count once against the month's 250,
    not twice (what it earned, and again as part of this import's running sum)."""
    per_amount(cap=250, cap_period=Rule.Period.MONTH)
    import_csv(tmp_path, "A-1,C-1,2026-01-03,100.00,,,paid,,,ZAR\n")
    out = import_csv(tmp_path, "A-1,C-1,2026-01-03,110.00,,,paid,,,ZAR\n"  # corrected
                               "A-2,C-1,2026-01-04,100.00,,,paid,,,ZAR\n"
                               "A-3,C-1,2026-01-05,100.00,,,paid,,,ZAR\n")

    assert "created: 2, updated: 1" in out
    assert dict(Entry.objects.values_list("key", "points")) == {
        "order:A-1:spend": 100, "order:A-2:spend": 100, "order:A-3:spend": 50}
    sound()


@time_machine.travel("2026-03-20 12:00Z", tick=False)
def test_the_nightly_safety_net_over_all_orders_keeps_a_capped_rule_capped(tmp_path):
    """Every order handed to earning again (as the nightly's catch-up does) writes nothing,
    and an order added later in the month still gets the room left, not less."""
    per_amount(cap=250, cap_period=Rule.Period.MONTH)
    import_csv(tmp_path, "A-1,C-1,2026-01-03,100.00,,,paid,,,ZAR\n")
    from loyalty import earning
    from retention.sales.models import Order

    earning.earn_for_orders(Order.objects.all())
    import_csv(tmp_path, "A-1,C-1,2026-01-03,100.00,,,paid,,,ZAR\n"
                         "A-2,C-1,2026-01-10,200.00,,,paid,,,ZAR\n")

    assert dict(Entry.objects.values_list("key", "points")) == {
        "order:A-1:spend": 100, "order:A-2:spend": 150}


# Orders changed after they earned ---------------------------------------------------------------


@time_machine.travel("2026-03-20 12:00Z", tick=False)
def test_an_order_corrected_after_earning_keeps_its_first_points_today(tmp_path):
    """What the code does today (reported, not changed here): the lot is keyed by order and
    rule, so a re-import with a corrected amount — up or down — earns nothing more and takes
    nothing back. A customer would expect the points to follow the corrected order (a
    correction entry for the difference, keyed by the order's new fingerprint)."""
    per_amount()
    import_csv(tmp_path, "A-1,C-1,2026-03-01,100.00,,,paid,,,ZAR\n"
                         "A-2,C-1,2026-03-01,100.00,,,paid,,,ZAR\n")
    out = import_csv(tmp_path, "A-1,C-1,2026-03-01,250.00,,,paid,,,ZAR\n"  # amount up
                               "A-2,C-1,2026-03-01,40.00,,,paid,,,ZAR\n")  # down (partial refund)

    assert "updated: 2" in out
    assert dict(Entry.objects.values_list("key", "points")) == {
        "order:A-1:spend": 100, "order:A-2:spend": 100}
    assert account().available == 200  # a corrected reading would be 250 + 40 = 290
    sound()


@time_machine.travel("2026-03-20 12:00Z", tick=False)
def test_a_refund_taken_back_does_not_bring_the_points_back_today(tmp_path):
    """Reported: paid → refunded → paid again (a refund undone, a chargeback won) leaves the
    customer without the order's points: the earn key is used, and so is the reversal's."""
    per_amount()
    import_csv(tmp_path, "A-1,C-1,2026-01-10,100.00,,,paid,,,ZAR\n")
    import_csv(tmp_path, "A-1,C-1,2026-01-10,100.00,,,refunded,,,ZAR\n")
    import_csv(tmp_path, "A-1,C-1,2026-01-10,100.00,,,paid,,,ZAR\n")

    assert account().available == 0
    assert sorted(Entry.objects.values_list("kind", "points")) == [("earn", 100),
                                                                   ("reverse", -100)]
    sound()


@time_machine.travel("2026-03-20 12:00Z", tick=False)
def test_an_order_moved_to_another_customer_then_refunded_keeps_both_balances_right(tmp_path):
    """The platform corrects an order's customer (C-1 → C-2), then refunds it. Today the
    points stay with C-1, who earned them (reported: they do not follow the order); the
    refund must take them back from C-1's lot and keep C-1's cached balance right."""
    per_amount()
    import_csv(tmp_path, "A-1,C-1,2026-01-01,100.00,,,paid,,,ZAR\n")
    import_csv(tmp_path, "A-1,C-2,2026-01-01,100.00,,,paid,,,ZAR\n")
    assert (account("C-1").available, account("C-2").available) == (100, 0)
    sound()

    import_csv(tmp_path, "A-1,C-2,2026-01-01,100.00,,,refunded,,,ZAR\n")

    assert (account("C-1").available, account("C-2").available) == (0, 0)
    assert Entry.objects.get(kind="reverse").account == account("C-1")
    sound()


# Refunds of points spent ----------------------------------------------------------------------


def test_a_refund_of_an_order_whose_points_were_partly_spent(tmp_path):
    """The old lot is spent first; the refunded order's lot gives back what is left of it,
    the rest is the reversal's shortfall; no other lot is touched, nothing goes negative."""
    per_amount()
    with time_machine.travel("2026-03-01 12:00Z", tick=False):
        import_csv(tmp_path, "A-1,C-1,2026-01-01,100.00,,,paid,,,ZAR\n"
                             "A-2,C-1,2026-01-20,300.00,,,paid,,,ZAR\n")
        reward(points=250)
        redeemed = redemptions.redeem(customer(), reward_obj(), key="spend-250-a")
        drawn = dict(Draw.objects.filter(debit=redeemed.redemption.entry).values_list(
            "lot__key", "points"))
        assert drawn == {"order:A-1:spend": 100, "order:A-2:spend": 150}  # oldest first
        ledger.adjust(customer(), 70, reason="Goodwill", key="goodwill-1", by="staff")

        import_csv(tmp_path, "A-2,C-1,2026-01-20,300.00,,,refunded,,,ZAR\n")
        import_csv(tmp_path, "A-2,C-1,2026-01-20,300.00,,,refunded,,,ZAR\n")  # again

    reverse = Entry.objects.get(kind="reverse")
    assert (reverse.points, reverse.shortfall, reverse.status) == (-150, 150, "available")
    assert Entry.objects.get(key="goodwill-1").remaining == 70  # not taken for the shortfall
    assert (account().available, account().pending) == (70, 0)
    assert not Entry.objects.filter(remaining__lt=0).exists()
    sound()


def reward_obj():
    from loyalty.models import Reward

    return Reward.objects.get()


def test_a_refund_after_the_points_expired_records_only_what_was_spent_as_shortfall(tmp_path):
    """500 earned, 100 spent, 400 expired, then the order is refunded: nothing is left to
    take back, and the customer's history must say 100 had been spent, not 500."""
    per_amount()
    with time_machine.travel("2026-03-01 12:00Z", tick=False):
        program(expiry_days=30)
        import_csv(tmp_path, "A-1,C-1,2026-02-01,500.00,,,paid,,,ZAR\n")  # available 15 Feb
        reward(points=100)
        redemptions.redeem(customer(), reward_obj(), key="spend-100-a")
    with time_machine.travel("2026-04-02 12:00Z", tick=False):
        assert expiry.expire(date(2026, 4, 1)) == 1  # 1 Mar (switched on) + 30 days
        import_csv(tmp_path, "A-1,C-1,2026-02-01,500.00,,,refunded,,,ZAR\n")

    reverse = Entry.objects.get(kind="reverse")
    assert (reverse.points, reverse.shortfall) == (0, 100)
    sound()


def test_a_refund_of_points_that_all_expired_unspent_reverses_nothing(tmp_path):
    per_amount()
    with time_machine.travel("2026-03-01 12:00Z", tick=False):
        program(expiry_days=30)
        import_csv(tmp_path, "A-1,C-1,2026-02-01,500.00,,,paid,,,ZAR\n")
    with time_machine.travel("2026-04-02 12:00Z", tick=False):
        expiry.expire(date(2026, 4, 1))
        import_csv(tmp_path, "A-1,C-1,2026-02-01,500.00,,,refunded,,,ZAR\n")

    assert not Entry.objects.filter(kind="reverse", shortfall__gt=0).exists()
    assert account().available == 0
    sound()


def test_a_refund_never_reverses_another_customers_referral_reward(tmp_path):
    """A referrer's reward is keyed by the referral's id; an order whose platform id happens
    to be that number, refunded, must not take the referrer's points."""
    per_amount()
    program(welcome_points=0, referrer_points=500, refund_days=14)
    ann = CustomerFactory(external_id="C-1", email="ann@example.com")
    bob = CustomerFactory(external_id="C-2", email="bob@example.org")
    with time_machine.travel("2026-03-01 12:00Z", tick=False):
        recorded = referrals.record(referrals.code_of(ledger.account_of(ann)), bob,
                                    key="ref-bob-0001")
        import_csv(tmp_path, "B-1,C-2,2026-03-01,100.00,,,paid,,,ZAR\n")
    with time_machine.travel("2026-03-20 12:00Z", tick=False):
        assert referrals.reward_referrers(date(2026, 3, 19)) == 1
        assert account("C-1").available == 500
        number = str(recorded.referral.pk)  # the platform's order "1", say
        import_csv(tmp_path, f"{number},C-3,2026-03-18,10.00,,,paid,,,ZAR\n")
        import_csv(tmp_path, f"{number},C-3,2026-03-18,10.00,,,refunded,,,ZAR\n")

    assert account("C-1").available == 500
    assert not Entry.objects.filter(account=account("C-1"), kind="reverse").exists()
    sound()


# Expiry ---------------------------------------------------------------------------------------


def nightly(day: str) -> str:
    out = io.StringIO()
    call_command("run_nightly", "--date", day, stdout=out)
    return out.getvalue()


def test_switching_expiry_on_expires_nothing_that_night_and_the_old_lots_a_period_later(
        tmp_path):
    per_amount()
    with time_machine.travel("2026-03-20 12:00Z", tick=False):
        import_csv(tmp_path, "A-1,C-1,2024-06-01,100.00,,,paid,,,ZAR\n"  # old, long available
                             "A-2,C-1,2026-03-10,50.00,,,paid,,,ZAR\n")  # pending till 24 Mar
        assert Program.current().expiry_days is None
        program(expiry_days=365)
        assert Program.current().expiry_enabled_on == date(2026, 3, 20)
    assert set(Entry.objects.values_list("expires_on", flat=True)) == {date(2027, 3, 20),
                                                                       date(2027, 3, 24)}
    with time_machine.travel("2026-03-21 02:00Z", tick=False):
        assert "0 lots expired" in nightly("2026-03-20")
    with time_machine.travel("2026-03-25 02:00Z", tick=False):
        nightly("2026-03-24")  # A-2 released
        ledger.adjust(customer(), 10, reason="Gift", key="gift-later", by="staff")
    assert (account().available, account().pending) == (160, 0)
    with time_machine.travel("2027-03-20 02:00Z", tick=False):
        assert "0 lots expired" in nightly("2027-03-19")
    with time_machine.travel("2027-03-21 02:00Z", tick=False):
        assert "1 lots expired" in nightly("2027-03-20")  # exactly one period later: A-1
        assert "0 lots expired" in nightly("2027-03-20")  # rerun: nothing twice
    assert account().available == 60
    with time_machine.travel("2027-03-25 02:00Z", tick=False):
        assert "1 lots expired" in nightly("2027-03-24")  # A-2, a period after its release
    # The gift was given on 25 Mar 2026: it expires on 25 Mar 2027, a day after A-2.
    assert account().available == 10
    expired = Entry.objects.filter(kind="expire").values_list("source_ref", flat=True)
    assert sorted(expired) == ["order:A-1:spend", "order:A-2:spend"]
    sound()


def test_a_late_import_under_expiry_can_be_expired_the_night_it_arrives_today(tmp_path):
    """Reported as a design question: points from an order imported long after it was paid
    expire a period after the order's refund window, so a late file (a backfill) gives
    points the customer may never see — they are taken the same night."""
    per_amount()
    with time_machine.travel("2025-01-01 12:00Z", tick=False):
        program(expiry_days=365)
    with time_machine.travel("2026-03-20 12:00Z", tick=False):
        import_csv(tmp_path, "A-1,C-1,2025-01-10,100.00,,,paid,,,ZAR\n")
        assert Entry.objects.get().expires_on == date(2026, 1, 24)
        assert account().available == 100
        assert expiry.expire(date(2026, 3, 20)) == 1
    assert account().available == 0


def test_shortening_the_expiry_period_can_expire_points_that_night_unwarned_today(tmp_path):
    """Reported as a design question: switching expiry on never expires anything at once,
    but shortening it (365 → 30 days) dates the lots already held from when they became
    available, so points promised for months go the same night, with no warning sent (the
    warning looks only at dates still to come)."""
    from retention.mail.models import OutboxMessage

    per_amount()
    with time_machine.travel("2025-01-01 12:00Z", tick=False):
        program(expiry_days=365)
    with time_machine.travel("2025-06-01 12:00Z", tick=False):
        import_csv(tmp_path, "A-1,C-1,2025-05-01,100.00,,,paid,,,ZAR\n")
    assert Entry.objects.get().expires_on == date(2026, 5, 15)
    with time_machine.travel("2025-09-01 12:00Z", tick=False):
        program(expiry_days=30)
        assert Entry.objects.get(kind="earn").expires_on == date(2025, 6, 14)
        assert expiry.warn(date(2025, 9, 1)) == 0
        assert expiry.expire(date(2025, 9, 1)) == 1
    assert account().available == 0
    assert not OutboxMessage.objects.filter(template="email/loyalty_expiry_warning").exists()
    sound()


def test_the_nightly_run_twice_for_one_night_gives_the_same_ledger(tmp_path):
    per_amount()
    Rule.objects.create(code="bday", title="Birthday", kind=Rule.Kind.BIRTHDAY, points=25)
    with time_machine.travel("2025-05-01 12:00Z", tick=False):
        program(expiry_days=60, expiry_warning_days=30)
        import_csv(tmp_path, "A-1,C-1,2025-05-01,100.00,,,paid,,,ZAR\n")
    with time_machine.travel("2026-03-20 12:00Z", tick=False):
        import_csv(tmp_path, "A-2,C-1,2026-03-01,200.00,,,paid,,,ZAR\n"   # pending till 15 Mar
                             "A-3,C-2,2026-03-15,300.00,,,paid,,,ZAR\n"   # still pending
                             "A-4,C-2,2026-02-01,40.00,,,refunded,,,ZAR\n")
        Customer.objects.filter(external_id="C-2").update(birth_date=date(1990, 3, 20))
        Entry.objects.filter(key="order:A-2:spend").update(status="pending")  # not yet released
        ledger.refresh_one(account())
    with time_machine.travel("2026-03-21 02:00Z", tick=False):
        first_out = nightly("2026-03-20")
        first = ledger_state()
        second_out = nightly("2026-03-20")
        assert ledger_state() == first

    # A-1, never released before, is released and expired the same night (see the late import)
    assert "2 released" in first_out and "1 bonuses" in first_out and "1 lots expired" in first_out
    # (The rerun's summary says "1 bonuses": earning.bonus counts the birthday lot it found
    # already written, though it wrote nothing. Reported; the ledger above is what counts.)
    assert "0 released" in second_out and "0 lots expired" in second_out
    sound()


# Reconciliation -------------------------------------------------------------------------------


def reconcile_command(*args) -> tuple[str, int]:
    """What `loyalty_reconcile` printed, and its exit status."""
    out = io.StringIO()
    try:
        call_command("loyalty_reconcile", *args, stdout=out, stderr=io.StringIO())
    except SystemExit as exit:
        return out.getvalue(), exit.code
    return out.getvalue(), 0


@time_machine.travel("2026-03-20 12:00Z", tick=False)
def test_loyalty_reconcile_prints_the_design_keys_and_exits_1_when_a_balance_is_wrong(
        tmp_path):
    per_amount()
    program(point_value=Decimal("0.05"))
    import_csv(tmp_path, "A-1,C-1,2026-01-01,500.00,,,paid,,,ZAR\n"
                         "A-2,C-2,2026-03-15,80.00,,,paid,,,ZAR\n")
    reward(points=100)
    redemptions.redeem(customer(), reward_obj(), key="spend-100-b")

    out, status = reconcile_command("--json")
    report = json.loads(out)
    assert status == 0
    assert {"accounts", "entries", "mismatched_accounts", "negative_lots",
            "liability"} <= set(report)
    assert {"points", "value", "expected_breakage_points"} <= set(report["liability"])
    assert (report["accounts"], report["entries"], report["mismatched_accounts"],
            report["negative_lots"]) == (2, 3, 0, 0)
    assert report["liability"] == {"points": 480, "value": "24.00",
                                   "expected_breakage_points": 0, "breakage_rate": "0.0"}
    assert report == json.loads(json.dumps(reconcile.reconcile()))

    text, status = reconcile_command()
    assert status == 0
    assert "2 accounts, 3 entries" in text and "mismatched accounts: 0" in text
    assert "liability: 480 points, worth 24.00" in text

    Account.objects.filter(customer__external_id="C-2").update(available=F("available") + 7)
    out, status = reconcile_command("--json")
    assert json.loads(out)["mismatched_accounts"] == 1
    assert status == 1
    text, status = reconcile_command()
    assert status == 1 and "mismatched accounts: 1" in text


@time_machine.travel("2026-03-20 12:00Z", tick=False)
def test_loyalty_reconcile_exits_1_for_a_lot_that_disagrees_with_its_draws(tmp_path):
    per_amount()
    import_csv(tmp_path, "A-1,C-1,2026-01-01,500.00,,,paid,,,ZAR\n")
    assert reconcile_command("--json")[1] == 0
    Entry.objects.filter(key="order:A-1:spend").update(remaining=400)  # lost 100 points

    out, status = reconcile_command("--json")
    assert json.loads(out)["inconsistent_lots"] == 1
    assert status == 1


def test_loyalty_reconcile_on_an_empty_program():
    out, status = reconcile_command("--json")
    assert status == 0
    assert json.loads(out)["accounts"] == 0
