"""Figures that an area or an app counts from its own data, registered into the period metrics.

The metrics engine (retention.figures.metrics) counts the main pass itself: activity,
purchases, revenue and the lifetime value of the spec. Every other figure comes from the
part that owns its data and registers it here from `AppConfig.ready()`: retention's
memberships (MRR), new-offering engagement and referrals, value's predicted lifetime
value, and the programs' figures (NPS, CSAT and the response rate from surveys, say).
A spec key that nobody registers is null in every answer.

    from retention.figures import Figures, register_figures

    register_figures(Figures(
        name="surveys.nps", keys=("nps", "nps_responses"),
        count=lambda scope: count_answers(scope.bounds, scope.customers),
        finish=lambda counted, figures: {"nps": …, "nps_responses": counted["n"]},
    ))

`count(scope)` runs beside the main pass, in the same database snapshot (on PostgreSQL on
a second connection): it reads what it needs for the period and the subset and returns a
dict. `finish(counted, figures)` then turns that into the figures of its keys, with the
main pass's figures at hand (S, E, …: a rate over the customers active at the end needs
E); without `finish`, `count` returns the figures themselves. A registration may add
keys beyond the spec (with a one-line definition each), which every answer then carries
after the spec's; it may take over another registration's keys with `replaces`.

This module holds only the registry, so that models and the engine may both read it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured

from retention.figures import spec

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from retention.figures.counting import Bounds
    from retention.figures.metrics import Options
    from retention.periods import Period


@dataclass
class Scope:
    """What is being counted: the period, its options (windows, subset) and the moments its
    windows start and end at, and the subset's customers (None: everyone).

    `notes` is what a registration adds to the answer's `period` object (which stored
    predictions a figure read, say); counts go in the figures, not here.
    """

    period: Period
    options: Options
    bounds: Bounds
    customers: QuerySet | None
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Figures:
    """A group of figures one part counts: their keys, how it counts them, and (for keys
    beyond the spec) what each means."""

    name: str  # "<app or area>.<what>", e.g. "value.predicted_clv"
    keys: tuple[str, ...]
    count: Callable[[Scope], dict]
    finish: Callable[[dict, dict], dict] | None = None
    definitions: dict[str, str] = field(default_factory=dict, hash=False)
    # For keys beyond the spec: their names in words and units (spec.UNITS' values); a key
    # without a label is shown as its name, without a unit as a plain number.
    labels: dict[str, str] = field(default_factory=dict, hash=False)
    units: dict[str, str] = field(default_factory=dict, hash=False)
    replaces: tuple[str, ...] = ()  # names of registrations whose keys this one takes over


REGISTERED: list[Figures] = []


def register_figures(figures: Figures) -> None:
    """Add a group of figures to every computation of the period metrics.

    Registering the same group again changes nothing (`ready()` may run twice). A key that
    another registration provides is refused unless `replaces` names it; a key beyond the
    spec needs its definition.
    """
    if figures in REGISTERED:
        return
    if any(other.name == figures.name for other in REGISTERED):
        raise ImproperlyConfigured(f"figures {figures.name!r} are registered already")
    for key in figures.keys:
        if key not in spec.KEYS and key not in figures.definitions:
            raise ImproperlyConfigured(
                f"figures {figures.name!r}: {key!r} is not a key of the spec, so it needs a "
                "definition")
        owner = provider_of(key)
        if owner is not None and owner.name not in figures.replaces:
            raise ImproperlyConfigured(
                f"figures {figures.name!r}: {key!r} is counted by {owner.name!r} already "
                f"(name it in `replaces` to take it over)")
    REGISTERED.append(figures)


def active() -> list[Figures]:
    """The registrations in force, in the order they were made (none that another replaced)."""
    replaced = {name for figures in REGISTERED for name in figures.replaces}
    return [figures for figures in REGISTERED if figures.name not in replaced]


def provider_of(key: str) -> Figures | None:
    return next((figures for figures in active() if key in figures.keys), None)


def keys() -> tuple[str, ...]:
    """Every key an answer carries: the spec's, then those registrations add."""
    extra = [key for figures in active() for key in figures.keys if key not in spec.KEYS]
    return (*spec.KEYS, *extra)


def definitions() -> dict[str, str]:
    """The one-line definition of every key (the spec's, then the registrations')."""
    found = dict(spec.DEFINITIONS)
    for figures in active():
        for key, text in figures.definitions.items():
            found.setdefault(key, text)
    return found


def _described(key: str, spec_values: dict, attribute: str):
    """`key`'s entry in the spec's `spec_values`, else in a registration's `attribute`."""
    if key in spec_values:
        return spec_values[key]
    return next((getattr(figures, attribute)[key] for figures in active()
                 if key in getattr(figures, attribute)), None)


def label(key: str) -> str:
    """What the pages call `key`: the spec's name, a registration's, or the key in words."""
    return _described(key, spec.LABELS, "labels") or key.replace("_", " ").capitalize()


def unit(key: str) -> str:
    """How `key`'s figure reads (spec.COUNT, PERCENT, MONEY, NUMBER or SCORE)."""
    return _described(key, spec.UNITS, "units") or spec.NUMBER


def count_all(scope: Scope) -> dict[str, dict]:
    """Run every registration's `count` (beside the main pass); return their counts by name."""
    return {figures.name: figures.count(scope) for figures in active()}


def finish_all(counted: dict[str, dict], figures_so_far: dict) -> dict:
    """Every registered key's figure, from the counts and the main pass's figures."""
    found: dict = {}
    for figures in active():
        mine = counted[figures.name]
        values = figures.finish(mine, figures_so_far) if figures.finish else mine
        missing = set(figures.keys) - set(values)
        if missing:
            raise ImproperlyConfigured(
                f"figures {figures.name!r} gave no value for {', '.join(sorted(missing))}")
        found.update({key: values[key] for key in figures.keys})
    return found
