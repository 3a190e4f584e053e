"""The loyalty REST API (/api/v1/loyalty/): accounts and entries, adjustments, rules (and their
dry run), tiers, rewards, redemptions and referrals; replays with the same key, refusals with
their stable codes, and who may do what."""

from datetime import date, timedelta

import pytest
import time_machine
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from loyalty import ledger, reconcile, referrals, tiers
from loyalty.models import Account, Entry, Program, Redemption, Referral, Reward, Rule, Tier
from retention.mail.models import OutboxMessage
from retention.sales.models import Customer
from tests.factories import CourseFactory, CustomerFactory
from tests.loyalty.helpers import import_csv, program, reward, three_tiers

pytestmark = pytest.mark.django_db

API = "/api/v1/loyalty"
NOW = "2026-03-20 12:00Z"
TODAY = date(2026, 3, 20)


@pytest.fixture
def ann():
    return CustomerFactory(external_id="C-1", email="ann@example.com", name="Ann")


@pytest.fixture
def bob():
    return CustomerFactory(external_id="C-2", email="bob@example.org", name="Bob")


def give(customer, points, key="gift-0001"):
    return ledger.adjust(customer, points, reason="Gift", key=key, by="test").entry


def earn(customer, points, key="earn-0001"):
    """Points earned (they count for tiers, unlike adjustments)."""
    return ledger.credit(ledger.account_of(customer), points, kind=Entry.Kind.EARN,
                         reason="Order", source=Entry.Source.ORDER, key=key)


def balance(customer) -> int:
    return Account.objects.get(customer=customer).available


def everything() -> dict:
    """Rows of every table the API writes, to show that a refused call wrote none."""
    return {model.__name__: list(model.objects.order_by("pk").values())
            for model in (Account, Entry, Redemption, Referral, Reward, Rule, Tier,
                          OutboxMessage)}


# Accounts -------------------------------------------------------------------------------------


def test_an_unknown_customer_has_no_account(api_client):
    r = api_client.get(f"{API}/accounts/C-404/")

    assert r.status_code == 404
    assert r.json()["code"] == "unknown_customer"
    assert "C-404" in r.json()["detail"]
    assert api_client.get(f"{API}/accounts/C-404/entries/").json()["code"] == "unknown_customer"


def test_a_customer_without_activity_has_zeros_and_nothing_is_written(api_client, ann):
    r = api_client.get(f"{API}/accounts/C-1/")

    assert r.status_code == 200
    assert r.json() == {
        "customer": "C-1", "available": 0, "pending": 0, "lifetime_earned": 0, "tier": None,
        "tier_basis": "points", "tier_qualifying": 0, "next_tier": None, "keep_tier": None,
        "expiring": [], "referral_code": None}
    assert not Account.objects.exists()
    assert api_client.get(f"{API}/accounts/C-1/entries/").json()["results"] == []


def test_a_customer_id_with_a_dot_is_an_id_not_a_format(api_client):
    CustomerFactory(external_id="a.json")

    assert api_client.get(f"{API}/accounts/a.json/").json()["customer"] == "a.json"


@time_machine.travel(NOW, tick=False)
def test_the_account_shows_balances_tier_progress_expiry_and_a_stable_referral_code(api_client,
                                                                                  ann):
    program(expiry_days=365)
    three_tiers()
    earn(ann, 1200)
    ledger.credit(ledger.account_of(ann), 50, kind=Entry.Kind.EARN, reason="Order",
                  source=Entry.Source.ORDER, key="earn-pending", pending_until=TODAY + timedelta(7))
    tiers.evaluate(TODAY)

    first = api_client.get(f"{API}/accounts/C-1/").json()
    again = api_client.get(f"{API}/accounts/C-1/").json()

    assert first["available"] == 1200 and first["pending"] == 50
    assert first["lifetime_earned"] == 1250
    assert first["tier"] == "silver"
    assert first["tier_qualifying"] == 1250
    assert first["next_tier"] == {"code": "gold", "title": "Gold", "needed": 1750}
    # All of it was earned today: it leaves the 12-month window in 364 days.
    assert first["keep_tier"] == {"needed": 1000, "by": "2027-03-19"}
    assert first["expiring"] == [{"points": 1200, "on": "2027-03-20"},
                                 {"points": 50, "on": "2027-03-27"}]
    code = first["referral_code"]
    assert code and len(code) == 8 and again["referral_code"] == code
    assert Account.objects.get().referral_code == code


