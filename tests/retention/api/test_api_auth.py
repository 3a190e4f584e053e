"""Who may use the API: the platform's token and staff sessions; nobody else."""

from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from retention.sales.models import Customer, Order

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    ("get", "/api/v1/"),
    ("get", "/api/v1/customers/"),
    ("post", "/api/v1/customers/"),
    ("get", "/api/v1/customers/C-1/"),
    ("put", "/api/v1/customers/C-1/"),
    ("patch", "/api/v1/customers/C-1/"),
    ("get", "/api/v1/courses/"),
    ("post", "/api/v1/courses/"),
    ("get", "/api/v1/courses/py-101/"),
    ("put", "/api/v1/courses/py-101/"),
    ("patch", "/api/v1/courses/py-101/"),
    ("get", "/api/v1/bundles/"),
    ("post", "/api/v1/bundles/"),
    ("get", "/api/v1/bundles/pack/"),
    ("put", "/api/v1/bundles/pack/"),
    ("patch", "/api/v1/bundles/pack/"),
    ("get", "/api/v1/price-changes/"),
    ("get", "/api/v1/orders/"),
    ("post", "/api/v1/orders/"),
    ("get", "/api/v1/orders/A-1/"),
    ("put", "/api/v1/orders/A-1/"),
    ("post", "/api/v1/orders/bulk/"),
    ("get", "/api/v1/memberships/"),
    ("post", "/api/v1/memberships/"),
    ("get", "/api/v1/memberships/M-1/"),
    ("put", "/api/v1/memberships/M-1/"),
    ("patch", "/api/v1/memberships/M-1/"),
    ("get", "/api/v1/enrolments/"),
    ("post", "/api/v1/enrolments/"),
    ("get", "/api/v1/enrolments/C-1/py-101/"),
    ("put", "/api/v1/enrolments/C-1/py-101/"),
    ("patch", "/api/v1/enrolments/C-1/py-101/"),
    ("get", "/api/v1/tickets/"),
    ("post", "/api/v1/tickets/"),
    ("get", "/api/v1/tickets/T-1/"),
    ("put", "/api/v1/tickets/T-1/"),
    ("patch", "/api/v1/tickets/T-1/"),
]


def call(client, method, url):
    return getattr(client, method)(url, {"customer_id": "C-1"} if method != "get" else None,
                                   format="json")


@pytest.mark.parametrize(("method", "url"), ENDPOINTS)
def test_anonymous_is_refused_everywhere(anonymous_client, method, url):
    r = call(anonymous_client, method, url)

    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == 'Token'
    assert not Customer.objects.exists()


@pytest.mark.parametrize(("method", "url"), ENDPOINTS)
def test_logged_in_user_outside_the_platform_group_is_refused(django_user_model, method, url):
    user = django_user_model.objects.create_user("reader", password="pw-reader-1234")
    client = APIClient()
    client.force_login(user)

    r = call(client, method, url)

    assert r.status_code == 403
    assert not Customer.objects.exists()


def test_token_of_a_user_outside_the_platform_group_is_refused(django_user_model):
    user = django_user_model.objects.create_user("someone", password=None)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")

    assert client.get("/api/v1/customers/").status_code == 403


def test_bad_token_is_refused():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")

    assert client.get("/api/v1/customers/").status_code == 401


def test_staff_session_can_read_and_write(staff_user):
    client = APIClient()
    # The admin's login form: the password check django-axes watches over.
    assert client.post("/admin/login/", {"username": "staff", "password": "pw-staff-1234"}
                       ).status_code == 302

    listed = client.get("/api/v1/customers/")
    created = client.post("/api/v1/customers/", {"customer_id": "C-1"}, format="json")

    assert listed.status_code == 200
    assert created.status_code == 201
    assert Customer.objects.filter(external_id="C-1").exists()


def test_staff_session_writes_need_the_csrf_token(staff_user):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(staff_user)

    r = client.post("/api/v1/customers/", {"customer_id": "C-1"}, format="json")

    assert r.status_code == 403
    assert "CSRF" in r.json()["detail"]
    assert not Customer.objects.exists()


def test_platform_token_works(api_client):
    assert api_client.get("/api/v1/").status_code == 200


def create_api_client(name):
    out = StringIO()
    call_command("create_api_client", name, stdout=out)
    return out.getvalue().strip()


def test_create_api_client_prints_a_token_that_works(django_user_model):
    key = create_api_client("sales-platform")

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/v1/customers/").status_code == 200
    user = django_user_model.objects.get(username="sales-platform")
    assert user.is_active and not user.is_staff
    assert not user.has_usable_password()
    assert list(user.groups.values_list("name", flat=True)) == ["Platform"]


def test_create_api_client_twice_gives_the_same_token(django_user_model):
    first, second = create_api_client("sales-platform"), create_api_client("sales-platform")

    assert first == second
    assert django_user_model.objects.filter(username="sales-platform").count() == 1
    assert Token.objects.count() == 1
    assert Group.objects.filter(name="Platform").count() == 1


def test_create_api_client_adds_an_existing_api_user_to_the_group(django_user_model):
    user = django_user_model.objects.create_user("sales-platform", password=None)
    token = Token.objects.create(user=user)

    assert create_api_client("sales-platform") == token.key
    assert user.groups.filter(name="Platform").exists()


def test_create_api_client_refuses_a_persons_login(staff_user):
    with pytest.raises(CommandError, match="person's login"):
        create_api_client("staff")

    assert not Token.objects.exists()
    assert not staff_user.groups.exists()


def test_create_api_client_refuses_a_bad_name():
    with pytest.raises(CommandError, match="cannot be a username"):
        create_api_client("sales platform!")


@pytest.fixture
def manager_client(django_user_model, settings, tmp_path):
    """A manager as `create_manager` makes one: staff, in Managers, view permissions only."""
    settings.VAR_DIR = tmp_path
    call_command("create_manager", stdout=StringIO())
    client = APIClient()
    client.force_login(django_user_model.objects.get(username="manager"))
    return client


def test_a_manager_may_read_through_the_api_but_not_write(manager_client):
    from tests.factories import CourseFactory

    CourseFactory(code="py-101")

    assert manager_client.get("/api/v1/courses/").status_code == 200
    assert manager_client.get("/api/v1/orders/").status_code == 200
    refused = [
        manager_client.patch("/api/v1/courses/py-101/", {"price": "1.00"}, format="json"),
        manager_client.post("/api/v1/orders/", {"customer_id": "C-1", "ordered_at": "2025-01-01",
                                                "amount": "5"}, format="json"),
        manager_client.post("/api/v1/orders/bulk/", {"orders": []}, format="json"),
    ]
    assert [response.status_code for response in refused] == [403, 403, 403]
    assert not Order.objects.exists()


def test_staff_with_change_permission_may_write(django_user_model):
    from django.contrib.auth.models import Permission

    clerk = django_user_model.objects.create_user("clerk", password="pw-clerk-1234", is_staff=True)
    clerk.user_permissions.add(*Permission.objects.filter(codename__in=["add_order", "change_order"]))
    client = APIClient()
    client.force_login(clerk)

    response = client.post("/api/v1/orders/", {"customer_id": "C-1", "ordered_at": "2025-01-01",
                                                "amount": "5"}, format="json")

    assert response.status_code == 201
    assert client.get("/api/v1/customers/").status_code == 403  # no permission on customers
