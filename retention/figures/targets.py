"""Quarter targets: their result and status, as shared/spec/metrics.md ("Targets") says.

A target belongs to one metric, one calendar quarter and optionally a subset,
and is one of:
- change: the quarter's value against the previous quarter's, as a relative
  change in percent, within [low, high];
- points: the same as a difference in points;
- value: the quarter's value within [low, high].

After the quarter a target is met (in range), exceeded (past the range in the
better direction) or missed. During it, the quarter-to-date figure is compared
with the same number of days from the start of the previous quarter: on track
when it already meets the range's near bound (low when higher is better, high
when lower is better), behind otherwise. Before the quarter, not started.
A figure that cannot be computed (a ratio over nothing) gives "no data".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from retention.figures import metrics, snapshots, spec
from retention.figures.models import Target
from retention.money import from_json, growth, money
from retention.periods import previous_quarter, quarter_bounds


class Status:
    MET, EXCEEDED, MISSED = "met", "exceeded", "missed"
    ON_TRACK, BEHIND = "on track", "behind"
    NOT_STARTED, NO_DATA = "not started", "no data"


@dataclass(frozen=True)
class Evaluation:
    status: str
    result: Decimal | None  # the change, the points or the value the range is about
    figure: Decimal | None  # the metric over `period`
    previous_figure: Decimal | None  # over `previous_period` (change and points)
    period: tuple[date, date] | None
    previous_period: tuple[date, date] | None
    final: bool  # the quarter is over


def figures_for(target: Target) -> Callable[[date, date], dict]:
    """The metric engine, restricted to the target's subset."""
    subset = metrics.Subset(source=target.source, customer_type=target.customer_type,
                            category=target.category)
    return lambda start, end: metrics.compute(start, end, subset=subset)


def stored_figures(target: Target, cache: dict) -> Callable[[date, date], dict]:
    """The figures of the target's subset read through the stored snapshots (computed and
    stored on a first read), as Decimals; `cache` is one request's memory of the change log."""
    subset = metrics.Subset(source=target.source, customer_type=target.customer_type,
                            category=target.category)
    return lambda start, end: from_json(snapshots.figures(start, end, subset=subset, cache=cache))


def cached_figures(target: Target, cache: dict) -> Callable[[date, date], dict]:
    """The engine for the target's subset, remembering figures in `cache` (one request's):
    the targets of a quarter share their periods, so each period is computed once."""
    engine = figures_for(target)
    subset = (target.source, target.customer_type, target.category)

    def figures(start: date, end: date) -> dict:
        if (subset, start, end) not in cache:
            cache[subset, start, end] = engine(start, end)
        return cache[subset, start, end]

    return figures


def evaluate(target: Target, *, today: date, figures: Callable[[date, date], dict] | None = None
             ) -> Evaluation:
    """Return the target's status on `today`; `figures(start, end)` gives the metrics."""
    figures = figures or figures_for(target)
    first, last = quarter_bounds(target.year, target.quarter)
    if today < first:
        return Evaluation(Status.NOT_STARTED, None, None, None, None, None, final=False)
    final = today > last
    period = (first, last if final else today)
    previous_first, previous_last = quarter_bounds(*previous_quarter(target.year, target.quarter))
    if not final:  # the same number of days from the start of the previous quarter
        previous_last = previous_first + (period[1] - period[0])
    previous_period = (previous_first, previous_last)

    figure = figures(*period)[target.metric]
    previous_figure = None
    if target.kind == Target.Kind.VALUE:
        result = figure
        previous_period = None
    else:
        previous_figure = figures(*previous_period)[target.metric]
        result = _compare(target.kind, figure, previous_figure)
    status = Status.NO_DATA if result is None else _status(target, Decimal(result), final=final)
    return Evaluation(status, result, figure, previous_figure, period, previous_period, final)


def _compare(kind: str, figure, previous) -> Decimal | None:
    if figure is None or previous is None:
        return None
    figure, previous = Decimal(figure), Decimal(previous)
    if kind == Target.Kind.POINTS:
        return money(figure - previous)
    return growth(figure, previous)


def _status(target: Target, result: Decimal, *, final: bool) -> str:
    better_high = spec.higher_is_better(target.metric)
    if not final:
        near_bound_met = result >= target.low if better_high else result <= target.high
        return Status.ON_TRACK if near_bound_met else Status.BEHIND
    if target.low <= result <= target.high:
        return Status.MET
    past = result > target.high if better_high else result < target.low
    return Status.EXCEEDED if past else Status.MISSED


# The business's current plan (spec "Targets"), loaded by seed_demo.
PLAN = [
    ("retention_rate", Target.Kind.CHANGE, "5", "10", "Retention rate up 5-10 %"),
    ("repeat_purchase_rate", Target.Kind.CHANGE, "10", "15", "Repeat purchases up 10-15 %"),
    ("new_offering_engagement_rate", Target.Kind.VALUE, "20", "25",
     "20-25 % of existing customers take up a new course or bundle"),
    ("nps", Target.Kind.VALUE, "40", "50", "NPS of 40 to 50"),
    ("churn_rate", Target.Kind.CHANGE, "-7", "-5", "Churn down 5-7 %"),
    ("clv_simple", Target.Kind.CHANGE, "10", "12", "Lifetime value up 10-12 %"),
]


def load_plan(year: int, quarter: int) -> list[Target]:
    """Create the plan's six targets for a quarter (existing ones are left alone)."""
    return [
        Target.objects.get_or_create(
            metric=metric, year=year, quarter=quarter, kind=kind, source="", customer_type="",
            category="", defaults={"low": Decimal(low), "high": Decimal(high), "note": note},
        )[0]
        for metric, kind, low, high, note in PLAN
    ]