def test_entries_are_the_customers_ledger_newest_first_and_paginated(api_client, ann, bob):
    give(ann, 300, key="gift-0001")
    give(ann, -100, key="take-0001")
    give(bob, 5, key="gift-bob-1")

    r = api_client.get(f"{API}/accounts/C-1/entries/", {"page_size": 1})
    body = r.json()

    assert r.status_code == 200
    assert body["count"] == 2 and body["next"]
    entry = body["results"][0]
    assert set(entry) == {"id", "kind", "points", "status", "reason", "source", "created_at",
                          "key"}
    assert (entry["kind"], entry["points"], entry["status"], entry["source"], entry["key"]) == (
        "adjust", -100, "available", "staff", "take-0001")
    credits = api_client.get(f"{API}/accounts/C-1/entries/", {"kind": "adjust",
                                                              "page_size": 10}).json()
    assert [e["points"] for e in credits["results"]] == [-100, 300]


# Adjustments ------------------------------------------------------------------------------------


def adjust_body(**changes):
    return {"customer": "C-1", "points": 250, "reason": "Sorry for the broken video",
            "key": "ticket-812", **changes}


def test_an_adjustment_credits_once_per_key(api_client, ann):
    first = api_client.post(f"{API}/adjustments/", adjust_body(), format="json")
    again = api_client.post(f"{API}/adjustments/", adjust_body(points=999), format="json")

    assert first.status_code == 201
    assert first.json()["points"] == 250 and first.json()["kind"] == "adjust"
    assert first.json()["key"] == "adjust:ticket-812"
    assert again.status_code == 200
    assert again.json() == first.json()
    assert balance(ann) == 250
    entry = Entry.objects.get()
    assert entry.source_ref == "platform"  # who: the token's user
    assert reconcile.is_sound(reconcile.reconcile())


def test_a_debit_takes_points_and_a_debit_past_the_balance_is_refused(api_client, ann):
    give(ann, 100)

    taken = api_client.post(f"{API}/adjustments/", adjust_body(points=-60, key="take-0001"),
                            format="json")
    before = everything()
    refused = api_client.post(f"{API}/adjustments/", adjust_body(points=-41, key="take-0002"),
                              format="json")

    assert taken.status_code == 201 and taken.json()["points"] == -60
    assert refused.status_code == 409
    assert refused.json()["code"] == "insufficient_points"
    assert refused.json()["detail"]
    assert everything() == before
    assert balance(ann) == 40


def test_a_debit_of_a_customer_without_an_account_is_refused_and_opens_none(api_client, ann):
    r = api_client.post(f"{API}/adjustments/", adjust_body(points=-1), format="json")

    assert r.status_code == 409 and r.json()["code"] == "insufficient_points"
    assert not Account.objects.exists()


@pytest.mark.parametrize(("changes", "field"), [
    ({"points": 0}, "points"),
    ({"points": 10**12}, "points"),
    ({"points": "many"}, "points"),
    ({"key": "short"}, "key"),
    ({"key": "k" * 101}, "key"),
    ({"customer": "C-404"}, "customer"),
    ({"reason": ""}, "reason"),
])
def test_a_bad_adjustment_is_a_400_naming_the_field(api_client, ann, changes, field):
    r = api_client.post(f"{API}/adjustments/", adjust_body(**changes), format="json")

    assert r.status_code == 400
    assert field in r.json()
    assert not Entry.objects.exists()


def test_an_adjustment_key_of_8_and_of_100_characters_is_taken(api_client, ann):
    assert api_client.post(f"{API}/adjustments/", adjust_body(key="k" * 8),
                           format="json").status_code == 201
    assert api_client.post(f"{API}/adjustments/", adjust_body(key="k" * 100),
                           format="json").status_code == 201


# Rules, tiers, rewards -----------------------------------------------------------------------


RULE = {"code": "spend", "title": "2 points per rand", "kind": "per_amount", "points": 2}


