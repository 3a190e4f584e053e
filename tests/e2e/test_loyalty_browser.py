"""Redeeming a reward in a real browser, on a phone and a laptop: the customer opens their page
from the link in an email, sees their points and lots, picks a reward, confirms, and reads
their code; with the mouse and with the keyboard alone; every page checked with axe-core."""

import re
from urllib.parse import urlparse

import pytest
from playwright.sync_api import expect

from loyalty import ledger
from loyalty.models import Account, Entry, Redemption
from retention.account import fresh_links
from retention.mail.models import OutboxMessage
from tests.e2e.conftest import serious_accessibility_problems
from tests.factories import CustomerFactory
from tests.loyalty.helpers import program, reward

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 768}


@pytest.fixture
def thandi():
    program(expiry_days=365)
    reward(points=1000, code="ten-off", title="10 % off")
    reward(points=5000, code="big", title="A free month")
    customer = CustomerFactory(name="Thandi Mokoena", email="thandi@example.com")
    ledger.adjust(customer, 1500, reason="Thank you for your feedback", key="gift-thandi",
                  by="staff")
    return customer


def open_from_email(page, live_server, customer) -> None:
    """Open the customer's page from the link in the email our outbox holds for them."""
    fresh_links.send_fresh_link(customer)
    message = OutboxMessage.objects.get(customer=customer, purpose="fresh_link")
    link = re.search(r"https?://\S+/c/[^/\s]+/", message.body_text)[0]
    page.goto(live_server.url + urlparse(link).path)


def fits(page, viewport) -> bool:
    return page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]


def check(page, viewport) -> None:
    assert serious_accessibility_problems(page) == []
    assert fits(page, viewport)


@pytest.mark.parametrize("viewport", [PHONE, LAPTOP], ids=["phone", "laptop"])
def test_a_customer_redeems_a_reward_from_their_page(page, live_server, thandi, viewport):
    page.set_viewport_size(viewport)
    open_from_email(page, live_server, thandi)

    expect(page.get_by_role("heading", name="Your points", exact=True)).to_be_visible()
    expect(page.locator(".balance")).to_have_text("1,500 points to spend")
    lots = page.get_by_role("table", name=re.compile("Your points, as you earned them"))
    expect(lots).to_contain_text("1,500 points")
    expect(lots).to_contain_text("Thank you for your feedback")
    expect(page.get_by_text("3,500 points to go")).to_be_visible()
    check(page, viewport)

    page.get_by_role("link", name="Redeem 10 % off").click()

    expect(page.get_by_role("heading", name="Redeem 10 % off for 1,000 points?")).to_be_visible()
    expect(page.get_by_text("You will have 500 points left")).to_be_visible()
    assert not Redemption.objects.exists()  # opening the page spent nothing
    check(page, viewport)

    page.get_by_role("button", name="Yes, redeem for 1,000 points").click()

    expect(page.get_by_role("heading", name="Your code for 10 % off")).to_be_visible()
    redemption = Redemption.objects.get()
    expect(page.locator("#coupon-code")).to_have_text(redemption.coupon_code)
    expect(page.get_by_role("status")).to_contain_text("You have 500 points left.")
    check(page, viewport)
    assert Account.objects.get(customer=thandi).available == 500

    # A reload of the code page posts nothing again; the way back shows the code listed.
    page.reload()
    page.get_by_role("link", name="Back to my page").click()
    expect(page.locator(".balance")).to_have_text("500 points to spend")
    expect(page.get_by_text(redemption.coupon_code)).to_be_visible()
    assert Redemption.objects.count() == 1
    assert Entry.objects.filter(kind=Entry.Kind.REDEEM).count() == 1


def tab_to(page, name: str, *, limit: int = 80) -> None:
    """Press Tab until the element whose text is `name` has the focus."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent.trim()") == name:
            return
    pytest.fail(f"{name!r} cannot be reached with the Tab key")


@pytest.mark.parametrize("viewport", [PHONE, LAPTOP], ids=["phone", "laptop"])
def test_the_whole_path_works_from_the_keyboard(page, live_server, thandi, viewport):
    page.set_viewport_size(viewport)
    open_from_email(page, live_server, thandi)

    tab_to(page, "Redeem 10 % off")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Redeem 10 % off for 1,000 points?")).to_be_visible()

    tab_to(page, "Yes, redeem for 1,000 points")
    assert page.evaluate("document.activeElement.tagName") == "BUTTON"
    page.keyboard.press("Enter")

    expect(page.get_by_role("heading", name="Your code for 10 % off")).to_be_visible()
    expect(page.locator("#coupon-code")).to_have_text(Redemption.objects.get().coupon_code)
    tab_to(page, "Back to my page")
    page.keyboard.press("Enter")
    expect(page.locator(".balance")).to_have_text("500 points to spend")


def test_a_referral_link_and_an_unaffordable_reward_read_well_on_a_phone(page, live_server,
                                                                         thandi):
    page.set_viewport_size(PHONE)
    open_from_email(page, live_server, thandi)
    share = page.locator("a.referral-link").get_attribute("href")

    page.goto(live_server.url + urlparse(share).path)
    expect(page.get_by_role("heading", name="Thandi invited you")).to_be_visible()
    assert "Mokoena" not in page.content()
    check(page, PHONE)

    page.go_back()
    confirm = page.get_by_role("link", name="Redeem 10 % off").get_attribute("href")
    ledger.adjust(thandi, -1000, reason="Correction", key="fix-thandi", by="staff")
    page.goto(live_server.url + confirm)
    expect(page.get_by_role("status")).to_contain_text(
        "10 % off costs 1,000 points; you have 500 points.")
    assert page.get_by_role("button").count() == 0
    check(page, PHONE)
