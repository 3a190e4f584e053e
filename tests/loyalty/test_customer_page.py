"""The loyalty part of the customer's page and the pages it leads to: what the customer sees
(points, pending, lots and expiry, tier progress, rewards, codes, referral link), redeeming
through a confirmation page whose GET changes nothing and whose POST redeems once per key,
links that do not work, the staff preview, the held-out customer, and the query count."""

import re
import threading
from datetime import date, timedelta

import pytest
import time_machine
from django.db import connection, connections
from django.test import Client
from django.urls import reverse

from loyalty import ledger, redemptions, referrals, sections, tiers
from loyalty.models import Account, Entry, Redemption, Referral, Reward
from retention.mail import links
from retention.mail.models import OutboxMessage
from retention.sales.models import Customer
from tests.factories import CourseFactory, CustomerFactory
from tests.loyalty.helpers import import_csv, per_amount, program, reward, three_tiers

pytestmark = pytest.mark.django_db
TODAY = date(2026, 3, 20)
REDEEM_LINK = re.compile(r'href="(/loyalty/redeem/[^"]+/)"')
KEY_FIELD = re.compile(r'name="key" value="([0-9a-f]{32})"')


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel("2026-03-20 12:00Z", tick=False) as traveller:
        yield traveller


@pytest.fixture(autouse=True)
def site(settings):
    settings.SITE_URL = "http://testserver"


@pytest.fixture
def ann(tmp_path):
    """Ann: 1,200 points to spend (1,500 credited, 300 spent on a gift), 500 pending from an
    order five days ago, Bronze on 500 points earned, one code, and a friend she referred."""
    program(expiry_days=365, refund_days=14)
    three_tiers()
    per_amount(points=1)
    import_csv(tmp_path, "A-1,C-1,2026-03-15,500.00,ann@example.com,Ann Dlamini,paid,,,ZAR\n")
    customer = Customer.objects.get(external_id="C-1")
    ledger.adjust(customer, 1500, reason="Welcome back gift", key="gift-ann-1", by="staff")
    gift = reward(points=300, code="mug", title="A mug", kind=Reward.Kind.CONTENT,
                  per_customer_limit=1)
    redemptions.redeem(customer, gift, key="seed-ann-mug")
    reward(points=1000, code="ten-off", title="10 % off")
    reward(points=5000, code="free-course", title="A free course", kind=Reward.Kind.FREE_COURSE,
           course=CourseFactory(title="Data Analysis I"), stock=3)
    tiers.evaluate(TODAY)
    account = ledger.account_of(customer)
    friend = CustomerFactory(name="Bongani Zulu", email="bongani@example.com")
    referrals.record(referrals.code_of(account), friend, key="ref-bongani")
    return customer


def account_of(customer) -> Account:
    return Account.objects.get(customer=customer)


def page_of(client, customer) -> str:
    response = client.get(reverse("account", kwargs={"token": links.token(customer, "account")}))
    assert response.status_code == 200
    return response.content.decode()


def confirm_url(client, customer, code="ten-off") -> str:
    """The redeem link the customer's page offers for the reward `code`."""
    for url in REDEEM_LINK.findall(page_of(client, customer)):
        if url.endswith(f"/{code}/"):
            return url.replace("&amp;", "&")
    raise AssertionError(f"no redeem link for {code}")


def state(customer) -> tuple:
    account = account_of(customer)
    return (Redemption.objects.count(), Entry.objects.count(), account.available,
            account.pending, OutboxMessage.objects.count(), Reward.objects.get(
                code="free-course").stock)


# What the customer sees ---------------------------------------------------------------------


