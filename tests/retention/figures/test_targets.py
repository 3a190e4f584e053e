"""Target statuses on hand-worked quarters, for each kind and direction (spec "Targets")."""

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from retention.figures import targets
from retention.figures.models import Target
from retention.figures.targets import Status

pytestmark = pytest.mark.django_db


def figures_by_period(table: dict):
    """A stand-in for the metric engine: {(start, end): {metric: value}}."""
    def figures(start, end):
        return table[(start, end)]
    return figures


Q3 = (date(2025, 7, 1), date(2025, 9, 30))
Q2 = (date(2025, 4, 1), date(2025, 6, 30))


def target(metric, kind, low, high, year=2025, quarter=3):
    return Target(metric=metric, kind=kind, low=Decimal(low), high=Decimal(high), year=year,
                  quarter=quarter)


@pytest.mark.parametrize(
    ("q2", "q3", "status", "result"),
    [
        ("40.00", "43.00", Status.MET, "7.50"),  # +7.5 % is within +5 to +10
        ("40.00", "42.00", Status.MET, "5.00"),  # the bound itself is met
        ("40.00", "45.00", Status.EXCEEDED, "12.50"),  # past the range, in the better direction
        ("40.00", "41.00", Status.MISSED, "2.50"),
        ("40.00", "38.00", Status.MISSED, "-5.00"),
    ],
)
def test_a_change_target_after_the_quarter_higher_is_better(q2, q3, status, result):
    evaluation = targets.evaluate(
        target("retention_rate", "change", "5", "10"), today=date(2025, 10, 2),
        figures=figures_by_period({Q3: {"retention_rate": Decimal(q3)},
                                   Q2: {"retention_rate": Decimal(q2)}}),
    )

    assert (evaluation.status, evaluation.result) == (status, Decimal(result))
    assert evaluation.final and evaluation.period == Q3 and evaluation.previous_period == Q2


@pytest.mark.parametrize(
    ("q2", "q3", "status"),
    [
        ("20.00", "18.80", Status.MET),  # -6 %: churn down 5-7 %
        ("20.00", "18.00", Status.EXCEEDED),  # -10 %: lower is better for churn
        ("20.00", "19.50", Status.MISSED),  # -2.5 %
        ("20.00", "22.00", Status.MISSED),  # churn went up
    ],
)
def test_a_churn_target_counts_lower_as_better(q2, q3, status):
    evaluation = targets.evaluate(
        target("churn_rate", "change", "-7", "-5"), today=date(2026, 1, 15),
        figures=figures_by_period({Q3: {"churn_rate": Decimal(q3)}, Q2: {"churn_rate": Decimal(q2)}}),
    )

    assert evaluation.status == status


@pytest.mark.parametrize(
    ("value", "status"),
    [("45.0", Status.MET), ("52.5", Status.EXCEEDED), ("39.9", Status.MISSED)],
)
def test_a_value_target_looks_at_the_quarter_alone(value, status):
    evaluation = targets.evaluate(
        target("nps", "value", "40", "50"), today=date(2025, 12, 31),
        figures=figures_by_period({Q3: {"nps": Decimal(value)}}),
    )

    assert evaluation.status == status and evaluation.previous_period is None


def test_a_points_target_is_a_difference():
    evaluation = targets.evaluate(
        target("repeat_customer_share", "points", "2", "4"), today=date(2025, 10, 1),
        figures=figures_by_period({Q3: {"repeat_customer_share": Decimal("33.50")},
                                   Q2: {"repeat_customer_share": Decimal("30.00")}}),
    )

    assert (evaluation.status, evaluation.result) == (Status.MET, Decimal("3.50"))


def test_during_the_quarter_it_compares_the_same_number_of_days():
    """On 10 Aug (41 days into Q3) against 1 Apr to 11 May (41 days into Q2)."""
    qtd, previous = (date(2025, 7, 1), date(2025, 8, 10)), (date(2025, 4, 1), date(2025, 5, 11))
    table = {qtd: {"retention_rate": Decimal("42.00"), "churn_rate": Decimal("19.60")},
             previous: {"retention_rate": Decimal("40.00"), "churn_rate": Decimal("20.00")}}

    up = targets.evaluate(target("retention_rate", "change", "5", "10"), today=date(2025, 8, 10),
                          figures=figures_by_period(table))
    churn = targets.evaluate(target("churn_rate", "change", "-7", "-5"), today=date(2025, 8, 10),
                             figures=figures_by_period(table))

    assert (up.status, up.result, up.period, up.previous_period) == (
        Status.ON_TRACK, Decimal("5.00"), qtd, previous)
    assert not up.final
    assert (churn.status, churn.result) == (Status.BEHIND, Decimal("-2.00"))  # needs <= -5


def test_before_the_quarter_nothing_is_computed():
    evaluation = targets.evaluate(target("nps", "value", "40", "50"), today=date(2025, 6, 30),
                                  figures=lambda start, end: pytest.fail("computed"))

    assert evaluation.status == Status.NOT_STARTED


def test_a_figure_over_nothing_gives_no_data():
    evaluation = targets.evaluate(
        target("retention_rate", "change", "5", "10"), today=date(2025, 10, 1),
        figures=figures_by_period({Q3: {"retention_rate": Decimal("40")}, Q2: {"retention_rate": None}}),
    )

    assert evaluation.status == Status.NO_DATA and evaluation.result is None


def test_with_the_real_engine_an_empty_database_has_no_data():
    evaluation = targets.evaluate(target("retention_rate", "change", "5", "10"),
                                  today=date(2025, 10, 1))

    assert evaluation.status == Status.NO_DATA


def test_the_plan_loads_the_six_targets_once():
    targets.load_plan(2026, 4)
    targets.load_plan(2026, 4)

    assert sorted(Target.objects.values_list("metric", "kind", "low", "high")) == sorted([
        ("retention_rate", "change", Decimal("5.00"), Decimal("10.00")),
        ("repeat_purchase_rate", "change", Decimal("10.00"), Decimal("15.00")),
        ("new_offering_engagement_rate", "value", Decimal("20.00"), Decimal("25.00")),
        ("nps", "value", Decimal("40.00"), Decimal("50.00")),
        ("churn_rate", "change", Decimal("-7.00"), Decimal("-5.00")),
        ("clv_simple", "change", Decimal("10.00"), Decimal("12.00")),
    ])


def test_a_range_must_run_upwards_and_name_a_metric():
    with pytest.raises(ValidationError):
        target("not_a_metric", "value", "1", "2").full_clean()
    with pytest.raises(IntegrityError):
        target("nps", "value", "50", "40").save()
