"""The contact budget and quiet hours: how often, and when, non-transactional email may go.

Every email but transactional ones (offers, win-back, loyalty news, new courses, survey
invitations) shares one budget per customer: at most RETENTION_CONTACT_BUDGET_MESSAGES in
any RETENTION_CONTACT_BUDGET_DAYS. None goes out in the quiet hours
(RETENTION_QUIET_HOURS, business time zone). The outbox asks these functions when it is
about to hand a message to the mail server, with the customer's row locked, so two
workers cannot both spend the last place of a budget.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from retention.models import Customer, OutboxMessage

SPENT = [OutboxMessage.Status.SENDING, OutboxMessage.Status.SENT]


def quiet_until(now: datetime) -> datetime | None:
    """The end of the quiet hours when `now` falls in them, else None."""
    hours = settings.RETENTION_QUIET_HOURS
    if hours is None:
        return None
    start, end = hours
    local = timezone.localtime(now)
    moment = local.time()
    if start <= end:
        quiet = start <= moment < end
        ends_on = local.date()
    else:  # across midnight, e.g. 21:00-08:00
        quiet = moment >= start or moment < end
        ends_on = local.date() + timedelta(days=1) if moment >= start else local.date()
    if not quiet:
        return None
    return timezone.make_aware(datetime.combine(ends_on, end), timezone.get_current_timezone())


def budget_frees_at(customer: Customer, now: datetime) -> datetime | None:
    """When the customer's budget has room again, or None if it has room now (one query)."""
    window = timedelta(days=settings.RETENTION_CONTACT_BUDGET_DAYS)
    recent = OutboxMessage.objects.filter(
        customer=customer, status__in=SPENT, sending_at__gte=now - window,
    ).exclude(kind=OutboxMessage.Kind.TRANSACTIONAL).order_by("-sending_at")
    limit = settings.RETENTION_CONTACT_BUDGET_MESSAGES
    times = list(recent.values_list("sending_at", flat=True)[:limit])
    if len(times) < limit:
        return None
    return times[-1] + window  # the oldest of the last `limit` leaves the window then


def budget_text() -> str:
    return (f"budget {settings.RETENTION_CONTACT_BUDGET_MESSAGES} per "
            f"{settings.RETENTION_CONTACT_BUDGET_DAYS} days reached")