def test_rules_are_created_and_updated_by_code(api_client):
    created = api_client.post(f"{API}/rules/", RULE, format="json")
    updated = api_client.post(f"{API}/rules/", {**RULE, "points": 3, "cap": 500,
                                                "cap_period": "month"}, format="json")
    patched = api_client.patch(f"{API}/rules/spend/", {"active": False}, format="json")

    assert created.status_code == 201
    assert set(created.json()) == {"code", "title", "kind", "points", "valid_from",
                                   "valid_until", "cap", "cap_period", "use_tier_multiplier",
                                   "active", "created_at", "updated_at"}
    assert updated.status_code == 200 and updated.json()["points"] == 3
    assert patched.status_code == 200
    rule = Rule.objects.get()
    assert (rule.points, rule.cap, rule.cap_period, rule.active) == (3, 500, "month", False)
    assert api_client.get(f"{API}/rules/spend/").json()["cap"] == 500
    assert api_client.get(f"{API}/rules/", {"active": "false"}).json()["count"] == 1
    assert api_client.get(f"{API}/rules/nope/").status_code == 404


@pytest.mark.parametrize(("changes", "field"), [
    ({"kind": "lottery"}, "kind"),
    ({"points": -1}, "points"),
    ({"code": "dry-run"}, "code"),
    ({"code": "not a slug"}, "code"),
    ({"valid_from": "2026-03-01", "valid_until": "2026-02-01"}, "valid_until"),
    ({"cap": 0}, "cap"),
])
def test_a_bad_rule_is_a_400_naming_the_field(api_client, changes, field):
    r = api_client.post(f"{API}/rules/", {**RULE, **changes}, format="json")

    assert r.status_code == 400
    assert field in r.json()
    assert not Rule.objects.exists()


@time_machine.travel(NOW, tick=False)
def test_a_dry_run_counts_what_a_rule_would_earn_and_writes_nothing(api_client, tmp_path):
    import_csv(tmp_path, "A-1,C-1,2026-03-01,150.50,,,paid,,,ZAR\n"
                         "A-2,C-1,2026-03-15,20.00,,,paid,,,ZAR\n"
                         "A-3,C-2,2026-02-01,100.00,,,paid,,,ZAR\n"
                         "A-4,C-3,2026-03-10,80.00,,,refunded,,,ZAR\n"
                         "A-5,C-4,2025-06-01,999.00,,,paid,,,ZAR\n")
    before = everything()

    r = api_client.post(f"{API}/rules/dry-run/", RULE, format="json")
    month = api_client.post(f"{API}/rules/dry-run/", {**RULE, "days": 30}, format="json")

    assert r.status_code == 200
    # 150.50 × 2 + 20 × 2 + 100 × 2 (the refunded order and the one of June 2025 do not count)
    assert r.json() == {"days": 90, "orders": 3, "customers": 2, "points": 541,
                        "value": "5.41"}
    assert month.json() == {"days": 30, "orders": 2, "customers": 1, "points": 341,
                            "value": "3.41"}
    assert everything() == before


def test_a_dry_run_of_a_saved_rules_code_and_of_a_rule_not_on_orders(api_client):
    api_client.post(f"{API}/rules/", RULE, format="json")

    same_code = api_client.post(f"{API}/rules/dry-run/", {**RULE, "points": 5}, format="json")
    birthday = api_client.post(f"{API}/rules/dry-run/", {"kind": "birthday", "points": 100},
                               format="json")

    assert same_code.status_code == 200
    assert birthday.json() == {"days": 90, "orders": 0, "customers": 0, "points": 0,
                               "value": "0.00"}
    assert Rule.objects.get().points == 2


@pytest.mark.parametrize("days", [0, 3651, "soon"])
def test_a_dry_run_over_a_bad_number_of_days_is_a_400(api_client, days):
    r = api_client.post(f"{API}/rules/dry-run/", {**RULE, "days": days}, format="json")

    assert r.status_code == 400 and "days" in r.json()


def test_tiers_are_created_and_updated_by_code(api_client):
    body = {"code": "gold", "title": "Gold", "threshold": 3000, "multiplier": "1.50"}

    created = api_client.post(f"{API}/tiers/", body, format="json")
    updated = api_client.put(f"{API}/tiers/gold/", {**body, "discount_percent": 10},
                             format="json")
    patched = api_client.patch(f"{API}/tiers/gold/", {"title": "Golden"}, format="json")

    assert created.status_code == 201
    assert created.json() == {"code": "gold", "title": "Gold", "threshold": 3000,
                              "multiplier": "1.50", "discount_percent": 0,
                              "early_access_days": 0, "benefits": ""}
    assert updated.status_code == 200 and updated.json()["discount_percent"] == 10
    assert patched.status_code == 200
    assert Tier.objects.get().title == "Golden"
    assert [t["code"] for t in api_client.get(f"{API}/tiers/").json()["results"]] == ["gold"]


