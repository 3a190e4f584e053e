"""Celery entry points. Each takes plain ids or dates and calls one domain function."""

from datetime import date

from celery import shared_task

from retention import nightly, summaries
from retention.models import Customer


@shared_task
def run_nightly(on: str | None = None) -> list[tuple[str, str, float]]:
    """Run the nightly pipeline for the night after `on` (ISO date; default: yesterday)."""
    return nightly.run(date.fromisoformat(on) if on else nightly.default_night())


@shared_task
def refresh_summaries(customer_ids: list[int]) -> int:
    """Recompute the cached order summaries of these customers (idempotent)."""
    return summaries.refresh(Customer.objects.filter(pk__in=customer_ids))