def test_the_section_shows_points_lots_tier_rewards_codes_and_the_referral_link(client, ann):
    page = page_of(client, ann)

    assert "Your points" in page
    assert "<strong>1,200 points</strong> to spend" in page
    assert "500 points pending" in page and "14 days after it" in page
    # The lots, with their expiry: the gift (available now) and the order (pending).
    assert "<caption>Your points, as you earned them, oldest first" in page
    assert "1,200 points <small>of 1,500 points</small>" in page
    assert "Pending, from 29 Mar 2026" in page
    assert "On 20 Mar 2027" in page and "On 29 Mar 2027" in page
    assert "1,200 points will expire on 20 Mar 2027" in page
    # Tier progress, in words and as a bar.
    assert "You are a <strong>Bronze</strong> member" in page
    assert "points earned over the last 12 months" in page and "<strong>500 points</strong>" in page
    assert "500 points more to reach <strong>Silver</strong> (1,000 points in all)" in page
    assert 'value="50"' in page and "50 % of the way to Silver" in page
    # Rewards: one she can have, one she is saving for (stock shown), with what is missing.
    assert "Costs 1,000 points; you would have 200 points left." in page
    assert len(REDEEM_LINK.findall(page)) == 1
    assert "A mug</strong>: You have redeemed it 1 time, as many as allowed." in page
    assert "Redeem 10 % off" in page
    assert "The course “Data Analysis I”, free" in page
    assert "3,800 points to go (24 % of the way)" in page and "Only 3 left." in page
    # Her code, and its state.
    code = Redemption.objects.get().coupon_code
    assert code in page and "Not used yet; works until 18 Jun 2026" in page
    # History, reasons in words.
    assert "Spent on a reward: minus 300 points" in page and "Redeemed: A mug" in page
    assert "Adjusted by our team: plus 1,500 points" in page and "Welcome back gift" in page
    # The referral link and code; the friend by first name only.
    referral_code = account_of(ann).referral_code
    assert f'href="http://testserver/loyalty/join/{referral_code}/"' in page
    assert "Bongani" in page and "Zulu" not in page and "bongani@example.com" not in page
    assert "Waiting for their first order" in page


def test_tiers_judged_on_spend_show_money_and_a_grace_period_says_by_when(client):
    program(tier_basis="spend", tier_grace_days=30)
    bronze, silver, gold = three_tiers()
    gold.benefits = "Free coffee at every workshop\n\nA yearly call with a tutor"
    gold.save()
    customer = CustomerFactory(name="Gugu")
    account = ledger.account_of(customer)
    Account.objects.filter(pk=account.pk).update(tier=gold, tier_qualifying=2500,
                                                 grace_until=date(2026, 4, 19))

    page = page_of(client, customer)

    assert "You are a <strong>Gold</strong> member" in page
    assert "10 % off every course" in page and "1.5 times the points on every order" in page
    assert "<li>Free coffee at every workshop</li>" in page and "<li></li>" not in page
    assert "money spent on paid orders over the last 12 months" in page
    assert "<strong>ZAR2,500.00</strong>" in page and "Gold is our highest tier." in page
    assert "To keep Gold, earn ZAR500.00 more by 19 Apr 2026: you are below its threshold" in page


def test_a_held_out_customer_sees_no_loyalty_section(client):
    reward(points=100)
    customer = CustomerFactory(name="Hana")
    Account.objects.create(customer=customer, held_out=True, created_at="2026-01-01T00:00Z")

    page = page_of(client, customer)

    assert "Hello Hana" in page
    assert "Your points" not in page and "/loyalty/" not in page


def test_no_section_without_an_account_or_any_reward(client):
    customer = CustomerFactory(name="Nomsa")

    assert "Your points" not in page_of(client, customer)
    assert not Account.objects.exists()


def test_a_newcomer_sees_what_they_can_save_for_and_their_referral_code(client):
    reward(points=100, code="ten-off", title="10 % off")
    customer = CustomerFactory(name="Nomsa")

    page = page_of(client, customer)

    assert "<strong>0 points</strong> to spend" in page and "You have no points yet." in page
    assert "100 points to go (0 % of the way)" in page and not REDEEM_LINK.search(page)
    assert f"/loyalty/join/{account_of(customer).referral_code}/" in page
    assert not Entry.objects.exists()


def test_the_staff_preview_shows_the_section_without_redeem_links_or_tokens(admin_client, ann):
    response = admin_client.get(reverse("admin:retention_customer_page", args=[ann.pk]))

    page = response.content.decode()
    assert response.status_code == 200 and "Staff preview" in page
    assert "<strong>1,200 points</strong> to spend" in page and "Redeem 10 % off" not in page
    assert "/loyalty/redeem/" not in page and "/loyalty/join/" not in page
    assert not links.TOKEN.search(page)
    assert account_of(ann).referral_code in page and "the share link is not shown" in page
    assert "the customer's redeem button is not shown" in page


