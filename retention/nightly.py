"""The nightly pipeline: the steps the schedule runs once a day, in order.

`run` is what both the Celery beat entry (`retention.tasks.run_nightly`) and
`manage.py run_nightly` call. Each step is safe to run twice for the same date:
running a night again gives the same result.
"""

import logging
from collections.abc import Callable
from datetime import date

from retention import summaries

log = logging.getLogger(__name__)


def refresh_customer_summaries(on: date) -> str:
    """Rebuild every customer's cached order summary (a safety net for the incremental updates)."""
    count = summaries.refresh()
    return f"{count} customer summaries refreshed"


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
