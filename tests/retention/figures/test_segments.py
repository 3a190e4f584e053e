"""Segments on a hand-worked set of customers (as of 31 Dec 2025; lookback the year 2025).

  IN     one order in May 2023                                   inactive
  ONE    one order, 1 Jun 2025                                   one_time
  TWO    1 Feb and 1 Sep 2025                                    two_time
  SEA    Mar 2024, 10 and 15 Mar 2025                            seasonal (March in two years)
  UNDER  four orders of 250 in 2024, one of 100 on 20 Dec 2025   under_performer
  LOYAL  six orders of 500, Jun to 30 Dec 2025                   loyalist
  RISK   four orders of 50 in January 2025                       at_risk

Scores among the six customers of the lookback, by cume_dist (k/6, then ceil(5x)):
  recency (last order) RISK 1, SEA 2, ONE 3, TWO 4, UNDER 5, LOYAL 5
  frequency            ONE and UNDER (1 order) 2, TWO and SEA (2) 4, RISK 5, LOYAL 5
  monetary             ONE and UNDER (100) 2, TWO, SEA and RISK (200) 5, LOYAL 5
"""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from retention.figures import segments
from retention.figures.models import CustomerSegment
from tests.factories import CustomerFactory, OrderFactory

pytestmark = pytest.mark.django_db
AS_OF = date(2025, 12, 31)


def orders(customer, *days_and_amounts):
    for day, amount in days_and_amounts:
        OrderFactory(customer=customer, amount=Decimal(amount),
                     ordered_at=datetime.fromisoformat(day).replace(hour=12, tzinfo=UTC))


@pytest.fixture
def customers():
    people = {name: CustomerFactory(external_id=name)
              for name in ("IN", "ONE", "TWO", "SEA", "UNDER", "LOYAL", "RISK")}
    orders(people["IN"], ("2023-05-01", "80"))
    orders(people["ONE"], ("2025-06-01", "100"))
    orders(people["TWO"], ("2025-02-01", "100"), ("2025-09-01", "100"))
    orders(people["SEA"], ("2024-03-10", "100"), ("2025-03-10", "100"), ("2025-03-15", "100"))
    orders(people["UNDER"], ("2024-01-10", "250"), ("2024-02-10", "250"), ("2024-04-10", "250"),
           ("2024-05-10", "250"), ("2025-12-20", "100"))
    orders(people["LOYAL"], *[(f"2025-{month:02d}-05", "500") for month in range(6, 11)],
           ("2025-12-30", "500"))
    orders(people["RISK"], *[(f"2025-01-{day:02d}", "50") for day in (5, 6, 12, 20)])
    return people


def stored(on=AS_OF):
    return {row.customer.external_id: row
            for row in CustomerSegment.objects.filter(snapshot_on=on).select_related("customer")}


def test_every_customer_gets_the_segment_of_the_first_rule_that_holds(customers):
    sizes = segments.snapshot(AS_OF)

    rows = stored()
    assert {name: row.segment for name, row in rows.items()} == {
        "IN": "inactive", "ONE": "one_time", "TWO": "two_time", "SEA": "seasonal",
        "UNDER": "under_performer", "LOYAL": "loyalist", "RISK": "at_risk",
    }
    assert sizes == {"inactive": 1, "one_time": 1, "two_time": 1, "loyalist": 1,
                     "under_performer": 1, "seasonal": 1, "at_risk": 1, "promising": 0, "regular": 0}


def test_scores_are_quintiles_and_equal_values_score_equally(customers):
    segments.snapshot(AS_OF)

    scores = {name: (row.recency_score, row.frequency_score, row.monetary_score)
              for name, row in stored().items()}
    assert scores == {
        "IN": (None, None, None),
        "ONE": (3, 2, 2), "TWO": (4, 4, 5), "SEA": (2, 4, 5), "UNDER": (5, 2, 2),
        "LOYAL": (5, 5, 5), "RISK": (1, 5, 5),
    }
    loyal = stored()["LOYAL"]
    assert (loyal.recency_days, loyal.frequency, loyal.monetary) == (1, 6, Decimal("3000.00"))
    assert stored()["IN"].recency_days == (AS_OF - date(2023, 5, 1)).days


