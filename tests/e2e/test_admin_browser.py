"""Staff in a real browser: log in, find a customer, change a price, read the API docs."""

from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from retention.sales import summaries
from retention.sales.models import PriceChange
from tests.factories import CourseFactory, CustomerFactory, OrderFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOT = "/tmp/admin-customers.png"


def log_in(page, live_server, *, username="staff", password="pw-staff-1234"):
    """Log in through the admin's login form, as a person would."""
    page.goto(f"{live_server.url}/admin/")
    expect(page).to_have_url(f"{live_server.url}/admin/login/?next=/admin/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    index = page.get_by_role("heading", name="Customers, catalogue and retention programs")
    expect(index).to_be_visible()


def test_staff_finds_customer_by_email_with_order_summary(page, live_server, staff_user):
    naledi = CustomerFactory(external_id="cust-e2e-1", email="naledi@example.com",
                             name="Naledi Mokoena")
    OrderFactory(customer=naledi, amount=Decimal("120.00"),
                 ordered_at=datetime(2025, 1, 10, 9, tzinfo=UTC))
    OrderFactory(customer=naledi, amount=Decimal("80.50"),
                 ordered_at=datetime(2025, 3, 2, 9, tzinfo=UTC))
    CustomerFactory(external_id="cust-e2e-2", email="pieter@example.com", name="Pieter Botha")
    summaries.refresh()

    log_in(page, live_server)
    page.get_by_role("link", name="Customers", exact=True).click()
    expect(page.get_by_role("heading", name="Select customer to change")).to_be_visible()
    page.get_by_role("textbox", name="Search").fill("naledi@example.com")
    page.get_by_role("textbox", name="Search").press("Enter")

    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.locator(".field-external_id")).to_have_text("cust-e2e-1")
    expect(rows.locator(".field-display_name")).to_have_text("Naledi Mokoena")
    expect(rows.locator(".field-orders")).to_have_text("2")
    expect(rows.locator(".field-spent")).to_have_text("200.50")
    page.screenshot(path=SCREENSHOT, full_page=True)


def test_staff_changes_course_price_and_sees_price_history(page, live_server, staff_user):
    course = CourseFactory(code="excel-pro", title="Excel for professionals",
                           price=Decimal("100.00"))

    log_in(page, live_server)
    page.goto(f"{live_server.url}/admin/retention/course/")
    page.get_by_role("link", name="excel-pro").click()
    history = page.locator("#price_changes-group tbody tr.has_original")
    expect(history).to_have_count(0)
    page.get_by_label("Price:", exact=True).fill("125.00")
    page.get_by_role("button", name="Save and continue editing").click()

    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    expect(history).to_have_count(1)
    expect(history.locator(".field-old_price")).to_have_text("100.00")
    expect(history.locator(".field-new_price")).to_have_text("125.00")
    expect(history.locator(".field-change")).to_have_text("+25.00 %")
    change = PriceChange.objects.get()
    assert (change.course_id, change.old_price, change.new_price) == (
        course.pk, Decimal("100.00"), Decimal("125.00"))


def test_api_docs_render_from_local_files(page, live_server):
    requested_hosts = set()
    page.on("request", lambda request: requested_hosts.add(urlsplit(request.url).netloc))

    page.goto(f"{live_server.url}/api/docs/")

    # The title is drawn by Swagger UI's JavaScript once it has read the schema.
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Course retention API")
    # Swagger UI and its styles come from the sidecar package, not a CDN.
    assert requested_hosts == {urlsplit(live_server.url).netloc}


def test_customer_search_box_fits_a_phone_screen(browser, live_server, staff_user):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                  has_touch=True, device_scale_factor=3)
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        log_in(page, live_server)
        page.goto(f"{live_server.url}/admin/retention/customer/")

        search = page.get_by_role("textbox", name="Search")
        expect(search).to_be_visible()
        box = search.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    finally:
        context.close()