def test_two_tiers_cannot_share_a_threshold(api_client):
    api_client.post(f"{API}/tiers/", {"code": "gold", "title": "Gold", "threshold": 3000},
                    format="json")

    r = api_client.post(f"{API}/tiers/", {"code": "gilt", "title": "Gilt", "threshold": 3000},
                        format="json")

    assert r.status_code == 400 and "threshold" in r.json()
    assert Tier.objects.count() == 1


REWARD = {"code": "ten-off", "title": "10 % off your next course", "kind": "percent_off",
          "value": "10", "points": 1000, "stock": None, "per_customer_limit": 1,
          "valid_from": "2026-01-01", "valid_until": None, "active": True}


def test_rewards_are_created_and_updated_by_code(api_client):
    created = api_client.post(f"{API}/rewards/", REWARD, format="json")
    updated = api_client.post(f"{API}/rewards/", {**REWARD, "stock": 20}, format="json")

    assert created.status_code == 201
    body = created.json()
    assert {name: body[name] for name in REWARD} == {**REWARD, "value": "10.00"}
    assert updated.status_code == 200 and updated.json()["stock"] == 20
    assert Reward.objects.get().stock == 20
    assert api_client.get(f"{API}/rewards/ten-off/").json()["points"] == 1000


def test_a_free_course_reward_names_its_course(api_client):
    CourseFactory(code="py-101")
    free = {**REWARD, "code": "free-py", "kind": "free_course", "value": "0"}

    without = api_client.post(f"{API}/rewards/", free, format="json")
    with_course = api_client.post(f"{API}/rewards/", {**free, "course": "py-101"},
                                  format="json")

    assert without.status_code == 400 and "course" in without.json()
    assert with_course.status_code == 201 and with_course.json()["course"] == "py-101"


@pytest.mark.parametrize(("changes", "field"), [
    ({"kind": "cash"}, "kind"),
    ({"value": "101"}, "value"),
    ({"value": "-5"}, "value"),
    ({"points": 0}, "points"),
    ({"valid_until": "2025-12-31"}, "valid_until"),
    ({"code_valid_days": 100000}, "code_valid_days"),
    ({"course": "nope"}, "course"),
])
def test_a_bad_reward_is_a_400_naming_the_field(api_client, changes, field):
    r = api_client.post(f"{API}/rewards/", {**REWARD, **changes}, format="json")

    assert r.status_code == 400
    assert field in r.json()
    assert not Reward.objects.exists()


# Redemptions ----------------------------------------------------------------------------------


def redeem_body(**changes):
    return {"customer": "C-1", "reward": "ten-off", "key": "redeem-0001", **changes}


@time_machine.travel(NOW, tick=False)
def test_a_redemption_spends_the_points_once_per_key_and_emails_the_code(api_client, ann):
    give(ann, 1500)
    reward(points=1000)

    first = api_client.post(f"{API}/redemptions/", redeem_body(), format="json")
    again = api_client.post(f"{API}/redemptions/", redeem_body(), format="json")

    assert first.status_code == 201
    body = first.json()
    assert {name: body[name] for name in ["customer", "reward", "points", "available_after"]} == {
        "customer": "C-1", "reward": "ten-off", "points": 1000, "available_after": 500}
    assert body["coupon_code"].startswith("R-")
    assert body["expires_at"].startswith("2026-06-18")  # 90 days
    assert again.status_code == 200 and again.json() == body
    assert Redemption.objects.count() == 1
    assert balance(ann) == 500
    assert Entry.objects.filter(kind=Entry.Kind.REDEEM).count() == 1
    assert OutboxMessage.objects.filter(template="email/loyalty_redemption").count() == 1
    assert reconcile.is_sound(reconcile.reconcile())


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize(("setup", "code"), [
    ({"points": 2000}, "insufficient_points"),
    ({"stock": 0}, "out_of_stock"),
    ({"active": False}, "reward_unavailable"),
    ({"valid_until": date(2026, 3, 19)}, "reward_unavailable"),
    ({"valid_from": date(2026, 3, 21)}, "reward_unavailable"),
])
def test_a_refused_redemption_is_a_409_with_its_code_and_changes_nothing(api_client, ann, setup,
                                                                         code):
    give(ann, 1500)
    reward(**{"points": 1000, **setup})
    before = everything()

    r = api_client.post(f"{API}/redemptions/", redeem_body(), format="json")

    assert r.status_code == 409
    assert r.json()["code"] == code
    assert r.json()["detail"]
    assert everything() == before


