"""An email service's delivery events, through django-anymail's webhooks (`/anymail/…`).

Bounces suppress the address; spam complaints suppress it and withdraw the customer's
marketing consent (recorded as evidence); an unsubscribe the service handled turns off
the customer's topics.

Only the webhook of the service EMAIL_BACKEND sends through is routed (`urlpatterns`), and
only when ANYMAIL_WEBHOOK_SECRET is set: anymail then refuses a request without the
secret (basic auth), so nobody else can report a complaint in a customer's name.
"""

from anymail import urls as anymail_urls
from anymail.signals import tracking
from django.conf import settings
from django.dispatch import receiver

from retention.mail import consent
from retention.mail.models import ConsentRecord, Suppression
from retention.sales.models import Customer


@receiver(tracking)
def delivery_event(sender, event, esp_name: str, **kwargs) -> None:
    recipient = (event.recipient or "").strip().lower()
    if not recipient:
        return
    detail = f"{esp_name}: {event.event_type} {event.description or ''}".strip()[:300]
    if event.event_type == "bounced" or (event.event_type == "rejected"
                                         and event.reject_reason == "bounced"):
        Suppression.objects.get_or_create(
            email=recipient, defaults={"reason": Suppression.Reason.BOUNCE, "detail": detail})
    elif event.event_type == "complained":
        Suppression.objects.get_or_create(
            email=recipient, defaults={"reason": Suppression.Reason.COMPLAINT, "detail": detail})
        for customer in Customer.objects.filter(email__iexact=recipient):
            consent.set_marketing_consent(customer, False, method=ConsentRecord.Method.COMPLAINT,
                                          wording="", detail=detail)
    elif event.event_type == "unsubscribed":
        for customer in Customer.objects.filter(email__iexact=recipient):
            consent.unsubscribe(customer, None, method=ConsentRecord.Method.UNSUBSCRIBE,
                                detail=detail)


def routed() -> bool:
    """Whether the configured service's delivery webhook is routed (it has a secret)."""
    return bool(settings.RETENTION_EMAIL_SERVICE and settings.ANYMAIL_WEBHOOK_SECRET)


def urlpatterns() -> list:
    """The configured service's tracking webhook from anymail's routes, or none."""
    if not routed():
        return []
    name = f"{settings.RETENTION_EMAIL_SERVICE}_tracking_webhook"
    return [pattern for pattern in anymail_urls.urlpatterns if pattern.name == name]