def customer_with(lots: int, codes: int) -> Customer:
    customer = CustomerFactory(name=f"Many {lots}")
    for n in range(lots):
        ledger.adjust(customer, 10 + n, reason=f"Lot {n} of {lots}", key=f"many-{lots}-{n}",
                      by="staff")
    sticker = Reward.objects.get_or_create(code="sticker", defaults={
        "title": "A sticker", "kind": Reward.Kind.CONTENT, "points": 1})[0]
    for n in range(codes):
        redemptions.redeem(customer, sticker, key=f"many-{lots}-sticker-{n}")
    referrals.code_of(account_of(customer))
    return customer


def test_the_page_makes_a_bounded_number_of_queries(client, ann, django_assert_max_num_queries):
    few, many = customer_with(1, 1), customer_with(150, 60)
    tiers.evaluate(TODAY)
    counts = {}
    for customer in (few, many):
        # The section's: the account with its tier, the program (twice: here and in the tier
        # progress), the tiers, the 12-month earnings (keeping the tier), the lots, the expiry
        # dates, the last entries, the rewards, the redemption counts, the codes, the
        # referrals; never one per lot, entry, reward, code or referral.
        with django_assert_max_num_queries(12) as captured:
            sections.context(customer)
        # The page: the customer, their email preferences, their courses, then the sections.
        with django_assert_max_num_queries(25) as captured:
            response = client.get(reverse("account", kwargs={
                "token": links.token(customer, "account")}))
        counts[customer.pk] = len(captured)
        assert response.status_code == 200
    assert counts[few.pk] == counts[many.pk]
    page = response.content.decode()
    # 60 codes took lots 0–4 whole; 100 lots are listed, the 45 newer ones summed.
    assert "Lot 5 of 150" in page and "Lot 104 of 150" in page and "Lot 105 of 150" not in page
    assert "And 45 newer lots holding 6,165 points." in page


# The confirmation page --------------------------------------------------------------------


def test_opening_the_confirmation_page_changes_nothing_even_eleven_times(client, ann):
    url = confirm_url(client, ann)
    before = state(ann)

    for _ in range(11):
        response = client.get(url)
        assert response.status_code == 200

    page = response.content.decode()
    assert "Redeem 10 % off for 1,000 points?" in page
    assert "You will have <strong>200 points left</strong>" in page
    assert 'method="post"' in page and "csrfmiddlewaretoken" in page and KEY_FIELD.search(page)
    assert "no-store" in response["Cache-Control"]
    assert state(ann) == before


def test_confirming_twice_with_the_same_key_redeems_once(client, ann):
    url = confirm_url(client, ann)
    key = KEY_FIELD.search(client.get(url).content.decode())[1]

    first = client.post(url, {"key": key})
    second = client.post(url, {"key": key})  # a double click, or a reload of the POST

    assert first.status_code == second.status_code == 303
    redemption = Redemption.objects.get(reward__code="ten-off")
    assert redemption.key == f"page:{ann.pk}:{key}"
    assert "/loyalty/redeemed/" in first["Location"]
    assert first["Location"].endswith(f"/{redemption.pk}/")
    assert second["Location"].endswith(f"/{redemption.pk}/")
    assert account_of(ann).available == 200
    assert Entry.objects.filter(kind=Entry.Kind.REDEEM, points=-1000).count() == 1

    code = client.get(first["Location"])
    page = code.content.decode()
    assert code.status_code == 200 and redemption.coupon_code in page
    assert "until <strong>18 Jun 2026</strong>" in page
    assert "Enter the code at checkout when you next order." in page
    assert "You have 200 points left." in page
    assert re.search(r'href="/c/[^"]+/">Back to my page', page)
    assert "no-store" in code["Cache-Control"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql",
                    reason="needs concurrent writers (PostgreSQL)")
