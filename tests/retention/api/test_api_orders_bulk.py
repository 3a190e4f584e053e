"""POST /api/v1/orders/bulk/: many orders in one call, all or nothing unless asked."""

from decimal import Decimal

import pytest

from retention.sales.models import Customer, Order
from tests.factories import CourseFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/orders/bulk/"


def order(order_id, **changes):
    body = {
        "order_id": order_id,
        "customer_id": "cust-1",
        "ordered_at": "2025-03-01",
        "amount": "100.00",
        "items": ["py-101"],
    }
    body.update(changes)
    return body


@pytest.fixture(autouse=True)
def course():
    return CourseFactory(code="py-101", price=Decimal("100.00"))


def test_bulk_creates_and_the_same_call_again_changes_nothing(api_client):
    orders = [order("A-1"), order("A-2", customer_id="cust-2"), order("A-3", amount=50)]

    first = api_client.post(URL, {"orders": orders}, format="json")
    second = api_client.post(URL, {"orders": orders}, format="json")

    assert first.status_code == 200, first.json()
    assert first.json() == {
        "created": 3,
        "updated": 0,
        "unchanged": 0,
        "invalid": 0,
        "results": [
            {"index": 0, "order_id": "A-1", "result": "created"},
            {"index": 1, "order_id": "A-2", "result": "created"},
            {"index": 2, "order_id": "A-3", "result": "created"},
        ],
        "errors": [],
    }
    assert second.status_code == 200
    assert second.json()["unchanged"] == 3
    assert second.json()["created"] == second.json()["updated"] == 0
    assert {row["result"] for row in second.json()["results"]} == {"unchanged"}
    assert Order.objects.count() == 3
    assert Customer.objects.get(external_id="cust-1").order_count == 2


def test_bulk_reports_updates(api_client):
    api_client.post(URL, {"orders": [order("A-1"), order("A-2")]}, format="json")

    r = api_client.post(URL, {"orders": [order("A-1"), order("A-2", status="cancelled")]},
                        format="json")

    assert r.json()["results"] == [
        {"index": 0, "order_id": "A-1", "result": "unchanged"},
        {"index": 1, "order_id": "A-2", "result": "updated"},
    ]
    assert Order.objects.get(external_id="A-2").status == "cancelled"


def test_one_invalid_order_saves_nothing(api_client):
    orders = [order("A-1"), order("A-2", amount="-3", currency="EUR"), order("A-3")]

    r = api_client.post(URL, {"orders": orders}, format="json")

    assert r.status_code == 400
    assert r.json() == {
        "detail": "1 order is invalid; nothing was saved.",
        "errors": [
            {"index": 1, "field": "amount", "message": 'negative amount "-3" (must be 0 or more)'},
            {
                "index": 1,
                "field": "currency",
                "message": '"EUR" is not the business currency ZAR (convert amounts before '
                "importing)",
            },
        ],
    }
    assert not Order.objects.exists()
    assert not Customer.objects.exists()


def test_skip_invalid_saves_the_valid_orders_and_lists_the_others(api_client):
    orders = [order("A-1"), order("A-2", items=["nope"]), "not an order", order("A-4")]

    r = api_client.post(f"{URL}?skip_invalid=true", {"orders": orders}, format="json")

    assert r.status_code == 200, r.json()
    body = r.json()
    assert (body["created"], body["invalid"]) == (2, 2)
    assert body["results"] == [
        {"index": 0, "order_id": "A-1", "result": "created"},
        {"index": 3, "order_id": "A-4", "result": "created"},
    ]
    assert [(e["index"], e["field"]) for e in body["errors"]] == [(1, "items"), (2, None)]
    assert sorted(Order.objects.values_list("external_id", flat=True)) == ["A-1", "A-4"]


def test_every_problem_of_a_badly_shaped_order_is_listed(api_client):
    orders = [order("A-1", amount=True, items={"code": "py-101"}), order("A-2")]

    r = api_client.post(URL, {"orders": orders}, format="json")

    assert r.status_code == 400
    assert [(e["index"], e["field"]) for e in r.json()["errors"]] == [(0, "amount"), (0, "items")]
    assert not Order.objects.exists()


def test_repeated_order_id_with_other_values_is_invalid(api_client):
    orders = [order("A-1"), order("A-1", amount="90.00")]

    r = api_client.post(URL, {"orders": orders}, format="json")

    assert r.status_code == 400
    assert r.json()["errors"] == [
        {
            "index": 1,
            "field": "order_id",
            "message": 'order_id "A-1" already appears on line 0 with different values',
        }
    ]
    assert not Order.objects.exists()


def test_exact_repeat_in_one_call_is_saved_once(api_client):
    r = api_client.post(URL, {"orders": [order("A-1"), order("A-1")]}, format="json")

    assert r.status_code == 200
    assert r.json()["results"] == [
        {"index": 0, "order_id": "A-1", "result": "created"},
        {"index": 1, "order_id": "A-1", "result": "unchanged"},
    ]
    assert Order.objects.count() == 1


def test_orders_without_order_id_report_their_derived_key(api_client):
    orders = [order(None), order(None, amount="20.00")]

    first = api_client.post(URL, {"orders": orders}, format="json")
    second = api_client.post(URL, {"orders": orders}, format="json")

    keys = [row["order_id"] for row in first.json()["results"]]
    assert all(key.startswith("row-") for key in keys) and len(set(keys)) == 2
    assert [row["order_id"] for row in second.json()["results"]] == keys
    assert {row["result"] for row in second.json()["results"]} == {"unchanged"}
    assert sorted(Order.objects.values_list("external_id", flat=True)) == sorted(keys)


def test_more_orders_than_the_limit_are_refused(api_client, settings):
    settings.RETENTION_ORDERS_BULK_MAX = 2

    r = api_client.post(URL, {"orders": [order("A-1"), order("A-2"), order("A-3")]},
                        format="json")

    assert r.status_code == 400
    assert r.json() == {"orders": ["3 orders in one call; send at most 2."]}
    assert not Order.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"orders": {"order_id": "A-1"}}, "orders"),
        ({"orders": "A-1"}, "orders"),
        ({}, "orders"),
        ([order("A-1")], "non_field_errors"),
    ],
)
def test_body_without_a_list_of_orders_is_refused(api_client, body, field):
    r = api_client.post(URL, body, format="json")

    assert r.status_code == 400
    assert field in r.json()
    assert not Order.objects.exists()


def test_bad_skip_invalid_value_is_refused(api_client):
    r = api_client.post(f"{URL}?skip_invalid=maybe", {"orders": [order("A-1")]}, format="json")

    assert r.status_code == 400
    assert "skip_invalid" in r.json()
    assert not Order.objects.exists()
