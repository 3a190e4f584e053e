"""Email templates with sample data: the admin's previews and test sends.

Each email template (templates/email/NAME.subject.txt, .txt, .html) is a Django template
staff can edit; each app registers its emails' previews (`register`) with the kind and
topic they are sent as and sample data, so the admin shows each as it would arrive, and can send one to a staff address.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from retention.mail import outbox
from retention.mail.models import OutboxMessage, Topic

Kind = OutboxMessage.Kind


@dataclass(frozen=True)
class Preview:
    template: str
    title: str
    kind: str
    topic: str = ""
    sample: dict = field(default_factory=dict)


# Retention's own emails (registered in retention/apps.py).
RETENTION_PREVIEWS = [
    Preview("email/fresh_link", "A fresh link to the customer's page", Kind.TRANSACTIONAL),
    Preview("email/metric_alert", "A metric alert to managers", Kind.TRANSACTIONAL,
            sample={"metric": "churn rate", "value": "14.20", "month": "March 2026",
                    "trailing_average": "10.10", "trailing_months": 3, "change_percent": "+40.59",
                    "rule": "churn_rate rises by 25.00 %"}),
    Preview("email/winback", "Win-back: a lapsed customer", Kind.MARKETING, Topic.OFFERS,
            sample={"offer": "Take 15 % off your next course until the end of the month.",
                    "cta_label": "See the courses"}),
    Preview("email/new_course", "A new course, with early access", Kind.MARKETING,
            Topic.NEW_COURSES, sample={"course_title": "Data Analysis II", "early_access": True,
                                       "launch_on": "1 April"}),
]
PREVIEWS: list[Preview] = []


def register(preview: Preview) -> None:
    """Show an email template in the admin's previews and test sends (apps call this in
    AppConfig.ready); registering it again changes nothing."""
    if preview in PREVIEWS:
        return
    if any(other.template == preview.template for other in PREVIEWS):
        raise ImproperlyConfigured(f"a preview of {preview.template!r} is registered already")
    PREVIEWS.append(preview)


def by_template(template: str) -> Preview | None:
    return next((preview for preview in PREVIEWS if preview.template == template), None)


class SampleCustomer:
    """Stands in for a customer in previews (never saved, so no real links are made)."""

    name = "Thandi Nkosi"
    display_name = "Thandi Nkosi"
    email = "thandi@example.com"


def _context(preview: Preview) -> dict:
    site = settings.SITE_URL.rstrip("/")
    return {"customer": SampleCustomer(), "account_url": f"{site}/c/sample/",
            "preferences_url": f"{site}/p/sample/", "unsubscribe_url": f"{site}/u/sample/",
            "survey_url": f"{site}/s/sample/", "metrics_url": f"{site}/metrics/",
            "cta_url": site, **preview.sample}


def render(template: str) -> OutboxMessage:
    """An unsaved message rendered from `template` with its sample data."""
    preview = by_template(template)
    message = OutboxMessage(public_id=uuid.uuid4(), kind=preview.kind, topic=preview.topic,
                            template=template, purpose="preview")
    outbox.render(message, _context(preview))
    return message


def test_send(template: str, to_email: str) -> OutboxMessage:
    """Queue the sample of `template` to a staff address, as transactional mail ("[Test]")."""
    preview = by_template(template)
    with transaction.atomic():
        message = outbox.queue(None, to_email=to_email, template=template, purpose="test",
                               kind=Kind.TRANSACTIONAL, key=f"test:{uuid.uuid4()}",
                               context=_context(preview), priority=20)
        message.subject = f"[Test] {message.subject}"[:200]
        message.save(update_fields=["subject"])
    return message