def test_a_reward_is_redeemed_at_most_its_limit_per_customer(api_client, ann):
    give(ann, 5000)
    reward(points=1000, per_customer_limit=1)

    assert api_client.post(f"{API}/redemptions/", redeem_body(),
                           format="json").status_code == 201
    second = api_client.post(f"{API}/redemptions/", redeem_body(key="redeem-0002"),
                             format="json")

    assert second.status_code == 409 and second.json()["code"] == "limit_reached"
    assert balance(ann) == 4000


def test_the_last_unit_of_stock_goes_once(api_client, ann, bob):
    give(ann, 1000)
    give(bob, 1000, key="gift-bob-1")
    reward(points=100, stock=1)

    assert api_client.post(f"{API}/redemptions/", redeem_body(),
                           format="json").status_code == 201
    r = api_client.post(f"{API}/redemptions/", redeem_body(customer="C-2", key="redeem-bob1"),
                        format="json")

    assert r.status_code == 409 and r.json()["code"] == "out_of_stock"
    assert Reward.objects.get().stock == 0


@pytest.mark.parametrize(("changes", "field"), [
    ({"customer": "C-404"}, "customer"),
    ({"reward": "nope"}, "reward"),
    ({"key": "short"}, "key"),
    ({"key": None}, "key"),
])
def test_a_bad_redemption_is_a_400_naming_the_field(api_client, ann, changes, field):
    reward()

    r = api_client.post(f"{API}/redemptions/", redeem_body(**changes), format="json")

    assert r.status_code == 400 and field in r.json()


def test_redemptions_are_listed_by_customer_with_the_balance_each_left(api_client, ann, bob):
    give(ann, 1000)
    give(bob, 1000, key="gift-bob-1")
    reward(points=300)
    for key in ["ann-first", "ann-second"]:
        api_client.post(f"{API}/redemptions/", redeem_body(key=key), format="json")
    api_client.post(f"{API}/redemptions/", redeem_body(customer="C-2", key="bob-first"),
                    format="json")

    r = api_client.get(f"{API}/redemptions/", {"customer": "C-1"})

    assert r.status_code == 200
    assert r.json()["count"] == 2
    assert [row["available_after"] for row in r.json()["results"]] == [400, 700]
    one = r.json()["results"][0]
    assert api_client.get(f"{API}/redemptions/{one['id']}/").json() == one
    assert api_client.get(f"{API}/redemptions/", {"reward": "ten-off"}).json()["count"] == 3


# Referrals --------------------------------------------------------------------------------------


def referral_body(code, **changes):
    return {"referral_code": code, "customer": "C-2", "fingerprint": "card-1",
            "key": "signup-C-2", **changes}


def test_a_referral_is_recorded_once_per_key(api_client, ann, bob):
    code = referrals.code_of(ledger.account_of(ann))

    first = api_client.post(f"{API}/referrals/", referral_body(code.lower()), format="json")
    again = api_client.post(f"{API}/referrals/", referral_body(code), format="json")

    assert first.status_code == 201
    body = first.json()
    assert {k: body[k] for k in ["referrer", "referred", "status", "refused_because",
                                 "rewarded_at"]} == {
        "referrer": "C-1", "referred": "C-2", "status": "pending", "refused_because": "",
        "rewarded_at": None}
    assert again.status_code == 200 and again.json() == body
    assert Referral.objects.count() == 1
    assert Customer.objects.get(external_id="C-2").referred_by == ann


def test_a_refused_referral_is_recorded_with_its_reason(api_client, ann):
    code = referrals.code_of(ledger.account_of(ann))

    r = api_client.post(f"{API}/referrals/", referral_body(code, customer="C-1"), format="json")

    assert r.status_code == 201
    assert r.json()["status"] == "refused"
    assert "themselves" in r.json()["refused_because"]


def test_an_unknown_referral_code_is_a_409(api_client, bob):
    r = api_client.post(f"{API}/referrals/", referral_body("NOPE2345"), format="json")

    assert r.status_code == 409 and r.json()["code"] == "unknown_code"
    assert r.json()["detail"]
    assert not Referral.objects.exists()


