"""The nightly pipeline: the registered steps, run once a day in their order, each recorded.

`run(night)` is what both the Celery beat entry (`retention.tasks.run_nightly`) and
`manage.py run_nightly` call, for the night after the day `night` (by default yesterday,
the last complete day). Each run is recorded as a NightlyRun, with what each step did and
how long it took.

The steps are registered from `AppConfig.ready()`, retention's own (retention/nightly/
steps.py) as the programs' are:

    from retention.nightly import Night, Step, register_step

    def expire_points(night: Night) -> str:
        return f"{ledger.expire(on=night.day)} lots expired"

    register_step(Step(order=45, name="loyalty expiry", run=expire_points))

A step reads what it needs of `Night` (the day, the previous finished run, whether a full
check was asked for) and returns what it did, in words; it may leave something for later
steps in `night.shared`. Steps run in the order of `order`, then of `name`; a step must be
safe to run twice for the same night, since a night may be run again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from retention.nightly.models import NightlyRun

log = logging.getLogger(__name__)


@dataclass
class Night:
    """The night a run is for, as every step sees it."""

    day: date  # the last day the night's figures run to (a day in the business zone)
    previous: NightlyRun | None  # the latest finished run before this one
    full: bool = False  # check everything, not only what changed since the previous run
    shared: dict = field(default_factory=dict)  # what a step leaves for later steps


@dataclass(frozen=True)
class Step:
    """One step of the pipeline: its place, its name in the run's record, and its work."""

    order: int
    name: str
    run: Callable[[Night], str]


STEPS: list[Step] = []


def register_step(step: Step) -> None:
    """Add a step to every night (apps call this in their AppConfig.ready).

    Registering the same step again changes nothing; another step of the same name is
    refused, since the run's record names steps.
    """
    if step in STEPS:
        return
    if any(other.name == step.name for other in STEPS):
        raise ImproperlyConfigured(f"a nightly step named {step.name!r} is registered already")
    STEPS.append(step)
    STEPS.sort(key=lambda s: (s.order, s.name))


def run(night: date, *, full: bool = False) -> list[tuple[str, str, float]]:
    """Run every step for `night`; return (step, outcome, seconds) triples.

    The run is recorded before the first step; its outcomes and end when the last is done
    (a run that failed keeps no end, and the next run compares with the one before it).
    """
    previous = NightlyRun.objects.filter(finished_at__isnull=False).order_by("-started_at").first()
    record = NightlyRun.objects.create(night=night, started_at=timezone.now())
    context = Night(day=night, previous=previous, full=full)
    outcomes: list[tuple[str, str, float]] = []
    for step in list(STEPS):
        began = time.perf_counter()
        outcome = step.run(context)
        seconds = round(time.perf_counter() - began, 3)
        outcomes.append((step.name, outcome, seconds))
        log.info("nightly %s: %s: %s (%.1f s)", night, step.name, outcome, seconds)
    record.outcomes = outcomes
    record.finished_at = timezone.now()
    record.save(update_fields=["outcomes", "finished_at"])
    return outcomes
