"""Customers through the API: create-or-update by the platform's customer_id, and filters."""

from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import quote

import pytest

from retention.api.customers import CustomerSerializer
from retention.sales.models import Customer
from tests.factories import CustomerFactory, OrganisationFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/customers/"


def test_same_customer_sent_twice_is_stored_once(api_client):
    body = {"customer_id": "C-1", "email": "lindiwe@example.com", "name": "Lindiwe"}

    first = api_client.post(URL, body, format="json")
    second = api_client.post(URL, body, format="json")

    assert first.status_code == 201, first.json()
    assert second.status_code == 200, second.json()
    assert Customer.objects.count() == 1
    assert second.json()["customer_id"] == "C-1"


def test_post_with_a_known_customer_id_updates_only_what_was_sent(api_client):
    CustomerFactory(external_id="C-1", name="Lindiwe", acquisition_source="partner")

    r = api_client.post(URL, {"customer_id": "C-1", "name": "Lindiwe M."}, format="json")

    assert r.status_code == 200
    customer = Customer.objects.get()
    assert (customer.name, customer.acquisition_source) == ("Lindiwe M.", "partner")


def test_organisation_is_created_with_its_sector_and_referrer(api_client):
    CustomerFactory(external_id="C-1")

    r = api_client.post(URL, {
        "customer_id": "ORG-9",
        "customer_type": "organisation",
        "organisation_name": "City of Tshwane",
        "sector": "municipality",
        "referred_by": "C-1",
    }, format="json")

    assert r.status_code == 201, r.json()
    assert r.json()["referred_by"] == "C-1"
    organisation = Customer.objects.get(external_id="ORG-9")
    assert organisation.referred_by.external_id == "C-1"
    assert organisation.sector == "municipality"


def test_summary_fields_are_read_only(api_client):
    r = api_client.post(URL, {"customer_id": "C-1", "order_count": 9, "total_spent": "999.00"},
                        format="json")

    assert r.status_code == 201
    assert (r.json()["order_count"], r.json()["total_spent"]) == (0, "0.00")
    assert Customer.objects.get().order_count == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"customer_type": "organisation"}, "An organisation needs a sector."),
        ({"customer_type": "organisation", "sector": ""}, "An organisation needs a sector."),
        ({"sector": "company"}, "An individual has no sector"),
        ({"customer_type": "individual", "sector": "government"}, "An individual has no sector"),
    ],
)
def test_type_and_sector_must_match(api_client, body, message):
    r = api_client.post(URL, {"customer_id": "C-1", **body}, format="json")

    assert r.status_code == 400
    assert message in r.json()["sector"][0]
    assert not Customer.objects.exists()


def test_patch_checks_the_sector_rule_against_the_stored_customer(api_client):
    CustomerFactory(external_id="C-1")

    r = api_client.patch(f"{URL}C-1/", {"customer_type": "organisation"}, format="json")

    assert r.status_code == 400
    assert r.json()["sector"] == ["An organisation needs a sector."]
    assert Customer.objects.get().customer_type == "individual"


def test_unknown_referrer_and_own_referral_are_refused(api_client):
    CustomerFactory(external_id="C-1")

    unknown = api_client.post(URL, {"customer_id": "C-2", "referred_by": "C-404"}, format="json")
    own = api_client.patch(f"{URL}C-1/", {"referred_by": "C-1"}, format="json")

    assert unknown.status_code == 400
    assert unknown.json() == {"referred_by": ["unknown customer_id 'C-404'"]}
    assert own.status_code == 400
    assert own.json() == {"referred_by": ["A customer cannot refer themselves."]}
    assert Customer.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "customer_id"),
        ({"customer_id": "x" * 65}, "customer_id"),
        ({"customer_id": "C-1", "email": "nope"}, "email"),
        ({"customer_id": "C-1", "signed_up_at": "1066-10-14T09:00:00Z"}, "signed_up_at"),
        ({"customer_id": "C-1", "customer_type": "robot"}, "customer_type"),
    ],
)
def test_bad_customer_is_refused_with_the_field_named(api_client, body, field):
    r = api_client.post(URL, body, format="json")

    assert r.status_code == 400
    assert field in r.json()
    assert not Customer.objects.exists()


def test_detail_takes_ids_with_any_character_but_slash(api_client):
    customer_id = "Ünï #7?.json"
    CustomerFactory(external_id=customer_id, name="Ünï")

    r = api_client.get(f"{URL}{quote(customer_id, safe='')}/")

    assert r.status_code == 200
    assert r.json()["name"] == "Ünï"
    assert api_client.get(f"{URL}missing/").status_code == 404
    assert api_client.get(f"{URL}nul%00/").status_code == 404