@pytest.mark.parametrize(("changes", "field"), [
    ({"customer": "C-404"}, "customer"),
    ({"key": "short"}, "key"),
    ({"referral_code": ""}, "referral_code"),
])
def test_a_bad_referral_is_a_400_naming_the_field(api_client, bob, changes, field):
    r = api_client.post(f"{API}/referrals/", referral_body("ABCDEFGH", **changes), format="json")

    assert r.status_code == 400 and field in r.json()


def test_referrals_are_listed_by_referrer(api_client, ann, bob):
    carol = CustomerFactory(external_id="C-3")
    ann_code = referrals.code_of(ledger.account_of(ann))
    bob_code = referrals.code_of(ledger.account_of(bob))
    api_client.post(f"{API}/referrals/", referral_body(ann_code), format="json")
    api_client.post(f"{API}/referrals/", referral_body(bob_code, customer=carol.external_id,
                                                       key="signup-C-3"), format="json")

    r = api_client.get(f"{API}/referrals/", {"referrer": "C-1"})

    assert r.status_code == 200
    assert [(row["referrer"], row["referred"]) for row in r.json()["results"]] == [("C-1", "C-2")]
    assert api_client.get(f"{API}/referrals/", {"referrer": "C-404"}).json()["count"] == 0


# Who may do what --------------------------------------------------------------------------------


READS = [f"{API}/accounts/C-1/", f"{API}/accounts/C-1/entries/", f"{API}/rules/",
         f"{API}/rules/spend/", f"{API}/tiers/", f"{API}/tiers/gold/", f"{API}/rewards/",
         f"{API}/rewards/ten-off/", f"{API}/redemptions/", f"{API}/referrals/"]


def writes(code="ABCDEFGH"):
    return [
        ("post", f"{API}/adjustments/", adjust_body()),
        ("post", f"{API}/redemptions/", redeem_body()),
        ("post", f"{API}/referrals/", referral_body(code)),
        ("post", f"{API}/rules/", {**RULE, "points": 9}),
        ("put", f"{API}/rules/spend/", {**RULE, "points": 9}),
        ("patch", f"{API}/rules/spend/", {"points": 9}),
        ("post", f"{API}/tiers/", {"code": "gold", "title": "Gold", "threshold": 1}),
        ("patch", f"{API}/tiers/gold/", {"threshold": 1}),
        ("post", f"{API}/rewards/", {**REWARD, "points": 1}),
        ("patch", f"{API}/rewards/ten-off/", {"points": 1}),
    ]


@pytest.fixture
def program_rows(ann, bob):
    """A rule, a tier, a reward and a customer with points and a referral code."""
    Program.current()
    Rule.objects.create(**RULE)
    Tier.objects.create(code="gold", title="Gold", threshold=3000)
    reward(points=100)
    give(ann, 1000)
    return referrals.code_of(ledger.account_of(ann))


def test_anonymous_callers_are_refused_everything(anonymous_client, program_rows):
    before = everything()

    for url in READS:
        assert anonymous_client.get(url).status_code == 401, url
    for method, url, body in writes(program_rows):
        assert getattr(anonymous_client, method)(url, body, format="json").status_code == 401
    assert anonymous_client.post(f"{API}/rules/dry-run/", RULE,
                                 format="json").status_code == 401
    assert everything() == before


def test_staff_without_permissions_are_refused_everything(django_user_model, program_rows):
    client = APIClient()
    client.force_login(django_user_model.objects.create_user(
        "clerk", password="pw-clerk-1234", is_staff=True))
    before = everything()

    for url in READS:
        assert client.get(url).status_code == 403, url
    for method, url, body in writes(program_rows):
        assert getattr(client, method)(url, body, format="json").status_code == 403, url
    assert client.post(f"{API}/rules/dry-run/", RULE, format="json").status_code == 403
    assert everything() == before


def test_a_view_only_manager_reads_everything_and_changes_nothing(view_only_manager,
                                                                 program_rows):
    client = APIClient()
    client.force_login(view_only_manager)
    before = everything()

    for url in READS:
        assert client.get(url).status_code == 200, url
    for method, url, body in writes(program_rows):
        assert getattr(client, method)(url, body, format="json").status_code == 403, url
    # A dry run writes nothing: who may view rules may run one.
    assert client.post(f"{API}/rules/dry-run/", RULE, format="json").status_code == 200
    assert everything() == before


