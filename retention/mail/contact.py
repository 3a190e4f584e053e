"""The contact budget and quiet hours: how often, and when, non-transactional email may go.

Every email but transactional ones (offers, win-back, loyalty news, new courses, survey
invitations) shares one budget per customer: at most RETENTION_CONTACT_BUDGET_MESSAGES in
any RETENTION_CONTACT_BUDGET_DAYS. None goes out in the quiet hours
(RETENTION_QUIET_HOURS, business time zone). The outbox asks these functions when it is
about to take messages to send, with their customers' rows locked, so two workers
cannot both spend the last place of a budget.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from retention.mail.models import OutboxMessage

# A message spends its customer's budget when a worker takes it to send (claimed), and
# gives it back only if it goes back to the queue (the sweep, after its worker stopped).
SPENT = [OutboxMessage.Status.CLAIMED, OutboxMessage.Status.SENDING, OutboxMessage.Status.SENT]


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


def recent_spending(customer_ids: list[int], now: datetime) -> dict[int, list[datetime]]:
    """When each customer's non-transactional messages in the budget window were taken to be
    sent, newest first (one query over the outbox's (customer, claimed_at) index)."""
    window = timedelta(days=settings.RETENTION_CONTACT_BUDGET_DAYS)
    spent: dict[int, list[datetime]] = {pk: [] for pk in customer_ids}
    rows = (OutboxMessage.objects.filter(customer__in=customer_ids, status__in=SPENT,
                                         claimed_at__gte=now - window)
            .exclude(kind=OutboxMessage.Kind.TRANSACTIONAL).order_by("-claimed_at")
            .values_list("customer_id", "claimed_at"))
    for customer_id, claimed_at in rows:
        spent[customer_id].append(claimed_at)
    return spent


def budget_frees_at(spent: list[datetime]) -> datetime | None:
    """When a budget with these spendings (newest first) has room again; None: it has now."""
    limit = settings.RETENTION_CONTACT_BUDGET_MESSAGES
    if len(spent) < limit:
        return None
    # the oldest of the last `limit` leaves the window then
    return spent[limit - 1] + timedelta(days=settings.RETENTION_CONTACT_BUDGET_DAYS)


def budget_text() -> str:
    return (f"budget {settings.RETENTION_CONTACT_BUDGET_MESSAGES} per "
            f"{settings.RETENTION_CONTACT_BUDGET_DAYS} days reached")