def test_put_creates_or_updates_and_the_url_id_wins(api_client):
    created = api_client.put(f"{URL}C-7/", {"customer_id": "other", "name": "Sipho"}, format="json")
    updated = api_client.put(f"{URL}C-7/", {"name": "Sipho N."}, format="json")

    assert created.status_code == 201, created.json()
    assert updated.status_code == 200
    assert list(Customer.objects.values_list("external_id", "name")) == [("C-7", "Sipho N.")]


def test_patch_of_an_unknown_customer_is_404(api_client):
    assert api_client.patch(f"{URL}C-404/", {"name": "x"}, format="json").status_code == 404
    assert not Customer.objects.exists()


def ids(response):
    assert response.status_code == 200, response.json()
    return [customer["customer_id"] for customer in response.json()["results"]]


def test_customers_are_filtered_by_type_sector_source_and_consent(api_client):
    CustomerFactory(external_id="person", acquisition_source="partner", marketing_consent=True)
    OrganisationFactory(external_id="company")
    OrganisationFactory(external_id="city", sector="municipality", acquisition_source="partner")

    assert ids(api_client.get(URL, {"customer_type": "organisation"})) == ["city", "company"]
    assert ids(api_client.get(URL, {"sector": "municipality"})) == ["city"]
    assert ids(api_client.get(URL, {"acquisition_source": "partner"})) == ["city", "person"]
    assert ids(api_client.get(URL, {"marketing_consent": "true"})) == ["person"]
    assert api_client.get(URL, {"sector": "church"}).status_code == 400


def test_customers_are_found_by_email_and_search(api_client):
    CustomerFactory(external_id="a", email="Naledi@Example.com", name="Naledi Dlamini")
    OrganisationFactory(external_id="b", email="info@acme.test", organisation_name="Acme Training")

    assert ids(api_client.get(URL, {"email": "naledi@example.com"})) == ["a"]
    assert ids(api_client.get(URL, {"search": "dlamini"})) == ["a"]
    assert ids(api_client.get(URL, {"search": "ACME"})) == ["b"]


def test_customers_are_filtered_by_orders_and_order_dates(api_client, settings):
    settings.TIME_ZONE = "Africa/Johannesburg"
    CustomerFactory(external_id="never")
    CustomerFactory(
        external_id="new",
        first_order_at=datetime(2025, 2, 28, 22, 30, tzinfo=UTC),  # 1 March, 00:30 there
        last_order_at=datetime(2025, 2, 28, 22, 30, tzinfo=UTC),
        order_count=1,
        total_spent=Decimal("10.00"),
    )
    CustomerFactory(
        external_id="old",
        first_order_at=datetime(2024, 1, 5, tzinfo=UTC),
        last_order_at=datetime(2025, 2, 28, 21, 30, tzinfo=UTC),  # 28 February, 23:30 there
        order_count=2,
        total_spent=Decimal("20.00"),
    )

    assert ids(api_client.get(URL, {"has_orders": "true"})) == ["new", "old"]
    assert ids(api_client.get(URL, {"has_orders": "false"})) == ["never"]
    assert ids(api_client.get(URL, {"first_order_after": "2025-03-01"})) == ["new"]
    assert ids(api_client.get(URL, {"last_order_before": "2025-02-28"})) == ["old"]
    assert ids(api_client.get(URL, {"first_order_before": "2024-12-31"})) == ["old"]
    assert ids(api_client.get(URL, {"created_after": "2999-01-01"})) == []
    assert api_client.get(URL, {"created_after": "soon"}).status_code == 400


def test_customer_created_by_a_concurrent_call_is_updated_instead(api_client, monkeypatch):
    """Between this call's look-up and its insert, another call created the customer."""
    CustomerFactory(external_id="C-1", name="Old name")
    real_lookup = CustomerSerializer.natural_lookup
    lookups = []

    def first_lookup_misses(serializer):
        lookups.append(real_lookup(serializer))
        return {"external_id": "not-there-yet"} if len(lookups) == 1 else lookups[-1]

    monkeypatch.setattr(CustomerSerializer, "natural_lookup", first_lookup_misses)

    r = api_client.post(URL, {"customer_id": "C-1", "name": "New name"}, format="json")

    assert r.status_code == 200, r.json()
    assert len(lookups) == 2
    assert list(Customer.objects.values_list("external_id", "name")) == [("C-1", "New name")]
