import pytest
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from retention.permissions import PLATFORM_GROUP


@pytest.fixture
def platform_user(django_user_model):
    """The sales platform's API user: in the Platform group, authenticates by token."""
    user = django_user_model.objects.create_user("platform", password=None)
    user.groups.add(Group.objects.get_or_create(name=PLATFORM_GROUP)[0])
    return user


@pytest.fixture
def api_client(platform_user):
    """An API client authenticated with the platform's token."""
    client = APIClient()
    token = Token.objects.create(user=platform_user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def anonymous_client():
    return APIClient()


@pytest.fixture
def staff_user(django_user_model):
    return django_user_model.objects.create_superuser("staff", "staff@example.com", "pw-staff-1234")
