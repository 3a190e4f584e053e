"""Celery entry points. Each takes plain ids or dates and calls one domain function."""

import logging
import threading
from datetime import date

from celery import shared_task
from django.core.signals import request_finished, request_started
from django.dispatch import receiver

from retention import nightly, periods
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


# Whether this thread is answering a web request, and whether email was queued in it.
_request = threading.local()


@receiver(outbox.messages_queued, dispatch_uid="retention.tasks.wake_senders")
def wake_senders(**kwargs) -> None:
    """After a commit queued email: ask a worker to send it (in-process without a broker).

    Inside a web request the ask waits until the answer has gone out (request_finished):
    without a broker the email is sent in-process, and sending it before answering made
    the fresh-link page answer known addresses measurably later than unknown ones.
    """
    if getattr(_request, "active", False):
        _request.pending = True
    else:
        send_outbox.delay()


@receiver(request_started, dispatch_uid="retention.tasks.request_started")
def _request_started(**kwargs) -> None:
    _request.active, _request.pending = True, False


@receiver(request_finished, dispatch_uid="retention.tasks.request_finished")
def _request_finished(**kwargs) -> None:
    pending = getattr(_request, "pending", False)
    _request.active, _request.pending = False, False
    if pending:
        try:
            send_outbox.delay()
        except Exception:  # the answer is sent; the sweep sends what this did not
            logger.exception("could not wake the email senders after a request")
