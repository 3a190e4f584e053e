"""Fresh links for customers whose link expired: asked for by address, rate-limited, and
answered the same whether the address is known, so the page reveals nothing."""

from __future__ import annotations

import hashlib
import unicodedata
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac

from retention import after_response
from retention.account.models import LinkRequest
from retention.mail import links, outbox
from retention.sales.models import Customer


class TooManyRequests(Exception):
    """Fresh links were asked for too often for this address or from this network address."""


def normalised(email: str) -> str:
    """The address as the customer lookup matches it: Unicode look-alikes folded (NFKC) and
    upper-cased, as the database's case-insensitive match does (PostgreSQL's UPPER turns a
    dotless ı into I and a long ſ into S), so that no spelling of one address counts apart."""
    return unicodedata.normalize("NFKC", email.strip()).upper()


def email_hash(email: str) -> str:
    """A keyed hash (HMAC with SECRET_KEY) of the address: the table of requests cannot be
    turned back into addresses by hashing the customers' emails."""
    return salted_hmac("retention.account.fresh_links", normalised(email),
                       algorithm="sha256").hexdigest()


# Namespaces of the advisory locks (the two-key form): one per client address, one per address.
LOCK_IP, LOCK_ADDRESS = 7301, 7302


def _key(text: str) -> int:
    return int(hashlib.blake2b(text.encode(), digest_size=4).hexdigest(), 16) - 2**31


def _lock(hashed: str, ip: str | None) -> None:
    """Serialise the count-then-insert of these limits for this transaction.

    PostgreSQL: transaction-scoped advisory locks on the client's address, then on the
    address asked for (always in that order, so two requests never wait on each other in
    a circle), so that requests at once cannot all count below a limit. SQLite writes one
    transaction at a time (transactions begin IMMEDIATE, see settings) already.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            if ip:
                cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [LOCK_IP, _key(ip)])
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [LOCK_ADDRESS, _key(hashed)])


def request_fresh_link(email: str, *, ip: str | None) -> None:
    """Email a fresh link to the customer page if `email` is a customer's.

    Raises TooManyRequests past RETENTION_LINK_REQUESTS_PER_HOUR for the address, or ten
    times that for the IP address. Requests are counted in the database, so every process
    sees the same counts; only a keyed hash of the address is kept, for a day.

    Inside a web request the same work is done for every address (hash, lock, count,
    record); finding the customer and sending the email wait until the answer has gone
    out (retention.after_response), so a customer's address is answered no later than an
    unknown one and the page reveals nothing.
    """
    now = timezone.now()
    hashed = email_hash(email)
    limit = settings.RETENTION_LINK_REQUESTS_PER_HOUR
    with transaction.atomic():
        _lock(hashed, ip)
        LinkRequest.objects.filter(requested_at__lt=now - timedelta(days=1)).delete()
        recent = LinkRequest.objects.filter(requested_at__gte=now - timedelta(hours=1))
        if (recent.filter(email_hash=hashed).count() >= limit
                or (ip and recent.filter(ip=ip).count() >= 10 * limit)):
            raise TooManyRequests("too many requests for a link; try again in an hour")
        LinkRequest.objects.create(email_hash=hashed, ip=ip, requested_at=now)
    after_response.later(partial(_send_if_customer, unicodedata.normalize("NFKC", email.strip()),
                                 now))


def _send_if_customer(email: str, now) -> None:
    customer = Customer.objects.filter(email__iexact=email).order_by("pk").first()
    if customer is not None:
        with transaction.atomic():
            send_fresh_link(customer, now=now)


def send_fresh_link(customer: Customer, *, now=None) -> None:
    """Queue the email with a fresh link to the customer's page (also the admin's action:
    staff give customers their page this way, never by handling the link themselves)."""
    now = now or timezone.now()
    outbox.queue(customer, template="email/fresh_link", purpose="fresh_link",
                 kind=outbox.Kind.TRANSACTIONAL, priority=10,
                 key=f"fresh_link:{customer.pk}:{now.isoformat()}",
                 context={"account_url": links.url(customer, "account")})


send_fresh_link.alters_data = True