def test_five_confirmations_at_once_with_the_same_key_redeem_once(ann):
    url = confirm_url(Client(), ann)
    key = KEY_FIELD.search(Client().get(url).content.decode())[1]
    start, answers = threading.Barrier(5), []

    def confirm():
        try:
            start.wait(timeout=60)
            response = Client().post(url, {"key": key})
            answers.append((response.status_code, response.get("Location")))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=confirm) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    redemption = Redemption.objects.get(reward__code="ten-off")
    assert len(answers) == 5 and {status for status, _ in answers} == {303}
    assert {location.rsplit("/", 2)[-2] for _, location in answers} == {str(redemption.pk)}
    assert account_of(ann).available == 200
    assert Entry.objects.filter(kind=Entry.Kind.REDEEM, points=-1000).count() == 1


def test_a_new_confirmation_is_a_new_redemption_and_a_short_balance_is_refused_in_words(
        client, ann):
    url = confirm_url(client, ann)
    client.post(url, {"key": KEY_FIELD.search(client.get(url).content.decode())[1]})

    # 200 points left: the page now says the reward is out of reach, with no form.
    again = client.get(url)
    assert again.status_code == 409
    assert "10 % off costs 1,000 points; you have 200 points." in again.content.decode()
    assert 'method="post"' not in again.content.decode()

    # A form opened before the first redemption, posted after it: refused, nothing spent.
    refused = client.post(url, {"key": "0" * 32})
    assert refused.status_code == 409
    assert "10 % off costs 1,000 points; you have 200 points." in refused.content.decode()
    assert "Nothing was redeemed" in refused.content.decode()
    assert Redemption.objects.filter(reward__code="ten-off").count() == 1
    assert account_of(ann).available == 200


def test_a_confirmation_without_a_proper_key_redeems_nothing(client, ann):
    url = confirm_url(client, ann)
    before = state(ann)

    for data in ({}, {"key": "short"}, {"key": "x" * 101}, {"key": "<script>alert(1)</script>"}):
        response = client.post(url, data)
        assert response.status_code == 400
        assert "nothing was redeemed" in response.content.decode()
        assert KEY_FIELD.search(response.content.decode())  # a fresh form to confirm again

    assert state(ann) == before


def test_the_confirmation_needs_the_pages_csrf_token(ann):
    browser = Client(enforce_csrf_checks=True)
    url = confirm_url(browser, ann)
    page = browser.get(url).content.decode()
    key = KEY_FIELD.search(page)[1]
    before = state(ann)

    assert browser.post(url, {"key": key}).status_code == 403  # no token: a cross-site POST
    assert state(ann) == before

    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)[1]
    assert browser.post(url, {"key": key, "csrfmiddlewaretoken": csrf}).status_code == 303
    assert account_of(ann).available == 200


def test_an_unknown_or_unavailable_reward_is_explained_and_nothing_is_redeemed(client, ann):
    token = links.token(ann, "loyalty")
    before = state(ann)

    unknown = client.get(reverse("loyalty:redeem", args=[token, "no-such-reward"]))
    assert unknown.status_code == 404
    assert "This reward does not exist" in unknown.content.decode()
    assert client.post(reverse("loyalty:redeem", args=[token, "no-such-reward"]),
                       {"key": "a" * 32}).status_code == 404

    Reward.objects.filter(code="free-course").update(stock=0)
    out = client.get(reverse("loyalty:redeem", args=[token, "free-course"]))
    assert out.status_code == 409 and "A free course is out of stock." in out.content.decode()

    Reward.objects.filter(code="ten-off").update(active=False)
    ended = client.get(reverse("loyalty:redeem", args=[token, "ten-off"]))
    assert ended.status_code == 409
    assert "10 % off cannot be redeemed at the moment." in ended.content.decode()
    posted = client.post(reverse("loyalty:redeem", args=[token, "ten-off"]), {"key": "b" * 32})
    assert posted.status_code == 409 and 'method="post"' not in posted.content.decode()

    assert state(ann)[:5] == before[:5]


# Links that do not work ---------------------------------------------------------------------


def tampered(token: str) -> str:
    return token[:-2] + ("AA" if not token.endswith("AA") else "BB")


