"""Only the configured email service's webhook is routed, only with its secret, and a
request without the secret changes nothing."""

import base64
import importlib
import json

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.urls import clear_url_caches

from retention.mail.models import ConsentRecord, Suppression
from tests.factories import CustomerFactory
from tests.retention.security import start

pytestmark = pytest.mark.django_db
POSTMARK = "anymail.backends.postmark.EmailBackend"
COMPLAINT = {"RecordType": "SpamComplaint", "Type": "SpamComplaint", "Email": "ann@example.com",
             "MessageID": "00000000-0000-0000-0000-000000000001",
             "BouncedAt": "2026-12-01T10:00:00Z", "Description": "complained"}


@pytest.fixture
def routes(settings):
    """Set the email service, then build the URLs again from the settings (and after)."""
    import retention.urls

    def configure(*, backend: str, secret: str = "") -> None:
        settings.EMAIL_BACKEND = backend
        settings.RETENTION_EMAIL_SERVICE = backend.split(".")[2] if "anymail" in backend else ""
        settings.ANYMAIL_WEBHOOK_SECRET = secret
        settings.ANYMAIL = {"WEBHOOK_SECRET": secret} if secret else {}
        importlib.reload(retention.urls)
        clear_url_caches()

    yield configure
    settings.RETENTION_EMAIL_SERVICE, settings.ANYMAIL_WEBHOOK_SECRET = "", ""
    importlib.reload(retention.urls)
    clear_url_caches()


@pytest.fixture
def ann():
    return CustomerFactory(email="ann@example.com", marketing_consent=True)


def post(client, path: str, *, secret: str | None = None):
    headers = {}
    if secret:
        headers["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(secret.encode()).decode()
    return client.post(path, json.dumps(COMPLAINT), content_type="application/json", **headers)


def nothing_happened_to(customer) -> bool:
    customer.refresh_from_db()
    return (customer.marketing_consent and not Suppression.objects.exists()
            and not ConsentRecord.objects.filter(method=ConsentRecord.Method.COMPLAINT).exists())


def test_without_an_email_service_no_webhook_is_routed(client, ann, routes):
    routes(backend="django.core.mail.backends.smtp.EmailBackend")

    for service in ("postmark", "mailgun", "sendgrid", "amazon_ses"):
        assert post(client, f"/anymail/{service}/tracking/").status_code == 404
    assert nothing_happened_to(ann)


def test_without_a_secret_the_services_webhook_is_not_routed_and_deploy_checks_fail(
        client, ann, routes):
    routes(backend=POSTMARK)

    assert post(client, "/anymail/postmark/tracking/").status_code == 404
    assert nothing_happened_to(ann)
    with pytest.raises(SystemCheckError, match="retention.E003"):
        call_command("check", "--deploy", "--fail-level", "ERROR")


def test_the_production_server_refuses_to_start_without_the_webhook_secret():
    production = {"DEBUG": "0", "SECRET_KEY": "x" * 50, "EMAIL_BACKEND": POSTMARK}
    started = start("import retention.wsgi", **production, ANYMAIL_WEBHOOK_SECRET="")
    assert started.returncode != 0
    assert "needs ANYMAIL_WEBHOOK_SECRET" in started.stderr

    started = start("import retention.wsgi", **production,
                    ANYMAIL_WEBHOOK_SECRET="hooks:a-long-random-password")
    assert started.returncode == 0, started.stderr


def test_with_a_secret_only_a_request_that_carries_it_is_heard(client, ann, routes):
    secret = "hooks:a-long-random-password"
    routes(backend=POSTMARK, secret=secret)

    assert post(client, "/anymail/postmark/tracking/").status_code == 400  # anonymous
    assert post(client, "/anymail/postmark/tracking/", secret="hooks:guess").status_code == 400
    assert post(client, "/anymail/mailgun/tracking/", secret=secret).status_code == 404
    assert nothing_happened_to(ann)

    assert post(client, "/anymail/postmark/tracking/", secret=secret).status_code == 200
    ann.refresh_from_db()
    assert not ann.marketing_consent
    assert Suppression.objects.get().reason == Suppression.Reason.COMPLAINT


def test_a_secret_that_is_not_user_and_password_stops_start_up():
    started = start(DEBUG="1", ANYMAIL_WEBHOOK_SECRET="only-a-password")
    assert started.returncode != 0 and "must be user:password" in started.stderr