def test_a_snapshot_can_be_taken_again(customers):
    segments.snapshot(AS_OF)
    segments.snapshot(AS_OF)

    assert CustomerSegment.objects.filter(snapshot_on=AS_OF).count() == 7


def test_orders_after_the_date_count_nowhere(customers):
    segments.snapshot(date(2024, 12, 31))

    rows = stored(date(2024, 12, 31))
    assert "ONE" not in rows and "LOYAL" not in rows  # no paid order yet
    assert rows["UNDER"].frequency == 4 and rows["IN"].segment == "inactive"


def test_the_migration_matrix_counts_moves_and_the_revenue_at_stake(customers):
    segments.snapshot(date(2025, 6, 30))
    segments.snapshot(AS_OF)

    moves = {(row["from"], row["to"]): row for row in segments.migration(date(2025, 6, 30), AS_OF)}

    # LOYAL had one order by 30 Jun (one_time), and 500 of revenue in the year before.
    assert moves[("one_time", "loyalist")] == {
        "from": "one_time", "to": "loyalist", "customers": 1, "revenue": Decimal("500.00")}
    assert sum(row["customers"] for row in moves.values()) == 7
    assert all(row["from"] != "new" for row in moves.values())  # everyone had ordered by June


def test_metrics_of_a_segment_follow_the_customers_in_it_at_the_start(customers, api_client):
    from retention.figures import metrics

    segments.snapshot(date(2025, 6, 30))

    one_time = metrics.compute(date(2025, 7, 1), date(2025, 12, 31),
                            subset=metrics.Subset(segment="one_time"))

    # one_time on 30 Jun: ONE, TWO and LOYAL; in the second half of 2025 LOYAL bought five
    # times and TWO once.
    assert (one_time["buyers"], one_time["orders"]) == (2, 6)
    assert one_time["period"]["subset"] == {"segment": "one_time", "segment_on": "2025-06-30"}
    response = api_client.get("/api/v1/metrics/", {"start": "2025-07-01", "end": "2025-12-31",
                                                    "segment": "one_time"})
    assert response.status_code == 200 and response.json()["orders"] == 6
    assert api_client.get("/api/v1/metrics/segments/", {"on": "2025-06-30"}).json()["segments"][
        "one_time"] == 3
    moves = api_client.get("/api/v1/metrics/migration/",
                           {"first": "2025-06-30", "second": "2025-06-30"}).json()["moves"]
    assert sum(move["customers"] for move in moves) == 7


def test_a_segment_without_a_snapshot_is_explained(customers):
    from retention.figures import metrics

    with pytest.raises(metrics.InvalidPeriod, match="no segment snapshot on or before 2025-07-01"):
        metrics.compute(date(2025, 7, 1), date(2025, 9, 30), subset=metrics.Subset(segment="loyalist"))


def test_the_revenue_at_stake_is_read_from_the_same_days_as_the_segments():
    """The revenue of a move counts the 365 days up to and including the first date, the
    days the first date's segments were read from: an inactive customer has none."""
    first, second = date(2025, 6, 30), AS_OF
    lapsed = CustomerFactory(external_id="LAPSED")
    orders(lapsed, ("2024-06-30", "80"), ("2024-05-01", "20"))  # 365 and more days before
    today = CustomerFactory(external_id="TODAY")
    orders(today, ("2025-06-30", "70"), ("2024-07-01", "30"))  # the first date, and day 365
    segments.snapshot(first)
    segments.snapshot(second)

    moves = {(row["from"], row["to"]): row for row in segments.migration(first, second)}

    assert CustomerSegment.objects.get(customer=lapsed, snapshot_on=first).segment == "inactive"
    assert moves[("inactive", "inactive")]["revenue"] == Decimal("0.00")
    assert moves[("two_time", "two_time")]["revenue"] == Decimal("100.00")
