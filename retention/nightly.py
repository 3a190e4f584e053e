"""The nightly pipeline: the steps the schedule runs once a day, in order.

`run` is what both the Celery beat entry (`retention.tasks.run_nightly`) and
`manage.py run_nightly` call. Each step is safe to run twice for the same date:
running a night again gives the same result.
"""

import logging
from collections.abc import Callable
from datetime import date

from retention import summaries
from retention.models import Customer

log = logging.getLogger(__name__)


def refresh_customer_summaries(on: date) -> str:
    """Check every customer's cached order summary and correct those that drifted.

    Every write path keeps the summaries right, so "0 corrected" is the normal
    outcome; this is the safety net for rows written past those paths.
    """
    corrected = summaries.refresh()
    return f"{Customer.objects.count()} customers checked, {corrected} summaries corrected"


STEPS: list[tuple[str, Callable[[date], str]]] = [
    ("customer summaries", refresh_customer_summaries),
]


def run(on: date) -> list[tuple[str, str]]:
    """Run every step for the night of `on`; return (step, outcome) pairs."""
    outcomes = []
    for name, step in STEPS:
        outcome = step(on)
        log.info("nightly %s: %s: %s", on, name, outcome)
        outcomes.append((name, outcome))
    return outcomes
