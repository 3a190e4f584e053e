"""A manager in a real browser: the metrics page, its chart, the period picker, the CSV."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone
from playwright.sync_api import expect

from retention import summaries
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
    customer = CustomerFactory()
    today = timezone.localdate()
    for days in (400, 200, 30):
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

    page.get_by_label("Show").select_option("last_quarter")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#period-summary")).to_contain_text("against")
    assert "period=last_quarter" in page.url

    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    path = tmp_path / "metrics.csv"
    download.value.save_as(path)
    assert path.read_text().startswith("metric,value,previous,change,definition")


def test_staff_who_are_not_managers_are_refused(page, live_server, django_user_model):
    django_user_model.objects.create_user("clerk", password="pw-clerk-1234", is_staff=True)

    log_in_to_metrics(page, live_server, "clerk", "pw-clerk-1234")

    expect(page.locator("body")).to_contain_text("403")
