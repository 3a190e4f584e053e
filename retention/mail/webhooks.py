"""An email service's delivery events, through django-anymail's webhooks (`/anymail/…`).

Bounces suppress the address; spam complaints suppress it and withdraw the customer's
marketing consent (recorded as evidence); an unsubscribe the service handled turns off
the customer's topics. Each service's webhook is switched on by configuring it in the
service (see django-anymail's documentation) with ANYMAIL_WEBHOOK_SECRET.
"""

from anymail.signals import tracking
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
