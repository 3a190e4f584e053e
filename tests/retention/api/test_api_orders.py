"""Orders through the API: one order at a time, checked and merged as a CSV row is."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from retention.sales.models import Customer, Order
from tests.factories import (
    BundleFactory,
    CourseFactory,
    CustomerFactory,
    OrderFactory,
    OrderLineFactory,
)

pytestmark = pytest.mark.django_db

URL = "/api/v1/orders/"


def order_body(**changes):
    body = {
        "order_id": "A-1001",
        "customer_id": "cust-1",
        "ordered_at": "2025-03-01T10:00:00+00:00",
        "amount": "120.00",
        "email": "thandi@example.com",
        "name": "Thandi",
        "items": ["py-101"],
    }
    body.update(changes)
    return body


@pytest.fixture
def course():
    return CourseFactory(code="py-101", price=Decimal("120.00"))


def test_same_order_sent_twice_is_stored_once(api_client, course):
    first = api_client.post(URL, order_body(), format="json")
    second = api_client.post(URL, order_body(), format="json")

    assert first.status_code == 201, first.json()
    assert first.json()["result"] == "created"
    assert second.status_code == 200, second.json()
    assert second.json()["result"] == "unchanged"
    assert Order.objects.count() == 1
    assert second.json() | {"result": "created"} == first.json()


def test_created_order_is_returned_with_its_lines_and_updates_the_customer(api_client, course):
    r = api_client.post(URL, order_body(), format="json")

    body = r.json()
    assert body["order_id"] == "A-1001"
    assert body["customer_id"] == "cust-1"
    assert body["amount"] == "120.00"
    assert body["status"] == "paid"
    assert body["currency"] == "ZAR"
    assert body["lines"] == [{"code": "py-101", "kind": "course", "price": "120.00"}]
    customer = Customer.objects.get(external_id="cust-1")
    assert (customer.email, customer.name) == ("thandi@example.com", "Thandi")
    assert customer.order_count == 1
    assert customer.total_spent == Decimal("120.00")


def test_changed_order_is_updated_and_the_summary_follows(api_client, course):
    api_client.post(URL, order_body(), format="json")

    r = api_client.post(URL, order_body(status="Refunded"), format="json")

    assert r.status_code == 200
    assert r.json()["result"] == "updated"
    assert r.json()["status"] == "refunded"
    assert Order.objects.get().status == "refunded"
    customer = Customer.objects.get(external_id="cust-1")
    assert (customer.order_count, customer.total_spent) == (0, Decimal("0"))


def test_number_amount_and_pipe_separated_items_are_read_as_the_csv_would(api_client, course):
    BundleFactory(code="full-stack", price=Decimal("360.00"))

    r = api_client.post(URL, order_body(amount=99.5, items="py-101|FULL-STACK"), format="json")

    assert r.status_code == 201, r.json()
    order = Order.objects.get()
    assert order.amount == Decimal("99.50")
    # Shared in proportion to the list prices (120 : 360), the remainder on the last line.
    assert r.json()["lines"] == [
        {"code": "py-101", "kind": "course", "price": "24.87"},
        {"code": "full-stack", "kind": "bundle", "price": "74.63"},
    ]


def test_order_without_order_id_is_keyed_by_its_content(api_client, course):
    body = order_body(order_id=None)

    first = api_client.post(URL, body, format="json")
    second = api_client.post(URL, body, format="json")

    assert first.status_code == 201
    assert first.json()["order_id"].startswith("row-")
    assert second.status_code == 200
    assert second.json()["result"] == "unchanged"
    assert second.json()["order_id"] == first.json()["order_id"]
    assert Order.objects.count() == 1


def test_put_creates_then_updates_and_the_url_order_id_wins(api_client, course):
    created = api_client.put(f"{URL}B-7/", order_body(order_id="ignored"), format="json")
    updated = api_client.put(f"{URL}B-7/", order_body(amount="100"), format="json")

    assert created.status_code == 201, created.json()
    assert updated.status_code == 200
    assert updated.json()["result"] == "updated"
    assert list(Order.objects.values_list("external_id", "amount")) == [("B-7", Decimal("100.00"))]


def test_order_detail_takes_ids_with_any_character_but_slash(api_client):
    order = OrderFactory(external_id="INV 2025-03 #7?.json", amount=Decimal("5.00"))

    r = api_client.get(f"{URL}INV%202025-03%20%237%3F.json/")

    assert r.status_code == 200
    assert r.json()["order_id"] == order.external_id
    assert r.json()["lines"] == []
    assert api_client.get(f"{URL}nope/").status_code == 404


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"amount": "-5"}, "amount", 'negative amount "-5" (must be 0 or more)'),
        ({"amount": "1.234"}, "amount", '"1.234" has more than 2 decimal places'),
        ({"amount": 1.234}, "amount", '"1.234" has more than 2 decimal places'),
        ({"amount": "ten"}, "amount", '"ten" is not an amount'),
        ({"ordered_at": "2025-02-30"}, "ordered_at", 'unparsable date "2025-02-30"'),
        ({"ordered_at": "1900-01-01"}, "ordered_at", 'unparsable date "1900-01-01"'),
        ({"items": ["py-101", "nope"]}, "items", 'unknown item code "nope"'),
        ({"items": "py-101||py-101"}, "items", "empty item code between '|' separators"),
        ({"status": "shipped"}, "status", 'unknown status "shipped"'),
        ({"currency": "USD"}, "currency", '"USD" is not the business currency ZAR'),
        ({"email": "not-an-email"}, "email", '"not-an-email" is not an email address'),
        ({"order_id": "x" * 65}, "order_id", "longer than 64 characters"),
        ({"customer_id": ""}, "customer_id", "required, but empty"),
        ({"amount": True}, "amount", "Not a valid string."),
        ({"items": ["py-101", 7]}, "items", "An item code is text; 7 is not."),
        ({"items": ["py-101|x"]}, "items", 'cannot contain "|"'),
        ({"name": "nul\x00byte"}, "name", "Null characters are not allowed."),
    ],
)
def test_bad_order_is_refused_with_the_field_named(api_client, course, changes, field, message):
    r = api_client.post(URL, order_body(**changes), format="json")

    assert r.status_code == 400
    errors = r.json()
    assert field in errors, errors
    assert any(message in text for text in errors[field]), errors
    assert not Order.objects.exists()
    assert not Customer.objects.exists()


def test_missing_columns_are_each_named(api_client):
    r = api_client.post(URL, {}, format="json")

    assert r.status_code == 400
    assert r.json() == {
        "customer_id": ["required, but empty"],
        "ordered_at": ["required, but empty"],
        "amount": ["required, but empty"],
    }


def test_body_that_is_not_an_object_is_refused(api_client):
    r = api_client.post(URL, [order_body()], format="json")

    assert r.status_code == 400
    assert "non_field_errors" in r.json()


def ids(response):
    assert response.status_code == 200, response.json()
    return [order["order_id"] for order in response.json()["results"]]


def test_dates_in_filters_are_days_in_the_business_time_zone(api_client, settings):
    settings.TIME_ZONE = "Africa/Johannesburg"  # UTC+2, no daylight saving
    OrderFactory(external_id="late-31st", ordered_at=datetime(2025, 1, 31, 21, 30, tzinfo=UTC))
    OrderFactory(external_id="early-1st", ordered_at=datetime(2025, 1, 31, 22, 30, tzinfo=UTC))
    OrderFactory(external_id="early-31st", ordered_at=datetime(2025, 1, 30, 22, 0, tzinfo=UTC))

    # 23:30 on the 31st in Johannesburg is still January there; 00:30 on the 1st is not.
    assert ids(api_client.get(URL, {"ordered_before": "2025-01-31"})) == ["late-31st", "early-31st"]
    assert ids(api_client.get(URL, {"ordered_after": "2025-02-01"})) == ["early-1st"]
    on_the_31st = {"ordered_after": "2025-01-31", "ordered_before": "2025-01-31"}
    assert ids(api_client.get(URL, on_the_31st)) == ["late-31st", "early-31st"]
    # A date-time without an offset is in the business zone too; with one, it is exact.
    assert ids(api_client.get(URL, {"ordered_after": "2025-02-01T00:00:00"})) == ["early-1st"]
    assert ids(api_client.get(URL, {"ordered_before": "2025-01-31T21:30:00Z"})) == [
        "late-31st", "early-31st"
    ]
    assert ids(api_client.get(URL, {"ordered_after": "2025-01-31T00:30:00+02:00"})) == [
        "early-1st", "late-31st"
    ]


def test_orders_are_filtered_by_status_customer_and_coupon(api_client):
    thandi = CustomerFactory(external_id="thandi")
    OrderFactory(external_id="paid", customer=thandi, coupon_code="SPRING")
    OrderFactory(external_id="refunded", customer=thandi, status="refunded")
    OrderFactory(external_id="other", status="paid")

    assert ids(api_client.get(URL, {"status": "refunded"})) == ["refunded"]
    assert sorted(ids(api_client.get(URL, {"customer_id": "thandi"}))) == ["paid", "refunded"]
    assert ids(api_client.get(URL, {"customer_id": "thandi", "status": "paid"})) == ["paid"]
    assert ids(api_client.get(URL, {"coupon_code": "spring"})) == ["paid"]


def test_course_filter_finds_orders_of_bundles_that_contain_the_course(api_client):
    python, javascript = CourseFactory(code="python"), CourseFactory(code="javascript")
    bundle = BundleFactory(code="everything")
    bundle.courses.add(python, javascript)
    OrderLineFactory(order__external_id="direct", course=python)
    OrderLineFactory(order__external_id="via-bundle", course=None, bundle=bundle)
    both = OrderLineFactory(order__external_id="both", course=python).order
    OrderLineFactory(order=both, course=None, bundle=bundle)
    OrderLineFactory(order__external_id="unrelated", course=CourseFactory(code="go"))

    assert sorted(ids(api_client.get(URL, {"course": "Python"}))) == [
        "both", "direct", "via-bundle"
    ]
    assert sorted(ids(api_client.get(URL, {"course": "go"}))) == ["unrelated"]
    assert ids(api_client.get(URL, {"course": "cobol"})) == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ordered_after", "yesterday"),
        ("ordered_before", "2025-13-01"),
        ("ordered_after", "0001-01-01T00:00:00+14:00"),
        ("ordered_before", "9999-12-31"),
        ("status", "shipped"),
    ],
)
def test_bad_filter_value_is_a_400_naming_the_parameter(api_client, name, value):
    r = api_client.get(URL, {name: value})

    assert r.status_code == 400
    assert name in r.json()