@pytest.mark.parametrize("make, status", [
    (lambda customer: "nonsense", 400),  # forged
    (lambda customer: tampered(links.token(customer, "loyalty")), 400),  # altered
    (lambda customer: links.token(customer, "account"), 400),  # another purpose's
    (lambda customer: links.token(customer, "unsubscribe"), 400),
])
def test_a_bad_token_is_refused_without_revealing_anything(client, ann, make, status):
    token = make(ann)
    redemption = Redemption.objects.get()
    before = state(ann)

    for response in (client.get(reverse("loyalty:redeem", args=[token, "ten-off"])),
                     client.post(reverse("loyalty:redeem", args=[token, "ten-off"]),
                                 {"key": "c" * 32}),
                     client.get(reverse("loyalty:redeemed", args=[token, redemption.pk]))):
        page = response.content.decode()
        assert response.status_code == status and "This link does not work" in page
        assert "Email me a fresh link" in page
        assert "Ann" not in page and "10 % off" not in page and redemption.coupon_code not in page
        assert "points" not in page
    assert state(ann) == before


def test_an_expired_token_says_so_and_redeems_nothing(client, ann, clock):
    url = confirm_url(client, ann)
    key = KEY_FIELD.search(client.get(url).content.decode())[1]
    before = state(ann)

    clock.shift(timedelta(days=3))  # a "loyalty" link works for 2 days
    opened, posted = client.get(url), client.post(url, {"key": key})

    for response in (opened, posted):
        assert response.status_code == 410
        page = response.content.decode()
        assert "This link has expired" in page and "Ann" not in page and "10 % off" not in page
    assert state(ann) == before


def test_a_withdrawn_link_no_longer_redeems(client, ann):
    url = confirm_url(client, ann)
    key = KEY_FIELD.search(client.get(url).content.decode())[1]
    links.revoke(ann)

    assert client.post(url, {"key": key}).status_code == 400
    assert not Redemption.objects.filter(reward__code="ten-off").exists()


def test_another_customers_code_is_not_found(client, ann):
    theirs = Redemption.objects.get()
    other = CustomerFactory(name="Eve")
    ledger.adjust(other, 500, reason="Gift", key="gift-eve", by="staff")
    mine = redemptions.redeem(other, Reward.objects.get(code="mug"), key="eve-mug").redemption
    token = links.token(other, "loyalty")

    response = client.get(reverse("loyalty:redeemed", args=[token, theirs.pk]))

    assert response.status_code == 404
    assert theirs.coupon_code not in response.content.decode()
    assert "We could not find this code" in response.content.decode()
    own = client.get(reverse("loyalty:redeemed", args=[token, mine.pk]))
    assert own.status_code == 200 and mine.coupon_code in own.content.decode()
    assert client.get(reverse("loyalty:redeemed", args=[token, 999999])).status_code == 404


# The referral link --------------------------------------------------------------------------


def test_a_referral_link_says_who_invited_them_and_sends_them_to_sign_up(client, ann, settings):
    settings.RETENTION_REFERRAL_SIGNUP_URL = "https://shop.example.com/signup?from=friend"
    code = account_of(ann).referral_code
    counts = (Account.objects.count(), Referral.objects.count(), Entry.objects.count())

    response = client.get(reverse("loyalty:join", args=[code]))

    page = response.content.decode()
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    assert "Ann invited you" in page and "Dlamini" not in page and "ann@example.com" not in page
    assert f'href="https://shop.example.com/signup?from=friend&amp;ref={code}"' in page
    assert "250 points as a welcome" in page
    assert client.get(reverse("loyalty:join", args=[code.lower()])).status_code == 200
    assert (Account.objects.count(), Referral.objects.count(), Entry.objects.count()) == counts


def test_a_referral_link_goes_to_the_site_when_no_signup_address_is_set(client, ann):
    code = account_of(ann).referral_code

    page = client.get(reverse("loyalty:join", args=[code])).content.decode()

    assert f'href="http://testserver/?ref={code}"' in page


def test_an_unknown_referral_code_is_a_page_in_words(client, ann):
    response = client.get(reverse("loyalty:join", args=["NOSUCH99"]))

    assert response.status_code == 404
    assert "This invitation does not work" in response.content.decode()
    assert "Ann" not in response.content.decode()
