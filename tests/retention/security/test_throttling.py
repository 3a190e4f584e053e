"""Logins and the API are throttled; the right people still get in."""

import pytest
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from retention.network import client_ip
from tests.retention.security import start

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager(django_user_model):
    user = django_user_model.objects.create_user("manager", password="pw-manager-1234",
                                                 is_staff=True)
    user.groups.add(Group.objects.get_or_create(name="Managers")[0])
    return user


def log_in(client, password: str, address: str = "203.0.113.7", **extra):
    return client.post("/admin/login/?next=/metrics/", {"username": "manager", "password": password},
                       REMOTE_ADDR=address, **extra)


def test_after_five_wrong_passwords_even_the_right_one_is_refused_for_a_while(client, manager):
    for _ in range(4):
        assert log_in(client, "guess").status_code == 200  # the form again, with its error
    assert log_in(client, "guess").status_code == 429  # the fifth locks the pair out
    refused = log_in(client, "pw-manager-1234")

    assert refused.status_code == 429
    assert "Too many failed logins" in refused.content.decode()
    assert "_auth_user_id" not in client.session
    assert client.get("/metrics/").status_code == 302  # still sent to log in


def test_the_pause_is_for_that_username_from_that_address_only(client, manager, settings):
    for _ in range(5):
        log_in(client, "guess")
    # The manager, from their own network, is not locked out by someone else's guessing.
    assert log_in(client, "pw-manager-1234", address="198.51.100.20").status_code == 302


def test_a_few_mistakes_then_the_right_password_logs_in_and_resets_the_count(client, manager):
    for _ in range(4):
        log_in(client, "guess")
    assert log_in(client, "pw-manager-1234").status_code == 302
    client.logout()
    for _ in range(4):
        log_in(client, "guess")
    assert log_in(client, "pw-manager-1234").status_code == 302


def test_behind_a_trusted_proxy_the_forwarded_client_is_counted(client, manager, settings):
    settings.RETENTION_TRUSTED_PROXY_COUNT = 1
    proxy = "10.0.0.2"
    for _ in range(5):
        log_in(client, "guess", address=proxy, HTTP_X_FORWARDED_FOR="203.0.113.7")
    assert log_in(client, "pw-manager-1234", address=proxy,
                  HTTP_X_FORWARDED_FOR="203.0.113.7").status_code == 429
    # Another client behind the same proxy logs in: the proxy's address is not the key.
    assert log_in(client, "pw-manager-1234", address=proxy,
                  HTTP_X_FORWARDED_FOR="198.51.100.20").status_code == 302


@pytest.mark.parametrize(("count", "forwarded", "address"), [
    (0, "1.1.1.1", "10.0.0.2"),  # no proxy trusted: the header is the client's to forge
    (1, "1.1.1.1", "1.1.1.1"),
    (1, "6.6.6.6, 1.1.1.1", "1.1.1.1"),  # a forged first entry is not believed
    (2, "6.6.6.6, 1.1.1.1, 10.0.0.1", "1.1.1.1"),
    (2, "", "10.0.0.2"),
])
def test_the_client_address_is_read_through_the_trusted_proxies_only(
        rf, settings, count, forwarded, address):
    settings.RETENTION_TRUSTED_PROXY_COUNT = count
    request = rf.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == address


def test_the_api_answers_429_with_retry_after_past_the_rate(settings, platform_user):
    settings.RETENTION_API_RATES = {"user": "3/minute", "anon": "2/minute"}
    token = Token.objects.create(user=platform_user)
    platform = APIClient()
    platform.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")

    assert [platform.get("/api/v1/customers/").status_code for _ in range(4)] == [200, 200, 200, 429]
    refused = platform.get("/api/v1/customers/")
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0

    # Anonymous callers are refused before any count (401); what they may read, the
    # schema, is counted per address.
    anonymous = APIClient()
    assert [anonymous.get("/api/schema/").status_code for _ in range(3)] == [200, 200, 429]


def test_a_bad_rate_setting_stops_start_up():
    started = start(DEBUG="1", RETENTION_API_RATE="lots")
    assert started.returncode != 0 and "is not a rate like 600/minute" in started.stderr
