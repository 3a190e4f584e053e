"""A manager in a real browser: who is at risk and why, acting on the list, and the
predicted-value page with its model health, chart and holdout validation."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import expect

from retention.sales import summaries
from retention.value import atrisk, predictions
from retention.value.models import ClvFit, FollowUp, ReEngagementList
from tests.factories import CustomerFactory, EnrolmentFactory, OrderFactory, SupportTicketFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def moment(days_ago: int) -> datetime:
    return datetime.combine(timezone.localdate() - timedelta(days=days_ago),
                            datetime.min.time(), tzinfo=UTC) + timedelta(hours=10)


@pytest.fixture
def at_risk_night(django_user_model):
    """Customers with a night's predictions and at-risk list; a manager set up as
    create_manager does (may read everything, may hand out follow-ups)."""
    call_command("create_manager", "--url", "http://testserver/", stdout=StringIO())
    boss = django_user_model.objects.create_user("boss", password="pw-boss-1234", is_staff=True)
    boss.groups.add(Group.objects.get(name="Managers"))
    late = CustomerFactory(external_id="LATE-1", name="Lerato Late")
    for days in (400, 370, 340, 310, 200):
        OrderFactory(customer=late, amount=Decimal("300"), ordered_at=moment(days))
    upset = CustomerFactory(external_id="UPSET-1", name="Uma Upset")
    OrderFactory(customer=upset, amount=Decimal("120"), ordered_at=moment(20))
    SupportTicketFactory(customer=upset, is_complaint=True, subject="Certificate missing",
                         opened_at=moment(4))
    quiet = CustomerFactory(external_id="QUIET-1")
    OrderFactory(customer=quiet, amount=Decimal("80"), ordered_at=moment(90))
    EnrolmentFactory(customer=quiet, started_on=timezone.localdate() - timedelta(days=88),
                     progress_percent=35, last_activity_at=moment(50))
    summaries.refresh()
    night = timezone.localdate() - timedelta(days=1)
    predictions.fit(night, purpose=ClvFit.Purpose.NIGHTLY, store=True)
    atrisk.score(night)
    return boss


def log_in(page, live_server, path):
    page.goto(f"{live_server.url}{path}")
    page.get_by_label("Username").fill("boss")
    page.get_by_label("Password").fill("pw-boss-1234")
    page.get_by_role("button", name="Log in").click()


def test_a_manager_filters_the_list_and_hands_out_a_follow_up(page, live_server, at_risk_night):
    log_in(page, live_server, "/metrics/at-risk/")

    expect(page.get_by_role("heading", name="Customers at risk")).to_be_visible()
    expect(page.locator("#risk-count")).to_have_text("3")
    expect(page.locator("#at-risk-list")).to_contain_text("Certificate missing")

    page.get_by_label("Reason", exact=True).select_option("complaint")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#risk-count")).to_have_text("1")
    assert "reason=complaint" in page.url

    page.get_by_label("Select UPSET-1").check()
    page.get_by_label("Assign a follow-up").check()
    page.locator("#id_assignee").select_option(label="boss")
    page.get_by_role("button", name="Do it").click()

    expect(page.get_by_role("status")).to_contain_text("1 follow-up created")
    assert "reason=complaint" in page.url  # back on the same list
    expect(page.locator("#at-risk-list")).to_contain_text("boss")
    follow_up = FollowUp.objects.get()
    assert (follow_up.customer.external_id, follow_up.assigned_to.username) == ("UPSET-1", "boss")
    assert "Certificate missing" in follow_up.reason


def test_a_manager_puts_customers_on_a_new_re_engagement_list(page, live_server, at_risk_night):
    log_in(page, live_server, "/metrics/at-risk/")

    page.get_by_label("Select LATE-1").check()
    page.get_by_label("Select QUIET-1").check()
    page.get_by_label("Add to a re-engagement list").check()
    page.get_by_label("or a new list named").fill("Win-back")
    page.get_by_role("button", name="Do it").click()

    expect(page.get_by_role("status")).to_contain_text("2 of 2 customers added to “Win-back”")
    assert sorted(ReEngagementList.objects.get(name="Win-back").customers.values_list(
        "external_id", flat=True)) == ["LATE-1", "QUIET-1"]


def test_the_predicted_value_page_explains_its_method_and_draws_its_chart(
        page, live_server, at_risk_night):
    log_in(page, live_server, "/metrics/value/")

    expect(page.get_by_role("heading", name="Predicted customer value")).to_be_visible()
    # Three customers are far too few to fit: the page says the simple rule was used.
    expect(page.locator("#method")).to_contain_text("Simple rule")
    expect(page.locator("#fallback-reasons")).to_contain_text("too little data to fit")
    expect(page.locator("#value-summary")).to_contain_text("3")
    page.wait_for_function("() => window.charts && window.charts['value-chart']")
    assert page.locator("#value-chart").bounding_box()["height"] > 50
    page.get_by_role("link", name="those still counted active").click()
    expect(page.get_by_role("heading", name="Customers at risk")).to_be_visible()
