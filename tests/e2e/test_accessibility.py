"""The managers' pages meet WCAG 2.1 AA as axe-core checks it, on a laptop and on a phone."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from retention.figures import segments, targets
from retention.sales import summaries
from retention.sales.models import Customer, PriceChange
from retention.value import atrisk, predictions
from retention.value.models import ClvFit
from tests.e2e.conftest import serious_accessibility_problems
from tests.factories import CourseFactory, CustomerFactory, EnrolmentFactory, OrderFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PAGES = ["/metrics/", "/metrics/?trend=months", "/metrics/cohorts/", "/metrics/segments/",
         "/metrics/price-update/", "/metrics/scorecard/",
         "/metrics/customers/?set=buyers&period=this_quarter", "/metrics/value/",
         "/metrics/at-risk/"]


@pytest.fixture
def logged_in(page, live_server, django_user_model):
    boss = django_user_model.objects.create_user("boss", password="pw-boss-1234", is_staff=True)
    boss.groups.add(Group.objects.get_or_create(name="Managers")[0])
    today = timezone.localdate()
    course = CourseFactory(code="bus-101")
    PriceChange.objects.create(course=course, old_price=Decimal("90"), new_price=Decimal("100"),
                               changed_at=datetime.combine(today - timedelta(days=30),
                                                           datetime.min.time(), tzinfo=UTC))
    for n, days in enumerate((300, 120, 45, 10, 3)):
        OrderFactory(customer=CustomerFactory(external_id=f"C-{n % 3}-{n}"), amount=Decimal("90"),
                     ordered_at=datetime.combine(today - timedelta(days=days),
                                                 datetime.min.time(), tzinfo=UTC))
    EnrolmentFactory(customer=Customer.objects.get(external_id="C-0-0"),
                     course=course, started_on=today - timedelta(days=100), progress_percent=30,
                     last_activity_at=timezone.now() - timedelta(days=60))
    summaries.refresh()
    predictions.fit(today - timedelta(days=1), purpose=ClvFit.Purpose.NIGHTLY, store=True)
    atrisk.score(today - timedelta(days=1))
    segments.snapshot(today - timedelta(days=95))
    segments.snapshot(today - timedelta(days=1))
    targets.load_plan(today.year, (today.month - 1) // 3 + 1)
    page.goto(f"{live_server.url}/admin/login/?next=/metrics/")
    page.get_by_label("Username").fill("boss")
    page.get_by_label("Password").fill("pw-boss-1234")
    page.get_by_role("button", name="Log in").click()
    return page


@pytest.mark.parametrize("width, height", [(1440, 900), (390, 844)])
def test_the_managers_pages_have_no_serious_accessibility_problems(logged_in, live_server,
                                                                    width, height):
    logged_in.set_viewport_size({"width": width, "height": height})
    problems = {}
    for path in PAGES:
        logged_in.goto(f"{live_server.url}{path}")
        found = serious_accessibility_problems(logged_in)
        if found:
            problems[path] = found
    assert problems == {}


def test_the_pages_can_be_used_from_the_keyboard(logged_in, live_server):
    logged_in.goto(f"{live_server.url}/metrics/")
    logged_in.keyboard.press("Tab")
    assert logged_in.evaluate("document.activeElement.textContent") == "Skip to content"
    logged_in.keyboard.press("Enter")
    for _ in range(3):
        logged_in.keyboard.press("Tab")
    focused = logged_in.evaluate("document.activeElement.tagName")
    assert focused in ("SELECT", "INPUT", "A", "BUTTON")


@pytest.mark.parametrize("width, height", [(1366, 768), (390, 844)])
def test_every_page_fits_the_screen_and_every_chart_has_room_to_plot(logged_in, live_server,
                                                                      width, height):
    """No page scrolls sideways (wide tables scroll in their own box), and each chart is at
    least 180 px tall with a plot area (inside the axes and legend) of 120 px or more."""
    logged_in.set_viewport_size({"width": width, "height": height})
    problems, charts_seen = [], 0
    for path in PAGES:
        logged_in.goto(f"{live_server.url}{path}")
        logged_in.wait_for_load_state("load")
        wide = logged_in.evaluate("() => document.documentElement.scrollWidth")
        if wide > width:
            problems.append(f"{path}: the page is {wide} px wide")
        for chart in logged_in.evaluate("""() => Object.entries(window.charts || {}).map(
                ([id, chart]) => ({id, height: chart.canvas.getBoundingClientRect().height,
                                   plot: chart.chartArea.bottom - chart.chartArea.top}))"""):
            charts_seen += 1
            if chart["height"] < 180 or chart["plot"] < 120:
                problems.append(f"{path} {chart['id']}: {chart['height']:.0f} px tall, "
                                f"plot {chart['plot']:.0f} px")
    assert charts_seen >= 4  # the trend (twice), segment sizes, value and holdout charts
    assert problems == []
