import copy

import pytest
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from retention.permissions import PLATFORM_GROUP


@pytest.fixture(autouse=True)
def _empty_cache():
    """Each test starts with no throttle counts (the cache is in memory in tests)."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def view_only_manager(django_user_model):
    """A manager who may only view: in the Managers group, which has the view permissions."""
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("boss", password="pw-boss-1234",
                                                 email="boss@example.com", is_staff=True)
    group = Group.objects.get_or_create(name="Managers")[0]
    group.permissions.add(*Permission.objects.filter(codename__startswith="view_"))
    user.groups.add(group)
    return user


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


class SMTPInbox:
    """What a real SMTP server on loopback received (aiosmtpd), parsed as email messages."""

    def __init__(self):
        self.messages = []
        self.refuse = {}  # address -> (code, text) to answer RCPT TO with
        self.delay = 0.0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            code, text = self.refuse[address]
            return f"{code} {text}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        import asyncio
        import email
        from email import policy

        if self.delay:
            await asyncio.sleep(self.delay)
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted for delivery"


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_inbox(settings):
    """A real SMTP server on loopback, and Django's SMTP backend pointed at it."""
    from aiosmtpd.controller import Controller

    inbox = SMTPInbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    yield inbox
    controller.stop()


@pytest.fixture
def registries(monkeypatch):
    """Every registry the apps fill from AppConfig.ready(), as it is now, restored after the
    test: a test may register a section, a step, a reason, figures, a link purpose, a preview
    or a customer-admin inline of its own."""
    from retention.account import sections
    from retention.figures import registry
    from retention.mail import links, previews
    from retention.nightly import pipeline
    from retention.sales import admin
    from retention.value import atrisk

    for module, name in [(sections, "SECTIONS"), (registry, "REGISTERED"), (pipeline, "STEPS"),
                         (atrisk, "REASONS"), (links, "PURPOSES"), (previews, "PREVIEWS"),
                         (admin, "CUSTOMER_INLINES")]:
        monkeypatch.setattr(module, name, copy.copy(getattr(module, name)))
