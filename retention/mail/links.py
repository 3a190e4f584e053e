"""Signed links that bring a customer back without a password.

A link names one customer and one registered purpose (retention's: the customer page,
email preferences, an unsubscribe, a click to count; the programs add theirs, a survey
answer, say, with `register_purpose`) and is signed with the project's secret
(django.core.signing, salted by purpose, so a survey link does not open the customer
page). It expires after the purpose's lifetime (setting RETENTION_LINK_DAYS) and carries
the customer's `link_generation`: staff raise it to revoke every link sent so far.

    register_purpose(Purpose("survey", days=30, url_name="survey-answer"))   # in ready()
    url = links.url(customer, "account")
    link = links.read(token, "account")   # raises LinkInvalid or LinkExpired

Opening a link changes nothing by itself (mail scanners open every link in a message);
the pages it leads to act on a POST.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.core.exceptions import ImproperlyConfigured
from django.db.models import F
from django.urls import reverse

from retention.sales.models import Customer


@dataclass(frozen=True)
class Purpose:
    """What a link is for: its name (in its signature), how long it works unless the setting
    RETENTION_LINK_DAYS says otherwise, and the URL that opens it (None: the app that
    registers it makes its own URLs from `token`)."""

    name: str
    days: int
    url_name: str | None = None


PURPOSES: dict[str, Purpose] = {}


def register_purpose(purpose: Purpose) -> None:
    """Let links of this purpose be made and read (apps call this in AppConfig.ready).

    Registering the same purpose again changes nothing; another purpose of the same name is
    refused, since a name is part of every link's signature.
    """
    if PURPOSES.get(purpose.name) == purpose:
        return
    if purpose.name in PURPOSES:
        raise ImproperlyConfigured(f"a link purpose {purpose.name!r} is registered already")
    PURPOSES[purpose.name] = purpose


# Retention's own purposes (registered in retention/apps.py): the URLs of retention/urls.py.
RETENTION_PURPOSES = [
    Purpose("account", days=30, url_name="account"),
    Purpose("preferences", days=180, url_name="account-preferences"),
    Purpose("unsubscribe", days=365, url_name="unsubscribe"),
    Purpose("click", days=365, url_name="click"),
]


def lifetime_days(purpose: str) -> int:
    """How many days a link of `purpose` works (RETENTION_LINK_DAYS, or the purpose's own)."""
    return settings.RETENTION_LINK_DAYS.get(purpose, PURPOSES[purpose].days)


def unknown_lifetimes() -> list[str]:
    """The purposes RETENTION_LINK_DAYS names that nothing registered (a system check)."""
    return sorted(set(settings.RETENTION_LINK_DAYS) - set(PURPOSES))


class LinkInvalid(Exception):
    """Forged, altered, revoked, or for another purpose."""


class LinkExpired(LinkInvalid):
    """Signed by us, but older than its purpose's lifetime."""


@dataclass(frozen=True)
class Link:
    customer: Customer | None
    purpose: str
    data: dict  # what the link carries besides the customer (a topic, a message, a URL)


def _salt(purpose: str) -> str:
    # The module's path when the first links were sent, kept so that they still open: a
    # salt is part of every signature.
    return f"retention.links.{purpose}"


def token(customer: Customer | None, purpose: str, **data) -> str:
    """The signed token of a link for `customer` and `purpose` (with `data` inside)."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown link purpose {purpose!r} (register it with register_purpose)")
    payload = dict(data)
    if customer is not None:
        payload.update(c=customer.pk, g=customer.link_generation)
    return signing.dumps(payload, salt=_salt(purpose), compress=True)


def url(customer: Customer | None, purpose: str, **data) -> str:
    """The absolute URL (SITE_URL) of a link for `customer` and `purpose`."""
    url_name = PURPOSES[purpose].url_name
    if url_name is None:
        raise ValueError(f"links of purpose {purpose!r} have no URL of ours; use token()")
    path = reverse(url_name, kwargs={"token": token(customer, purpose, **data)})
    return settings.SITE_URL.rstrip("/") + path


def read(value: str, purpose: str) -> Link:
    """The link a token stands for; raises LinkExpired or LinkInvalid (never says whose)."""
    if purpose not in PURPOSES:
        raise LinkInvalid("this link is not one of ours")
    max_age = timedelta(days=lifetime_days(purpose))
    try:
        payload = signing.loads(value, salt=_salt(purpose), max_age=max_age)
    except signing.SignatureExpired:
        raise LinkExpired("this link has expired") from None
    except signing.BadSignature:
        raise LinkInvalid("this link is not one of ours") from None
    customer = None
    if "c" in payload:
        customer = Customer.objects.filter(pk=payload.pop("c")).first()
        generation = payload.pop("g", None)
        if customer is None or customer.link_generation != generation:
            raise LinkInvalid("this link was withdrawn")
    return Link(customer=customer, purpose=purpose, data=payload)


# A token as signing.dumps(..., compress=True) writes it: payload, timestamp, signature.
TOKEN = re.compile(r"\.?[A-Za-z0-9_-]{6,}:[A-Za-z0-9_-]{4,}:[A-Za-z0-9_-]{20,}")
HIDDEN = "…link-hidden…"


def redact(text: str) -> str:
    """`text` with every signed token replaced: an email's copy shown to staff must not
    carry the customer's working links (their page, unsubscribe, a tracked click)."""
    return TOKEN.sub(HIDDEN, text)


def revoke(customer: Customer) -> None:
    """Withdraw every link sent to `customer` so far (staff action)."""
    Customer.objects.filter(pk=customer.pk).update(link_generation=F("link_generation") + 1)
    customer.refresh_from_db(fields=["link_generation"])


revoke.alters_data = True
