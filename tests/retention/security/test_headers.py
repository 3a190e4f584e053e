"""Every page carries the Content-Security-Policy; pages with personal data are not cached."""

import pytest
from django.contrib.auth.models import Group

from retention.mail import links
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def policy(response) -> dict[str, list[str]]:
    return {name: values for name, *values in
            (part.split() for part in response["Content-Security-Policy"].split(";") if part.strip())}


@pytest.fixture
def manager_client(client, django_user_model):
    user = django_user_model.objects.create_user("boss", is_staff=True)
    user.groups.add(Group.objects.get_or_create(name="Managers")[0])
    client.force_login(user)
    return client


def test_every_kind_of_page_carries_a_policy_without_inline_script(manager_client):
    customer = CustomerFactory()
    for url in ["/admin/", "/metrics/", "/metrics/customers/?set=buyers",
                "/api/docs/", "/api/v1/", "/link/",
                links.url(customer, "account").split("8000", 1)[1]]:
        response = manager_client.get(url)
        assert response.status_code == 200, url
        directives = policy(response)
        assert directives["script-src"] == ["'self'"], url
        assert directives["object-src"] == ["'none'"] and directives["frame-ancestors"] == ["'none'"]
        assert "'unsafe-inline'" not in directives.get("default-src", [])


@pytest.mark.parametrize("url", ["/metrics/", "/metrics/customers/?set=buyers",
                                 "/metrics/at-risk/", "/metrics/customers.csv?set=buyers"])
def test_the_managers_pages_are_not_kept_by_browsers_or_proxies(manager_client, url):
    cache_control = manager_client.get(url)["Cache-Control"]
    assert "no-store" in cache_control and "private" in cache_control


def test_api_answers_are_never_kept_by_browsers_or_proxies(api_client):
    CustomerFactory(email="ann@example.com")
    for url in ("/api/v1/customers/", "/api/v1/", "/api/v1/customers/nobody/"):
        cache_control = api_client.get(url)["Cache-Control"]
        assert "no-store" in cache_control and "private" in cache_control, url
