"""The figures through the API are for the same people as the managers' pages."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from retention.sales.models import PriceChange
from tests.factories import CourseFactory

pytestmark = pytest.mark.django_db

FIGURES = [
    "/api/v1/metrics/?start=2025-01-01&end=2025-03-31",
    "/api/v1/metrics/cohorts/?start=2025-01-01&end=2025-03-31",
    "/api/v1/metrics/segments/?on=2025-03-31",
    "/api/v1/metrics/migration/?first=2025-02-28&second=2025-03-31",
    "/api/v1/metrics/price-update/",
]


def session(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def bare_staff(django_user_model):
    """Staff with no permission at all: the metrics pages refuse them."""
    return django_user_model.objects.create_user("clerk", password="pw-clerk-1234", is_staff=True)


@pytest.fixture
def manager(view_only_manager):
    return view_only_manager


@pytest.mark.parametrize("url", FIGURES)
def test_staff_without_a_role_are_refused_the_figures_as_on_the_pages(bare_staff, client, url):
    client.force_login(bare_staff)
    assert client.get("/metrics/").status_code == 403

    response = session(bare_staff).get(url)
    assert response.status_code == 403
    assert "for the platform's token and for managers" in response.json()["detail"]


@pytest.mark.parametrize("url", FIGURES)
def test_staff_with_view_permissions_but_no_role_are_refused_too(django_user_model, url):
    viewer = django_user_model.objects.create_user("viewer", is_staff=True)
    viewer.user_permissions.add(*Permission.objects.filter(codename__startswith="view_"))
    assert session(viewer).get(url).status_code == 403


@pytest.mark.parametrize("url", FIGURES)
def test_managers_and_the_platform_read_the_figures(manager, api_client, admin_user, url):
    course = CourseFactory(code="bus-101", price=Decimal("120"))
    PriceChange.objects.create(course=course, old_price=Decimal("100"), new_price=Decimal("120"),
                               changed_at=datetime(2025, 1, 1, tzinfo=UTC))
    for client in (session(manager), api_client, session(admin_user)):
        response = client.get(url)
        assert response.status_code == 200, (url, response.content)


@pytest.mark.parametrize("url", FIGURES)
def test_anonymous_and_writes_are_refused(anonymous_client, manager, url):
    assert anonymous_client.get(url).status_code in (401, 403)
    assert session(manager).post(url, {}, format="json").status_code == 403
