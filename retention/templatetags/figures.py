"""Template filters for figures: `{% load figures %}` then `{{ value|figure:key }}`,
`{{ change|figure_change:key }}`, `{{ value|money }}`, `{{ n|count }}`, `{{ rate|percent }}`,
`{{ key|metric_label }}` and `{{ status|target_sentence }}` (retention.formatting)."""

from django import template

from retention import formatting
from retention.figures import registry, spec
from retention.figures.models import Target

register = template.Library()


@register.filter
def figure(value, key: str) -> str:
    return formatting.figure(value, registry.unit(key))


@register.filter
def figure_change(value, key: str) -> str:
    return formatting.change(value, registry.unit(key))


@register.filter
def metric_label(key: str) -> str:
    return registry.label(key)


@register.filter
def segment_label(name: str) -> str:
    return spec.SEGMENT_LABELS.get(name, str(name).replace("_", " ").capitalize())


@register.filter
def words(code) -> str:
    """A stored code as words: "paid_search" -> "Paid search" (segments have their names)."""
    text = str(code)
    if text in spec.SEGMENT_LABELS:
        return spec.SEGMENT_LABELS[text]
    return text.replace("_", " ")[:1].upper() + text.replace("_", " ")[1:]


register.filter("money", formatting.money)
register.filter("count", formatting.count)
register.filter("percent", formatting.percent)


def _day(value) -> str:
    return f"{value.day} {value:%b %Y}"


def _span(period) -> str:
    start, end = period
    return _day(start) if start == end else f"{_day(start)} – {_day(end)}"


def _goal(target: Target) -> str:
    if target.kind == Target.Kind.CHANGE:
        low, high = (formatting.change(value, formatting.NUMBER) for value in (target.low, target.high))
        return f"{low} % to {high} % on the previous quarter"
    if target.kind == Target.Kind.POINTS:
        low, high = (formatting.change(value, formatting.NUMBER) for value in (target.low, target.high))
        return f"{low} to {high} points on the previous quarter"
    unit = registry.unit(target.metric)
    return f"{formatting.figure(target.low, unit)} to {formatting.figure(target.high, unit)}"


@register.filter
def target_sentence(status: dict) -> str:
    """"Goal: +5 % to +10 % on the previous quarter — behind: +1.7 % so far, 1 Oct – 3 Dec
    2026 against 1 Jul – 1 Sep 2026": the goal, where the quarter stands, and what it compares."""
    target, evaluation = status["target"], status["evaluation"]
    text = f"Goal: {_goal(target)}"
    if evaluation.result is None:
        return f"{text} — {evaluation.status}"
    if target.kind == Target.Kind.CHANGE:
        result = formatting.change(evaluation.result, formatting.NUMBER) + " %"
    elif target.kind == Target.Kind.POINTS:
        result = formatting.change(evaluation.result, formatting.NUMBER) + " points"
    else:
        result = formatting.figure(evaluation.result, registry.unit(target.metric))
    text += f" — {evaluation.status}: {result}{'' if evaluation.final else ' so far'}"
    if evaluation.period:
        text += f", {_span(evaluation.period)}"
        if evaluation.previous_period:
            text += f" against {_span(evaluation.previous_period)}"
    return text
