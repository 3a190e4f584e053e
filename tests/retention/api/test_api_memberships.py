"""Memberships through the API: create-or-update by membership_id, and filters."""

from datetime import date
from decimal import Decimal

import pytest
from django.db import models
from django.db.models import Q

from retention.sales.models import Membership
from tests.factories import CustomerFactory, MembershipFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/memberships/"


def membership_body(**changes):
    body = {
        "membership_id": "M-1",
        "customer_id": "C-1",
        "plan": "All-access",
        "interval": "year",
        "price": "1800.00",
        "started_on": "2025-01-01",
    }
    body.update(changes)
    return body


@pytest.fixture
def customer():
    return CustomerFactory(external_id="C-1")


def test_same_membership_sent_twice_is_stored_once(api_client, customer):
    first = api_client.post(URL, membership_body(), format="json")
    second = api_client.post(URL, membership_body(), format="json")

    assert first.status_code == 201, first.json()
    assert second.status_code == 200
    assert Membership.objects.count() == 1
    assert second.json()["customer_id"] == "C-1"
    assert second.json()["mrr"] == "150.0000"


def test_post_with_a_known_membership_id_updates_it(api_client, customer):
    api_client.post(URL, membership_body(), format="json")

    r = api_client.post(URL, membership_body(ended_on="2025-12-31", auto_renew=False),
                        format="json")

    assert r.status_code == 200
    membership = Membership.objects.get()
    assert (membership.ended_on, membership.auto_renew) == (date(2025, 12, 31), False)


def test_unknown_customer_is_a_400_naming_it(api_client):
    r = api_client.post(URL, membership_body(customer_id="C-404"), format="json")

    assert r.status_code == 400
    assert r.json() == {"customer_id": ["unknown customer_id 'C-404'"]}
    assert not Membership.objects.exists()


def test_membership_cannot_end_before_it_starts(api_client, customer):
    r = api_client.post(URL, membership_body(ended_on="2024-12-31"), format="json")

    assert r.status_code == 400
    assert "cannot end" in r.json()["ended_on"][0]
    assert not Membership.objects.exists()


def test_cancelled_membership_must_not_renew(api_client, customer):
    refused = api_client.post(URL, membership_body(cancelled_at="2025-06-01T10:00:00Z"),
                              format="json")
    accepted = api_client.post(URL, membership_body(cancelled_at="2025-06-01T10:00:00Z",
                                                    auto_renew=False), format="json")

    assert refused.status_code == 400
    assert "auto_renew must be false" in refused.json()["auto_renew"][0]
    assert accepted.status_code == 201, accepted.json()
    assert Membership.objects.get().auto_renew is False


def test_patch_checks_dates_against_the_stored_membership(api_client, customer):
    MembershipFactory(external_id="M-1", customer=customer, started_on=date(2025, 3, 1))

    r = api_client.patch(f"{URL}M-1/", {"ended_on": "2025-02-28"}, format="json")

    assert r.status_code == 400
    assert "ended_on" in r.json()
    assert Membership.objects.get().ended_on is None


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"price": "-10.00"}, "price"),
        ({"interval": "week"}, "interval"),
        ({"started_on": "not a date"}, "started_on"),
        ({"membership_id": ""}, "membership_id"),
        ({"customer_id": None}, "customer_id"),
    ],
)
def test_bad_membership_is_refused_with_the_field_named(api_client, customer, changes, field):
    r = api_client.post(URL, membership_body(**changes), format="json")

    assert r.status_code == 400
    assert field in r.json()
    assert not Membership.objects.exists()


def test_detail_put_and_patch(api_client, customer):
    created = api_client.put(f"{URL}M-9/", membership_body(membership_id="ignored"), format="json")
    patched = api_client.patch(f"{URL}M-9/", {"price": "2000.00"}, format="json")
    fetched = api_client.get(f"{URL}M-9/")

    assert created.status_code == 201, created.json()
    assert patched.status_code == 200
    assert fetched.json()["price"] == "2000.00"
    assert Membership.objects.get().price == Decimal("2000.00")


def ids(response):
    assert response.status_code == 200, response.json()
    return sorted(membership["membership_id"] for membership in response.json()["results"])


def test_memberships_are_filtered(api_client, customer):
    MembershipFactory(external_id="ended", customer=customer, started_on=date(2024, 1, 1),
                      ended_on=date(2024, 12, 31), interval="year", plan="All-access")
    MembershipFactory(external_id="open", started_on=date(2025, 1, 1), plan="Data track")
    MembershipFactory(external_id="later", started_on=date(2025, 6, 1), auto_renew=False)

    assert ids(api_client.get(URL, {"active_on": "2024-12-31"})) == ["ended"]
    assert ids(api_client.get(URL, {"active_on": "2025-03-01"})) == ["open"]
    assert ids(api_client.get(URL, {"active_on": "2025-07-01"})) == ["later", "open"]
    assert ids(api_client.get(URL, {"customer_id": "C-1"})) == ["ended"]
    assert ids(api_client.get(URL, {"interval": "year"})) == ["ended"]
    assert ids(api_client.get(URL, {"plan": "data TRACK"})) == ["open"]
    assert ids(api_client.get(URL, {"auto_renew": "false"})) == ["later"]
    assert ids(api_client.get(URL, {"started_after": "2025-01-01"})) == ["later", "open"]
    assert ids(api_client.get(URL, {"ended_before": "2024-12-31"})) == ["ended"]
    assert api_client.get(URL, {"active_on": "someday"}).status_code == 400


def test_a_model_constraint_without_its_own_check_is_still_a_400(api_client, customer,
                                                                 monkeypatch):
    """A constraint added to the model later is checked before saving, not left to the database."""
    rule = models.CheckConstraint(condition=~Q(plan="Legacy"), name="test_no_legacy_plan",
                                  violation_error_message="No new Legacy memberships.")
    monkeypatch.setattr(Membership._meta, "constraints", [*Membership._meta.constraints, rule])

    r = api_client.post(URL, membership_body(plan="Legacy"), format="json")

    assert r.status_code == 400
    assert r.json() == {"non_field_errors": ["No new Legacy memberships."]}
    assert not Membership.objects.exists()
