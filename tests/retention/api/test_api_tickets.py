"""Support tickets through the API: create-or-update by ticket_id, dates in order, filters."""

from datetime import UTC, datetime

import pytest

from retention.sales.models import SupportTicket
from tests.factories import CustomerFactory, SupportTicketFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/tickets/"


@pytest.fixture
def customer():
    return CustomerFactory(external_id="C-1")


def ticket_body(**changes):
    body = {
        "ticket_id": "T-1",
        "customer_id": "C-1",
        "opened_at": "2025-03-01T09:00:00Z",
        "category": "billing",
        "subject": "Charged twice",
        "is_complaint": True,
    }
    body.update(changes)
    return body


def test_same_ticket_sent_twice_is_stored_once(api_client, customer):
    first = api_client.post(URL, ticket_body(), format="json")
    second = api_client.post(URL, ticket_body(), format="json")

    assert first.status_code == 201, first.json()
    assert second.status_code == 200
    assert SupportTicket.objects.count() == 1


def test_resolution_is_recorded_with_its_hours(api_client, customer):
    api_client.post(URL, ticket_body(), format="json")

    resolved = ticket_body(status="resolved", first_response_at="2025-03-01T11:30:00Z",
                           resolved_at="2025-03-02T09:00:00Z")
    r = api_client.post(URL, resolved, format="json")

    assert r.status_code == 200, r.json()
    assert (r.json()["first_response_hours"], r.json()["resolution_hours"]) == (2.5, 24.0)
    assert SupportTicket.objects.get().status == "resolved"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"first_response_at": "2025-03-01T08:59:59Z"}, "first_response_at"),
        ({"resolved_at": "2025-02-28T10:00:00Z"}, "resolved_at"),
        ({"customer_id": "C-404"}, "customer_id"),
        ({"category": "complaint"}, "category"),
        ({"status": "done"}, "status"),
        ({"opened_at": "yesterday"}, "opened_at"),
    ],
)
def test_bad_ticket_is_refused_with_the_field_named(api_client, customer, changes, field):
    r = api_client.post(URL, ticket_body(**changes), format="json")

    assert r.status_code == 400
    assert field in r.json(), r.json()
    assert not SupportTicket.objects.exists()


def test_patch_checks_dates_against_the_stored_ticket(api_client, customer):
    SupportTicketFactory(external_id="T-1", customer=customer,
                         opened_at=datetime(2025, 3, 1, 9, tzinfo=UTC))

    r = api_client.patch(f"{URL}T-1/", {"resolved_at": "2025-03-01T08:00:00Z"}, format="json")
    fine = api_client.patch(f"{URL}T-1/", {"resolved_at": "2025-03-01T10:00:00Z"}, format="json")

    assert r.status_code == 400
    assert "resolved_at" in r.json()
    assert fine.status_code == 200
    assert SupportTicket.objects.get().resolved_at == datetime(2025, 3, 1, 10, tzinfo=UTC)


def ids(response):
    assert response.status_code == 200, response.json()
    return sorted(ticket["ticket_id"] for ticket in response.json()["results"])


def test_tickets_are_filtered(api_client, customer, settings):
    settings.TIME_ZONE = "Africa/Johannesburg"
    SupportTicketFactory(external_id="T-1", customer=customer, category="billing",
                         opened_at=datetime(2025, 2, 28, 21, 30, tzinfo=UTC))  # 23:30 there
    SupportTicketFactory(external_id="T-2", status="resolved", is_complaint=True,
                         opened_at=datetime(2025, 2, 28, 22, 30, tzinfo=UTC))  # 1 March there

    assert ids(api_client.get(URL, {"customer_id": "C-1"})) == ["T-1"]
    assert ids(api_client.get(URL, {"status": "resolved"})) == ["T-2"]
    assert ids(api_client.get(URL, {"category": "billing"})) == ["T-1"]
    assert ids(api_client.get(URL, {"is_complaint": "true"})) == ["T-2"]
    assert ids(api_client.get(URL, {"opened_before": "2025-02-28"})) == ["T-1"]
    assert ids(api_client.get(URL, {"opened_after": "2025-03-01"})) == ["T-2"]
