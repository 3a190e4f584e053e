"""Celery entry points. Each takes plain ids or dates and calls one domain function."""

import logging
from datetime import date

from celery import shared_task
from django.dispatch import receiver

from retention import after_response, nightly, periods
from retention.mail import outbox
from retention.sales import summaries
from retention.sales.models import Customer

logger = logging.getLogger(__name__)


@shared_task
def run_nightly(on: str | None = None) -> list[tuple[str, str, float]]:
    """Run the nightly pipeline for the night after `on` (ISO date; default: yesterday)."""
    return nightly.run(date.fromisoformat(on) if on else periods.last_complete_day())


@shared_task
def refresh_summaries(customer_ids: list[int]) -> int:
    """Recompute the cached order summaries of these customers (idempotent)."""
    return summaries.refresh(Customer.objects.filter(pk__in=customer_ids))


@shared_task(acks_late=True, ignore_result=True)
def send_outbox(batch: int = 200, rounds: int = 50) -> dict[str, int]:
    """Send due emails, a batch at a time, until none is due (or `rounds` batches went).

    Any number may run at once, and a task may run twice: each message is claimed by one
    worker only (retention.mail.outbox).
    """
    return dict(outbox.drain(batch=batch, rounds=rounds))


@shared_task(ignore_result=True)
def sweep_outbox() -> dict[str, int]:
    """Every minute: deal with messages of workers that went quiet, then send what is due."""
    swept = outbox.sweep()
    return {**swept, **send_outbox(batch=200, rounds=5)}


@receiver(outbox.messages_queued, dispatch_uid="retention.tasks.wake_senders")
def wake_senders(**kwargs) -> None:
    """After a commit queued email: ask a worker to send it (in-process without a broker).

    While a web request is answered the ask waits until the answer has gone out
    (retention.after_response): a customer's page is not kept waiting on an email.
    """
    after_response.later(wake_now)


def wake_now() -> None:
    try:
        send_outbox.delay()
    except Exception:  # the email is queued; the sweep sends what this did not
        logger.exception("could not wake the email senders")
