"""Figures as a person reads them: thousands separators, the currency, % on rates.

Babel formats by RETENTION_LOCALE (e.g. `en`: 1,234.5 and ZAR1,234.50; `en_ZA`: 1 234,5
and R1 234,50). Only the pages use this; CSV exports and the API keep plain numbers for
machines. None, a figure with nothing to divide by, is shown as "—".
"""

from decimal import Decimal

from babel.numbers import format_currency, format_decimal
from django.conf import settings

NONE = "—"
COUNT, PERCENT, MONEY, NUMBER, SCORE = "count", "percent", "money", "number", "score"


def _locale() -> str:
    return settings.RETENTION_LOCALE


def count(value) -> str:
    return NONE if value is None else format_decimal(Decimal(value), "#,##0", locale=_locale())


def number(value, pattern: str = "#,##0.##") -> str:
    return NONE if value is None else format_decimal(Decimal(value), pattern, locale=_locale())


def money(value) -> str:
    if value is None:
        return NONE
    return format_currency(Decimal(value), settings.RETENTION_CURRENCY, locale=_locale())


def percent(value) -> str:
    return NONE if value is None else f"{number(value, '#,##0.#')} %"


def figure(value, unit: str) -> str:
    """A figure in its unit: a count, a percentage, money, a score or a plain number."""
    if unit == COUNT:
        return count(value)
    if unit == PERCENT:
        return percent(value)
    if unit == MONEY:
        return money(value)
    if unit == SCORE:
        return number(value, "#,##0.#")
    return number(value)


def _signed(text: str, value) -> str:
    return text if Decimal(value) < 0 or text.startswith(("+", "-", "−")) else "+" + text


def change(value, unit: str) -> str:
    """A difference between two figures: signed; a rate's difference is in points."""
    if value is None:
        return NONE
    if unit == PERCENT:
        return _signed(number(value, "#,##0.#"), value) + " points"
    return _signed(figure(value, unit), value)
