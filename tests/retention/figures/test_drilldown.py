"""The customers behind each figure are exactly the ones it counts (the hand-worked quarter)."""

from datetime import date

import pytest

from retention.figures import drilldown, metrics, segments
from tests.retention.figures.test_metrics import EXPECTED_Q3, Q3, scenario  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db

WHO = {
    "active_start": "AB", "active_end": "ACDF", "new": "CF", "retained": "A", "churned": "B",
    "reactivated": "D", "buyers": "ACDF", "repeat_buyers": "C", "returning_buyers": "AD",
    "repeat_to_end": "ACD", "engaged": "A", "referrers": "A",
}
COUNTED_BY = {  # the figure whose count is the set's size
    "active_start": "customers_start", "active_end": "customers_end", "new": "new_customers",
    "retained": "retained_customers", "churned": "churned_customers",
    "reactivated": "reactivated_customers", "buyers": "buyers",
}


@pytest.mark.parametrize("name", sorted(WHO))
def test_each_set_holds_the_customers_its_figure_counts(scenario, name):  # noqa: F811
    found = drilldown.customers(name, *Q3)

    assert "".join(sorted(found.values_list("external_id", flat=True))) == WHO[name]
    if name in COUNTED_BY:
        assert found.count() == EXPECTED_Q3[COUNTED_BY[name]]


def test_a_subset_narrows_the_set(scenario):  # noqa: F811
    scenario["d"].acquisition_source = "partner"
    scenario["d"].save()

    found = drilldown.customers("active_end", *Q3, subset=metrics.Subset(source="partner"))

    assert list(found.values_list("external_id", flat=True)) == ["D"]


def test_a_window_override_reaches_the_list(scenario):  # noqa: F811
    # Start window 1 to 30 Jun 2025: nobody; end window September: C and D.
    found = drilldown.customers("active_end", *Q3, window_days=30)

    assert sorted(found.values_list("external_id", flat=True)) == ["C", "D"]


def test_an_unknown_set_is_refused_with_the_known_ones():
    with pytest.raises(drilldown.UnknownSet, match="unknown set 'gone'.*churned"):
        drilldown.customers("gone", *Q3)


def test_segment_moves_list_who_moved(scenario):  # noqa: F811
    first, second = date(2025, 6, 30), date(2025, 9, 30)
    segments.snapshot(first)
    segments.snapshot(second)
    moves = {(move["from"], move["to"]): move["customers"]
             for move in segments.migration(first, second)}

    for (origin, destination), count in moves.items():
        assert drilldown.moved(origin, destination, first, second).count() == count
    assert drilldown.in_segment("one_time", second).count() == segments.sizes(second)["one_time"]
