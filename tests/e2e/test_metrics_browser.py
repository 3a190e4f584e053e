"""A manager in a real browser: the metrics pages, their charts, the pickers, the lists, the CSV."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone
from playwright.sync_api import expect

from retention.figures import segments
from retention.sales import summaries
from tests.factories import CustomerFactory, OrderFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def manager(django_user_model):
    user = django_user_model.objects.create_user("boss", password="pw-boss-1234", is_staff=True)
    user.groups.add(Group.objects.get_or_create(name="Managers")[0])
    return user


def log_in_to_metrics(page, live_server, username, password):
    page.goto(f"{live_server.url}/metrics/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def test_a_manager_reads_the_metrics_changes_the_period_and_downloads_the_csv(
        page, live_server, manager, tmp_path):
    today = timezone.localdate()
    loyal = CustomerFactory(external_id="LOYAL-1", acquisition_source="partner")
    lapsed = CustomerFactory(external_id="LAPSED-1", acquisition_source="organic")
    for customer, days in ((loyal, 400), (loyal, 200), (loyal, 30), (lapsed, 300)):
        OrderFactory(customer=customer, amount=Decimal("100"),
                     ordered_at=datetime.combine(today - timedelta(days=days), datetime.min.time(),
                                                 tzinfo=UTC))
    summaries.refresh()

    log_in_to_metrics(page, live_server, "boss", "pw-boss-1234")

    expect(page.get_by_role("heading", name="Retention metrics")).to_be_visible()
    expect(page.locator("#metric-retention_rate")).to_contain_text("R / S × 100.")
    # The chart is drawn by Chart.js, served from this server (npm package, no CDN).
    page.wait_for_function("() => window.trendChart && window.trendChart.data.labels.length === 8")
    assert page.locator("#trend-chart").bounding_box()["height"] > 50

    page.get_by_role("link", name="Show the last 12 months").click()
    page.wait_for_function("() => window.trendChart && window.trendChart.data.labels.length === 12")

    page.get_by_label("Show").select_option("last_quarter")
    page.get_by_label("Source").select_option("partner")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#period-summary")).to_contain_text("customers: source Partner")
    assert "period=last_quarter" in page.url and "source=partner" in page.url

    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    path = tmp_path / "metrics.csv"
    download.value.save_as(path)
    assert path.read_text().startswith("metric,value,previous,change,definition")

    page.get_by_label("Show").select_option("this_quarter")
    page.get_by_label("Source").select_option("")
    page.get_by_role("button", name="Show").click()
    page.locator("#metric-customers_start").get_by_role("link").click()
    expect(page.get_by_role("heading", name="Active at the start of the period (S)")).to_be_visible()
    expect(page.locator("table.customers")).to_contain_text("LOYAL-1")


def test_a_manager_reads_the_cohorts_and_the_segments(page, live_server, manager):
    today = timezone.localdate()
    for n, days in enumerate((200, 170, 40)):
        OrderFactory(customer=CustomerFactory(external_id=f"C-{n}"), amount=Decimal("80"),
                     ordered_at=datetime.combine(today - timedelta(days=days), datetime.min.time(),
                                                 tzinfo=UTC))
    summaries.refresh()
    segments.snapshot(today - timedelta(days=100))
    segments.snapshot(today - timedelta(days=1))

    log_in_to_metrics(page, live_server, "boss", "pw-boss-1234")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Cohorts").click()
    expect(page.get_by_role("heading", name="Cohort retention")).to_be_visible()
    expect(page.locator("#cohort-retention")).to_contain_text("100.0")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Segments").click()
    page.wait_for_function("() => window.charts && window.charts['sizes-chart']")
    expect(page.locator("#segment-sizes")).to_contain_text("One-time buyers")
    page.locator("#segment-moves").get_by_role("link", name="1 from New (no order yet) to One-time buyers").click()
    expect(page.locator("#customer-count")).to_have_text("1")
    expect(page.locator("table.customers")).to_contain_text("C-2")


def test_staff_who_are_not_managers_are_refused(page, live_server, django_user_model):
    django_user_model.objects.create_user("clerk", password="pw-clerk-1234", is_staff=True)

    log_in_to_metrics(page, live_server, "clerk", "pw-clerk-1234")

    expect(page.locator("body")).to_contain_text("403")


def test_a_manager_starts_at_the_home_page_and_lands_on_the_metrics(page, live_server, manager):
    page.goto(f"{live_server.url}/")
    page.get_by_label("Username").fill("boss")
    page.get_by_label("Password").fill("pw-boss-1234")
    page.get_by_role("button", name="Log in").click()

    expect(page).to_have_url(f"{live_server.url}/metrics/")
    expect(page.get_by_role("heading", name="Needs attention")).to_be_visible()
    # The menu on every page, and the admin leads back to the metrics.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin").click()
    page.get_by_role("link", name="View site").click()
    expect(page).to_have_url(f"{live_server.url}/metrics/")
