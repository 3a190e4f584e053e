"""The customer's pages in a real browser, on a phone and a laptop: the page a link opens, its
preferences form, and the page an expired link gets; all checked with axe-core."""

from datetime import UTC, datetime, timedelta
from urllib.parse import urlparse

import pytest
import time_machine
from playwright.sync_api import expect

from retention.mail import consent, links
from retention.mail.models import ConsentRecord
from tests.e2e.conftest import serious_accessibility_problems
from tests.factories import CourseFactory, CustomerFactory, EnrolmentFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def thandi():
    customer = CustomerFactory(name="Thandi", email="thandi@example.com", marketing_consent=True)
    EnrolmentFactory(customer=customer, course=CourseFactory(title="Data Analysis I"),
                     progress_percent=60)
    return customer


def path(url: str) -> str:
    return urlparse(url).path


@pytest.mark.parametrize("viewport", [PHONE, {"width": 1440, "height": 900}])
def test_a_customer_reads_their_page_and_changes_their_preferences(page, live_server, thandi,
                                                                   viewport):
    page.set_viewport_size(viewport)
    page.goto(live_server.url + path(links.url(thandi, "account")))

    expect(page.get_by_role("heading", name="Hello Thandi")).to_be_visible()
    expect(page.get_by_text("Data Analysis I")).to_be_visible()
    assert serious_accessibility_problems(page) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]

    page.get_by_label("Offers and reminders").uncheck()
    page.get_by_label("Pause all but essential email").select_option("30")
    page.get_by_role("button", name="Save my preferences").click()

    expect(page.get_by_role("status")).to_contain_text("Your preferences are saved.")
    preferences = consent.preferences_of(thandi)
    assert not preferences.offers and preferences.paused_until is not None
    assert set(ConsentRecord.objects.values_list("subject", flat=True)) == {"offers", "pause"}
    assert serious_accessibility_problems(page) == []


def test_the_form_works_from_the_keyboard(page, live_server, thandi):
    page.set_viewport_size(PHONE)
    page.goto(live_server.url + path(links.url(thandi, "preferences")))

    page.get_by_label("Surveys about your experience").focus()
    page.keyboard.press("Space")  # untick
    page.get_by_role("button", name="Save my preferences").focus()
    page.keyboard.press("Enter")

    expect(page.get_by_role("status")).to_contain_text("saved")
    assert not consent.preferences_of(thandi).surveys


def test_an_expired_link_offers_a_fresh_one_without_saying_whose_it_was(page, live_server,
                                                                       thandi):
    with time_machine.travel(datetime.now(UTC) - timedelta(days=400), tick=False):
        old = path(links.url(thandi, "account"))
    page.set_viewport_size(PHONE)
    page.goto(live_server.url + old)

    expect(page.get_by_role("heading", name="This link has expired")).to_be_visible()
    assert "Thandi" not in page.content()
    assert serious_accessibility_problems(page) == []

    page.get_by_role("link", name="Email me a fresh link").click()
    page.get_by_label("Your email address").fill("thandi@example.com")
    page.get_by_role("button", name="Email me a link").click()

    expect(page.get_by_role("status")).to_contain_text("If this address belongs to one of our")
    assert serious_accessibility_problems(page) == []


def test_unsubscribing_from_a_link_asks_first(page, live_server, thandi):
    page.set_viewport_size(PHONE)
    page.goto(live_server.url + path(links.url(thandi, "unsubscribe", t="offers")))

    assert consent.preferences_of(thandi).offers  # opening the link changed nothing
    assert serious_accessibility_problems(page) == []
    page.get_by_role("button", name="Unsubscribe").click()

    expect(page.get_by_role("heading", name="You are unsubscribed")).to_be_visible()
    assert not consent.preferences_of(thandi).offers
