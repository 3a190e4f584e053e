"""Rounding, rates and JSON for money and figures: the one place they are decided.

The spec rounds half away from zero (Decimal's ROUND_HALF_UP), from exact values, once,
at the end: money to 2 decimals, rates (percentages 0-100) to 2, NPS to 1. A ratio
whose denominator is zero is None (JSON null), never 0 and never an error.

    rate(1, 3)               -> Decimal("33.33")
    round_half_up(Decimal("-2.345"))  -> Decimal("-2.35")
    as_json({"revenue": Decimal("12.50")}) -> {"revenue": 12.5}

Figures travel as JSON numbers (a float prints back as the same 2 decimals) and come
back as Decimals through `to_decimal`, which reads a float by its shortest repr (so
0.1 is 0.1, not the binary expansion a Decimal(0.1) would give).

A leaf module: it imports nothing of the project, so every area may use it.
"""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal

from django.core.serializers.json import DjangoJSONEncoder

CENT = Decimal("0.01")


def to_decimal(value) -> Decimal:
    """A number from the database or from JSON as a Decimal (None is 0)."""
    if value is None:
        return Decimal(0)
    if isinstance(value, float):
        return Decimal(repr(value))
    return value if isinstance(value, Decimal) else Decimal(value)


def round_half_up(value, places: int = 2) -> Decimal:
    """`value` rounded half away from zero to `places` decimals: the project's one rounding."""
    return to_decimal(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def money(value) -> Decimal:
    """An amount as money: 2 decimals, half up (None is 0)."""
    return round_half_up(value, 2)


def rate(part, whole, *, places: int = 2) -> Decimal | None:
    """part / whole as a percentage, rounded once; None when `whole` is zero or None."""
    if not whole:
        return None
    return round_half_up(to_decimal(part) * 100 / to_decimal(whole), places)


def ratio(part, whole, *, places: int = 2) -> Decimal | None:
    """part / whole, rounded once; None when `whole` is zero or None."""
    if not whole:
        return None
    return round_half_up(to_decimal(part) / to_decimal(whole), places)


def growth(now, before, *, places: int = 2) -> Decimal | None:
    """The relative change from `before` to `now` in percent; None when `before` is zero."""
    if not before:
        return None
    before = to_decimal(before)
    return round_half_up((to_decimal(now) - before) * 100 / before, places)


def from_json(figures: dict) -> dict:
    """Figures read back from JSON (floats) as the Decimals the engine gives, for display and
    sums; other values as they are."""
    return {key: to_decimal(value) if isinstance(value, float) else value
            for key, value in figures.items()}


class JSONEncoder(DjangoJSONEncoder):
    """Decimals as JSON numbers; dates, times and UUIDs as DjangoJSONEncoder writes them."""

    def default(self, o):
        if isinstance(o, Decimal):
            return float(o)
        return super().default(o)


def as_json(data):
    """`data` as JSON gives it back: Decimals become numbers, dates ISO strings, tuples lists.

    What the commands print, the API answers and stored figures hold, so that a reader of
    a stored row gets what a fresh computation returns.
    """
    return json.loads(json.dumps(data, cls=JSONEncoder))


def dumps(data, **kwargs) -> str:
    """`data` as JSON text, with the conversions of `as_json`."""
    return json.dumps(data, cls=JSONEncoder, **kwargs)
