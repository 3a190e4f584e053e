"""The customer's page, reached by a signed link, and fresh links for those whose link expired.

The page is made of sections: retention contributes the customer's courses and email
preferences; the loyalty, surveys and offers apps add theirs (points and tier, offers,
referral link) with `register_section`, without retention importing them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from retention.mail import links, outbox
from retention.sales.models import Customer, Enrolment
from retention.models import LinkRequest


@dataclass(frozen=True)
class Section:
    """A part of the customer's page: a template and the context it needs."""

    order: int
    template: str
    context: Callable[[Customer], dict | None]  # None: nothing to show for this customer


SECTIONS: list[Section] = []


def register_section(section: Section) -> None:
    """Add a section to every customer's page (apps call this in their AppConfig.ready)."""
    if section not in SECTIONS:
        SECTIONS.append(section)
        SECTIONS.sort(key=lambda s: s.order)


def sections_for(customer: Customer) -> list[tuple[str, dict]]:
    """(template, context) of each section that has something to show."""
    shown = []
    for section in SECTIONS:
        context = section.context(customer)
        if context is not None:
            shown.append((section.template, context))
    return shown


def _courses(customer: Customer) -> dict | None:
    enrolments = list(Enrolment.objects.filter(customer=customer).select_related("course")
                      .order_by("completed_on", "-last_activity_at", "-started_on")[:20])
    return {"enrolments": enrolments} if enrolments else None


register_section(Section(order=10, template="account/section_courses.html", context=_courses))


class TooManyRequests(Exception):
    """Fresh links were asked for too often for this address or from this network address."""


def email_hash(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def request_fresh_link(email: str, *, ip: str | None) -> bool:
    """Email a fresh link to the customer page if `email` is a customer's; return whether one
    was queued (the caller answers the same either way, so the page reveals nothing).

    Raises TooManyRequests past RETENTION_LINK_REQUESTS_PER_HOUR for the address, or ten
    times that for the IP address. Requests are counted in the database, so every process
    sees the same counts; only a hash of the address is kept, for a day.
    """
    now = timezone.now()
    hashed = email_hash(email)
    limit = settings.RETENTION_LINK_REQUESTS_PER_HOUR
    with transaction.atomic():
        LinkRequest.objects.filter(requested_at__lt=now - timedelta(days=1)).delete()
        recent = LinkRequest.objects.filter(requested_at__gte=now - timedelta(hours=1))
        if (recent.filter(email_hash=hashed).count() >= limit
                or (ip and recent.filter(ip=ip).count() >= 10 * limit)):
            raise TooManyRequests("too many requests for a link; try again in an hour")
        LinkRequest.objects.create(email_hash=hashed, ip=ip, requested_at=now)
        customer = Customer.objects.filter(email__iexact=email.strip()).order_by("pk").first()
        if customer is None:
            return False
        outbox.queue(customer, template="email/fresh_link", purpose="fresh_link",
                     kind=outbox.Kind.TRANSACTIONAL, priority=10,
                     key=f"fresh_link:{customer.pk}:{now.isoformat()}",
                     context={"account_url": links.url(customer, "account")})
    return True