def staff_with(django_user_model, *codenames):
    user = django_user_model.objects.create_user("keeper", password="pw-keeper-1234",
                                                 is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="loyalty",
                                                         codename__in=codenames))
    client = APIClient()
    client.force_login(user)
    return client


def test_staff_adjust_with_the_add_entry_permission_alone(django_user_model, ann):
    client = staff_with(django_user_model, "add_entry")

    r = client.post(f"{API}/adjustments/", adjust_body(), format="json")

    assert r.status_code == 201
    assert Entry.objects.get().source_ref == "keeper"
    assert client.post(f"{API}/redemptions/", redeem_body(), format="json").status_code == 403


def test_staff_redeem_with_the_add_redemption_permission_alone(django_user_model, ann):
    give(ann, 500)
    reward(points=100)
    client = staff_with(django_user_model, "add_redemption")

    assert client.post(f"{API}/redemptions/", redeem_body(), format="json").status_code == 201
    assert client.get(f"{API}/redemptions/").status_code == 403  # reading needs view
    assert client.post(f"{API}/adjustments/", adjust_body(), format="json").status_code == 403


def test_staff_change_rules_with_add_and_change_and_read_them_with_view(django_user_model):
    reader = staff_with(django_user_model, "view_rule")

    assert reader.get(f"{API}/rules/").status_code == 200
    assert reader.post(f"{API}/rules/dry-run/", RULE, format="json").status_code == 200
    assert reader.post(f"{API}/rules/", RULE, format="json").status_code == 403
    editor = APIClient()
    user = django_user_model.objects.get(username="keeper")
    user.user_permissions.add(*Permission.objects.filter(codename__in=["add_rule",
                                                                      "change_rule"]))
    editor.force_login(user)
    assert editor.post(f"{API}/rules/", RULE, format="json").status_code == 201


def test_the_loyalty_api_root_lists_its_resources(api_client):
    r = api_client.get(f"{API}/")

    assert r.status_code == 200
    assert {"rules", "tiers", "rewards", "redemptions", "referrals"} <= set(r.json())


# Lists cost the same few queries however many rows ---------------------------------------------

# Every request: the token with its user, then the Platform group check.
AUTH = 2


def many_rules(n):
    for i in range(n):
        Rule.objects.create(code=f"rule-{i}", title="R", kind=Rule.Kind.BUNDLE, points=i)


def many_tiers(n):
    for i in range(n):
        Tier.objects.create(code=f"tier-{i}", title="T", threshold=i)


def many_rewards(n):
    course = CourseFactory()
    for i in range(n):
        reward(code=f"reward-{i}", kind=Reward.Kind.FREE_COURSE, course=course)


def many_entries(n):
    customer = CustomerFactory(external_id="C-1")
    for i in range(n):
        give(customer, 10, key=f"gift-{i:04d}")


def many_redemptions(n):
    from loyalty import redemptions

    prize = reward(points=1)
    for i in range(n):
        customer = CustomerFactory()
        give(customer, 5, key=f"gift-{i:04d}")
        redemptions.redeem(customer, prize, key=f"redeem-{i:04d}")


def many_referrals(n):
    referrer = referrals.code_of(ledger.account_of(CustomerFactory(external_id="C-1")))
    for i in range(n):
        referrals.record(referrer, CustomerFactory(), key=f"referral-{i:04d}")


@pytest.mark.parametrize("n", [1, 25])
@pytest.mark.parametrize(("url", "make", "queries"), [
    # count, rules
    (f"{API}/rules/", many_rules, AUTH + 2),
    # count, tiers
    (f"{API}/tiers/", many_tiers, AUTH + 2),
    # count, rewards joined with their course
    (f"{API}/rewards/", many_rewards, AUTH + 2),
    # the customer, count, entries
    (f"{API}/accounts/C-1/entries/", many_entries, AUTH + 3),
    # count, redemptions joined with their account, customer, reward and entry, and the
    # balance each left (a subquery)
    (f"{API}/redemptions/", many_redemptions, AUTH + 2),
    # count, referrals joined with their referrer's account and customer and the referred
    (f"{API}/referrals/", many_referrals, AUTH + 2),
])
def test_list_queries_do_not_grow_with_rows(api_client, django_assert_max_num_queries, url, make,
                                            queries, n):
    make(n)

    with django_assert_max_num_queries(queries):
        r = api_client.get(url, {"page_size": 1000})

    assert r.status_code == 200
    assert r.json()["count"] == n
    assert len(r.json()["results"]) == n
