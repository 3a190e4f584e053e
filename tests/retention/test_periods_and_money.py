"""The leaf modules every area shares: calendar arithmetic and the one rounding."""

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from hypothesis import given
from hypothesis import strategies as st

from retention import money, periods


@pytest.mark.parametrize(("day", "expected"), [
    (date(2026, 1, 1), (date(2026, 1, 1), (2026, 1))),
    (date(2026, 3, 31), (date(2026, 1, 1), (2026, 1))),
    (date(2026, 4, 1), (date(2026, 4, 1), (2026, 2))),
    (date(2026, 8, 17), (date(2026, 7, 1), (2026, 3))),
    (date(2026, 12, 31), (date(2026, 10, 1), (2026, 4))),
])
def test_a_day_belongs_to_its_calendar_quarter(day, expected):
    assert (periods.quarter_start(day), periods.quarter_of(day)) == expected


def test_quarter_bounds_and_the_quarter_before_cross_years():
    assert periods.quarter_bounds(2024, 1) == (date(2024, 1, 1), date(2024, 3, 31))
    assert periods.quarter_bounds(2024, 4) == (date(2024, 10, 1), date(2024, 12, 31))
    assert periods.previous_quarter(2025, 1) == (2024, 4)
    assert periods.previous_quarter(2025, 3) == (2025, 2)
    assert periods.quarter_label(date(2025, 5, 5)) == "2025 Q2"


def test_months_keep_their_day_where_the_month_has_it():
    assert periods.add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert periods.add_months(date(2023, 1, 31), 1) == date(2023, 2, 28)
    assert periods.add_months(date(2024, 3, 15), -3) == date(2023, 12, 15)
    assert periods.month_end(date(2024, 2, 10)) == date(2024, 2, 29)
    assert periods.months_between(date(2025, 11, 20), date(2026, 2, 1)) == [
        (2025, 11), (2025, 12), (2026, 1), (2026, 2)]
    assert periods.months_before(date(2026, 3, 14), 2) == [
        (date(2026, 1, 1), date(2026, 1, 31)), (date(2026, 2, 1), date(2026, 2, 28))]
    assert periods.month_ends_before(date(2026, 3, 14), 2) == [date(2026, 1, 31), date(2026, 2, 28)]
    assert periods.last_month_end(date(2026, 3, 31)) == date(2026, 3, 31)
    assert periods.last_month_end(date(2026, 3, 30)) == date(2026, 2, 28)


def test_midnight_is_in_the_business_zone(settings):
    settings.TIME_ZONE = "Africa/Johannesburg"
    assert periods.midnight(date(2026, 6, 1)) == datetime(
        2026, 5, 31, 22, 0, tzinfo=ZoneInfo("UTC"))


@time_machine.travel(datetime(2026, 7, 1, 0, 30, tzinfo=ZoneInfo("UTC")), tick=False)
def test_the_last_complete_day_is_yesterday_in_the_business_zone(settings):
    settings.TIME_ZONE = "UTC"
    assert periods.last_complete_day() == date(2026, 6, 30)
    settings.TIME_ZONE = "America/New_York"  # still the evening of 30 June there
    assert periods.last_complete_day() == date(2026, 6, 29)


@pytest.mark.parametrize(("start", "end", "previous"), [
    ((2026, 7, 1), (2026, 9, 30), ((2026, 4, 1), (2026, 6, 30))),  # a quarter
    ((2026, 3, 1), (2026, 3, 31), ((2026, 2, 1), (2026, 2, 28))),  # a month
    ((2025, 1, 1), (2025, 12, 31), ((2024, 1, 1), (2024, 12, 31))),  # a year
    ((2026, 2, 1), (2026, 3, 31), ((2025, 12, 4), (2026, 1, 31))),  # two months: 59 days back
    ((2026, 7, 1), (2026, 8, 15), ((2026, 5, 16), (2026, 6, 30))),  # quarter to date: 46 days
])
def test_the_previous_period_follows_the_spec(start, end, previous):
    found = periods.Period(date(*start), date(*end)).previous()
    assert (found.start, found.end) == (date(*previous[0]), date(*previous[1]))


@given(st.dates(min_value=date(1950, 1, 1), max_value=date(2900, 1, 1)), st.integers(0, 400))
def test_a_previous_period_ends_the_day_before_and_is_never_longer(start, length):
    period = periods.Period(start, date.fromordinal(start.toordinal() + length))
    previous = period.previous()
    assert previous.end.toordinal() == start.toordinal() - 1
    assert previous.days <= max(period.days, 31 * 12)


@pytest.mark.parametrize(("value", "places", "expected"), [
    ("2.345", 2, "2.35"), ("-2.345", 2, "-2.35"), ("2.344999", 2, "2.34"),
    ("0.05", 1, "0.1"), ("-0.05", 1, "-0.1"), ("1499.5", 0, "1500"),
])
def test_rounding_is_half_away_from_zero(value, places, expected):
    assert money.round_half_up(Decimal(value), places) == Decimal(expected)


def test_a_float_is_read_as_it_prints():
    # Decimal(2.675) is 2.67499999…; read as it prints, 2.675 rounds up.
    assert money.money(2.675) == Decimal("2.68")
    assert money.money(None) == Decimal("0.00")


def test_ratios_over_nothing_are_none_and_rates_are_percentages():
    assert money.rate(1, 3) == Decimal("33.33")
    assert money.rate(2, 3) == Decimal("66.67")
    assert money.rate(5, 0) is None and money.ratio(5, 0) is None and money.growth(5, 0) is None
    assert money.ratio(10, 4) == Decimal("2.50")
    assert money.growth(90, 120) == Decimal("-25.00")
    assert money.rate(1, 7, places=1) == Decimal("14.3")


def test_json_gives_numbers_for_decimals_and_text_for_dates():
    data = {"revenue": Decimal("12.50"), "on": date(2026, 1, 2), "cells": (Decimal("1.10"), None)}
    assert money.as_json(data) == {"revenue": 12.5, "on": "2026-01-02", "cells": [1.1, None]}
    assert money.dumps({"a": Decimal("0.10")}) == '{"a": 0.1}'
