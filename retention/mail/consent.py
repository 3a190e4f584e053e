"""Consent and preferences: who may receive which email, with every change kept as evidence.

Transactional email (a redemption code, a fresh link) always goes to a deliverable
address. Marketing email needs the customer's marketing consent (Customer.marketing_consent,
sent by the sales platform or changed on the preferences page) and the topic turned on;
survey invitations go unless the customer turned surveys off. A pause stops everything
but transactional email until a date. Each change writes a ConsentRecord: when, how,
what the customer was shown; rows are never edited.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from retention.mail.models import ConsentRecord, ContactPreferences, OutboxMessage, Topic
from retention.sales.models import Customer

MARKETING = "marketing"
PAUSE = "pause"


def preferences_of(customer: Customer) -> ContactPreferences:
    """The customer's preferences (created with the defaults on first use)."""
    preferences, _created = ContactPreferences.objects.get_or_create(customer=customer)
    return preferences


def why_not(customer: Customer, kind: str, topic: str, *, now: datetime,
            preferences: ContactPreferences | None = None) -> str | None:
    """Why `customer` may not receive an email of this kind and topic now, or None."""
    if kind == OutboxMessage.Kind.TRANSACTIONAL:
        return None
    if kind == OutboxMessage.Kind.MARKETING and not customer.marketing_consent:
        return _("no marketing consent")
    preferences = preferences or preferences_of(customer)
    if not preferences.wants(topic):
        return _("unsubscribed from %(topic)s") % {"topic": Topic(topic).label.lower()}
    if preferences.paused_until and preferences.paused_until > now:
        return _("paused until %(day)s") % {
            "day": date_format(timezone.localtime(preferences.paused_until), "Y-m-d")}
    return None


def _record(customer: Customer, subject: str, granted: bool, *, method: str, wording: str = "",
            detail: str = "") -> ConsentRecord:
    return ConsentRecord.objects.create(
        customer=customer, subject=subject, granted=granted, method=method, wording=wording,
        detail=detail[:300], recorded_at=timezone.now())


def set_marketing_consent(customer: Customer, granted: bool, *, method: str,
                          wording: str | None = None, detail: str = "") -> bool:
    """Give or withdraw marketing consent; record it when it changes. Returns whether it did."""
    with transaction.atomic():
        locked = Customer.objects.select_for_update().get(pk=customer.pk)
        if locked.marketing_consent == granted:
            return False
        Customer.objects.filter(pk=customer.pk).update(marketing_consent=granted)
        customer.marketing_consent = granted
        _record(customer, MARKETING, granted, method=method,
                wording=settings.RETENTION_CONSENT_WORDING if wording is None else wording,
                detail=detail)
    return True


set_marketing_consent.alters_data = True


def record_platform_consent(customer: Customer, was: bool | None, *, wording: str = "") -> None:
    """Record the consent the sales platform sent, when it is new or changed."""
    if was is None and not customer.marketing_consent:
        return  # a new customer without consent: nothing was given
    if was != customer.marketing_consent:
        _record(customer, MARKETING, customer.marketing_consent, method=ConsentRecord.Method.PLATFORM,
                wording=wording or settings.RETENTION_CONSENT_WORDING)


def set_topics(customer: Customer, wanted: dict[str, bool], *, method: str,
               detail: str = "") -> list[str]:
    """Turn topics on or off; record each change. Returns the topics that changed."""
    changed = []
    with transaction.atomic():
        preferences = ContactPreferences.objects.select_for_update().filter(
            customer=customer).first() or preferences_of(customer)
        for topic, value in wanted.items():
            Topic(topic)  # raises ValueError for an unknown topic
            if preferences.wants(topic) != value:
                setattr(preferences, topic, value)
                changed.append(topic)
                _record(customer, topic, value, method=method, detail=detail)
        if changed:
            preferences.save(update_fields=[*changed, "updated_at"])
    return changed


set_topics.alters_data = True


def pause(customer: Customer, until: datetime | None, *, method: str) -> None:
    """Stop all but transactional email until `until` (None: resume now); record it."""
    with transaction.atomic():
        preferences = preferences_of(customer)
        if preferences.paused_until == until:
            return
        preferences.paused_until = until
        preferences.save(update_fields=["paused_until", "updated_at"])
        _record(customer, PAUSE, until is None, method=method,
                detail="" if until is None else f"until {until.isoformat()}")


pause.alters_data = True


def unsubscribe(customer: Customer, topic: str | None, *, method: str, detail: str = "") -> list[str]:
    """Turn off one topic, or every topic (None). Returns the topics that changed."""
    topics = [topic] if topic else list(Topic.values)
    return set_topics(customer, dict.fromkeys(topics, False), method=method, detail=detail)


unsubscribe.alters_data = True
