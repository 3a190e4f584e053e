"""The period metrics against figures worked out by hand from the spec.

The scenario (business zone Africa/Johannesburg, UTC+2; P = Q3 2025, 1 Jul to
30 Sep; W = 365 days, so the start window is 1 Jul 2024 to 30 Jun 2025 and the
end window 1 Oct 2024 to 30 Sep 2025):

  A  2024-08-01 100, 2025-08-15 50 (an early-access course)  active both ends: retained
  B  2024-07-01 40 (the first day of the start window)         active at start only: churned
  C  2025-07-01 00:00 200, 2025-09-30 23:59 300 (local times)  new, buys twice in P
  D  2023-01-01 60, 2025-09-01 80                              reactivated
  E  2025-08-01 refunded                                       counts nowhere
  F  2025-08-10 free (0), referred by A                        new
  G  2024-06-30 70 (the day before the start window)           active nowhere
  H  2025-10-01 00:30 local (30 Sep 22:30 UTC) 90              after P: counts nowhere
"""

import io
import json
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from retention.figures import metrics, spec
from retention.periods import Period
from retention.sales import summaries
from tests.factories import (
    CourseFactory,
    CustomerFactory,
    EnrolmentFactory,
    MembershipFactory,
    OrderFactory,
    OrderLineFactory,
    OrganisationFactory,
)

pytestmark = pytest.mark.django_db
ZONE = ZoneInfo("Africa/Johannesburg")
Q3 = (date(2025, 7, 1), date(2025, 9, 30))


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZONE)


def buy(customer, when: str, amount, *, status="paid", course=None):
    order = OrderFactory(customer=customer, ordered_at=local(when), amount=Decimal(amount),
                         status=status)
    if course:
        OrderLineFactory(order=order, position=1, course=course, price=Decimal(amount))
    return order


@pytest.fixture
def scenario(settings):
    settings.TIME_ZONE = "Africa/Johannesburg"
    old = CourseFactory(code="old", launched_on=date(2024, 1, 1))
    new = CourseFactory(code="new", launched_on=date(2025, 6, 1))  # >= 1 Jul - 90 days
    soon = CourseFactory(code="soon", launched_on=date(2025, 10, 15))  # after P: early access
    a, b, c, d, e, f, g, h = (CustomerFactory(external_id=name) for name in "ABCDEFGH")
    f.referred_by = a
    f.save()
    buy(a, "2024-08-01 12:00", "100", course=old)
    buy(a, "2025-08-15 12:00", "50", course=soon)
    buy(b, "2024-07-01 00:00", "40")
    EnrolmentFactory(customer=b, course=new, started_on=date(2025, 6, 30))  # before P
    buy(c, "2025-07-01 00:00", "200", course=old)
    buy(c, "2025-09-30 23:59", "300")
    buy(d, "2023-01-01 12:00", "60")
    buy(d, "2025-09-01 12:00", "80")
    buy(e, "2025-08-01 12:00", "75", status="refunded")
    buy(f, "2025-08-10 12:00", "0")
    buy(g, "2024-06-30 23:59", "70")
    buy(h, "2025-10-01 00:30", "90")
    # Memberships: A monthly 100 running; B yearly 1200 (MRR 100) ending in P, not
    # renewed; C monthly 50 ending in P, renewed the next day at 60.
    MembershipFactory(customer=a, interval="month", price=Decimal("100"), started_on=date(2025, 1, 1))
    MembershipFactory(customer=b, interval="year", price=Decimal("1200"),
                      started_on=date(2024, 9, 1), ended_on=date(2025, 8, 31), auto_renew=False)
    MembershipFactory(customer=c, interval="month", price=Decimal("50"),
                      started_on=date(2025, 6, 1), ended_on=date(2025, 7, 31))
    MembershipFactory(customer=c, interval="month", price=Decimal("60"), started_on=date(2025, 8, 1))
    summaries.refresh()
    return locals()


EXPECTED_Q3 = {
    "customers_start": 2,  # A, B
    "customers_end": 4,  # A, C, D, F
    "new_customers": 2,  # C (00:00 local on the first day), F
    "retained_customers": 1,  # A
    "reactivated_customers": 1,  # D
    "churned_customers": 1,  # B
    "retention_rate": Decimal("50.00"),
    "churn_rate": Decimal("50.00"),
    "orders": 5,  # A, C twice, D, F (free); not E (refunded) nor H (1 Oct local)
    "revenue": Decimal("630.00"),
    "buyers": 4,
    "repeat_purchase_rate": Decimal("25.00"),  # C of 4
    "repeat_customer_share": Decimal("50.00"),  # A, C, D of A B C D F G
    "returning_customer_rate": Decimal("50.00"),  # A, D of 4
    "purchase_frequency": Decimal("1.25"),
    "average_order_value": Decimal("126.00"),
    "existing_customer_revenue": Decimal("130.00"),  # A 50 + D 80
    "existing_customer_revenue_growth_rate": None,  # nothing in Q2 2025
    "historical_clv": Decimal("150.00"),  # 900 over 6 customers
    # Y = 1 Oct 2024 to 30 Sep 2025: S = A, B, G (start window from 2 Oct 2023), R = A,
    # lifetime 3 / 2 = 1.5 years; revenue 630 over 4 buyers = 157.50; × 1.5.
    "clv_simple": Decimal("236.25"),
    "predicted_clv_12m": None,
    "new_offering_engagement_rate": Decimal("50.00"),  # A (early access) of A, B
    "nps": None, "nps_responses": None, "csat": None, "survey_response_rate": None,
    "referral_rate": Decimal("25.00"),  # A referred F, new in P; of E = 4
    "mrr_start": Decimal("250.00"),  # A 100 + B 1200/12 + C 50
    "mrr_churned": Decimal("100.00"),  # B; C renewed
    "mrr_churn_rate": Decimal("40.00"),
    "net_mrr_retention": Decimal("64.00"),  # A 100 + C 60 of 250
}


def test_every_figure_of_the_hand_worked_quarter(scenario):
    figures = metrics.compute(*Q3)

    assert figures["period"] == {
        "start": "2025-07-01", "end": "2025-09-30", "days": 92,
        "previous_start": "2025-04-01", "previous_end": "2025-06-30",
        "window_days": 365, "new_offering_window_days": 90,
        "time_zone": "Africa/Johannesburg", "subset": {}, "predictions": None,
    }
    assert {key: figures[key] for key in spec.KEYS} == EXPECTED_Q3


@pytest.mark.django_db(transaction=True)
def test_counting_on_two_connections_gives_the_figures_of_one(scenario, settings):
    """On PostgreSQL outside a transaction, the smaller figures are counted on a second
    connection that imports the first one's snapshot; the figures are the same."""
    if connection.vendor != "postgresql":
        pytest.skip("the second connection is PostgreSQL's (pg_export_snapshot)")
    assert not connection.in_atomic_block
    settings.RETENTION_METRICS_PARALLEL = True
    together = metrics.compute(*Q3)
    settings.RETENTION_METRICS_PARALLEL = False
    alone = metrics.compute(*Q3)

    assert {key: together[key] for key in spec.KEYS} == EXPECTED_Q3
    assert together == alone


def test_existing_customer_revenue_growth_compares_with_the_previous_quarter(scenario):
    buy(scenario["a"], "2025-05-10 12:00", "65")  # Q2: A is existing (first order 2024)
    buy(scenario["c"], "2025-06-30 23:00", "500")  # Q2: C's first order, so not existing in Q2
    summaries.refresh()

    figures = metrics.compute(*Q3)

    # Q3 existing: A 50 + C 200 + C 300 + D 80 = 630 (C is existing now); Q2: A 65.
    assert figures["existing_customer_revenue"] == Decimal("630.00")
    assert figures["existing_customer_revenue_growth_rate"] == Decimal("869.23")


def test_an_empty_period_has_null_rates_and_zero_counts(settings):
    figures = metrics.compute(date(2025, 1, 1), date(2025, 3, 31))

    for key in ("customers_start", "orders", "buyers", "new_customers", "churned_customers"):
        assert figures[key] == 0
    assert figures["revenue"] == Decimal("0.00") and figures["mrr_start"] == Decimal("0.00")
    for key in ("retention_rate", "churn_rate", "repeat_purchase_rate", "average_order_value",
                "purchase_frequency", "historical_clv", "clv_simple", "referral_rate",
                "new_offering_engagement_rate", "mrr_churn_rate", "net_mrr_retention",
                "existing_customer_revenue_growth_rate"):
        assert figures[key] is None, key


def test_a_single_customer_who_never_churns_gets_the_ten_year_lifetime():
    customer = CustomerFactory()
    OrderFactory(customer=customer, ordered_at=datetime(2024, 9, 1, 12, tzinfo=ZoneInfo("UTC")),
                 amount=Decimal("100"))
    OrderFactory(customer=customer, ordered_at=datetime(2025, 8, 1, 12, tzinfo=ZoneInfo("UTC")),
                 amount=Decimal("30"))

    figures = metrics.compute(*Q3)

    assert figures["retention_rate"] == Decimal("100.00") and figures["churn_rate"] == 0
    # Y runs from 1 Oct 2024: active at its start (September), revenue in Y 30 over 1
    # buyer, no churn: the lifetime is capped at 10 years.
    assert figures["clv_simple"] == Decimal("300.00")


def test_clv_simple_is_null_when_nobody_was_active_when_its_year_began():
    customer = CustomerFactory()
    OrderFactory(customer=customer, ordered_at=datetime(2024, 12, 1, 12, tzinfo=ZoneInfo("UTC")))

    assert metrics.compute(*Q3)["clv_simple"] is None


@pytest.mark.parametrize(
    ("start", "end", "previous"),
    [
        (date(2025, 7, 1), date(2025, 9, 30), (date(2025, 4, 1), date(2025, 6, 30))),
        (date(2025, 1, 1), date(2025, 3, 31), (date(2024, 10, 1), date(2024, 12, 31))),
        (date(2025, 3, 1), date(2025, 3, 31), (date(2025, 2, 1), date(2025, 2, 28))),
        (date(2024, 3, 1), date(2024, 3, 31), (date(2024, 2, 1), date(2024, 2, 29))),
        (date(2025, 1, 1), date(2025, 12, 31), (date(2024, 1, 1), date(2024, 12, 31))),
        # Not a calendar month, quarter or year: the same number of days before.
        (date(2025, 2, 1), date(2025, 3, 31), (date(2024, 12, 4), date(2025, 1, 31))),
        (date(2025, 3, 10), date(2025, 3, 16), (date(2025, 3, 3), date(2025, 3, 9))),
        (date(2025, 2, 1), date(2025, 4, 30), (date(2024, 11, 4), date(2025, 1, 31))),  # 89 days
    ],
)
def test_the_previous_period(start, end, previous):
    assert Period(start, end).previous() == Period(*previous)


def test_a_subset_counts_only_its_customers(scenario):
    org = OrganisationFactory(external_id="ORG", sector="government", acquisition_source="partner")
    buy(org, "2025-08-01 12:00", "1000")
    summaries.refresh()

    governments = metrics.compute(*Q3, subset=metrics.Subset(customer_type="government"))
    partners = metrics.compute(*Q3, subset=metrics.Subset(source="partner"))
    buyers_of_old = metrics.compute(*Q3, subset=metrics.Subset(category="business"))

    assert (governments["buyers"], governments["revenue"], governments["new_customers"]) == (
        1, Decimal("1000.00"), 1
    )
    assert partners["orders"] == 1 and partners["customers_start"] == 0
    # The factory's courses are in category "business": A and C bought one.
    assert buyers_of_old["buyers"] == 2 and buyers_of_old["revenue"] == Decimal("550.00")
    assert governments["period"]["subset"] == {"customer_type": "government"}


def test_a_window_override_changes_who_is_active(scenario):
    figures = metrics.compute(*Q3, window_days=30)

    # Start window 1 Jun to 30 Jun 2025: nobody; end window 1 to 30 Sep 2025: C, D.
    assert (figures["customers_start"], figures["customers_end"]) == (0, 2)
    assert figures["retention_rate"] is None
    assert figures["period"]["window_days"] == 30


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window_days": 0}, "the activity window must be at least 1 day"),
        ({"subset": metrics.Subset(customer_type="alien")}, "unknown customer type 'alien'"),
    ],
)
def test_bad_requests_are_explained(kwargs, message):
    with pytest.raises(metrics.InvalidPeriod, match=message):
        metrics.compute(*Q3, **kwargs)


def test_an_end_before_the_start_is_refused():
    with pytest.raises(metrics.InvalidPeriod, match="the end 2025-06-30 is before the start"):
        metrics.compute(date(2025, 7, 1), date(2025, 6, 30))


def test_compute_metrics_json_has_every_key_of_the_spec(scenario):
    out = io.StringIO()

    call_command("compute_metrics", "--start", "2025-07-01", "--end", "2025-09-30", "--json",
                 stdout=out)

    data = json.loads(out.getvalue())
    assert set(data) == {"period", *spec.KEYS}
    assert data["retention_rate"] == 50.0 and data["revenue"] == 630.0
    assert data["clv_simple"] == 236.25 and data["nps"] is None
    assert isinstance(data["orders"], int)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", "2025-13-01", "--end", "2025-12-31"], "--start '2025-13-01' is not a date"),
        (["--start", "2025-07-01", "--end", "2025-06-01"], "is before the start"),
        (["--start", "2025-07-01", "--end", "2025-09-30", "--window-days", "0"], "at least 1 day"),
        (["--start", "2025-07-01", "--end", "2025-09-30", "--segment", "loyal"], "unknown segment"),
    ],
)
def test_compute_metrics_explains_bad_arguments(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("compute_metrics", *args, stdout=io.StringIO())


def test_the_api_returns_the_same_object_as_the_command(scenario, api_client):
    out = io.StringIO()
    call_command("compute_metrics", "--start", "2025-07-01", "--end", "2025-09-30", "--json",
                 stdout=out)

    response = api_client.get("/api/v1/metrics/", {"start": "2025-07-01", "end": "2025-09-30"})

    assert response.status_code == 200
    assert response.json() == json.loads(out.getvalue())


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": "2025-07-01", "end": "2025-06-01"}, "end"),
        ({"start": "soon", "end": "2025-06-01"}, "start"),
        ({"start": "2025-07-01", "end": "2025-09-30", "window_days": 0}, "window_days"),
        ({"start": "2025-07-01", "end": "2025-09-30", "customer_type": "alien"}, "customer_type"),
        ({"start": "2025-07-01", "end": "2025-09-30", "segment": "loyal"}, "detail"),
        ({"end": "2025-09-30"}, "start"),
    ],
)
def test_the_api_answers_bad_queries_with_400(api_client, params, field):
    response = api_client.get("/api/v1/metrics/", params)

    assert response.status_code == 400 and field in response.json()


def test_the_api_refuses_anonymous_callers(anonymous_client):
    response = anonymous_client.get("/api/v1/metrics/", {"start": "2025-07-01", "end": "2025-09-30"})

    assert response.status_code in (401, 403)


ORDERS = st.lists(
    st.tuples(st.integers(0, 5), st.integers(0, 800), st.sampled_from(["paid", "paid", "refunded"]),
              st.integers(0, 500)),
    max_size=25,
)


@hsettings(max_examples=40, deadline=None,
           suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(orders=ORDERS, window=st.integers(1, 400), length=st.integers(1, 120))
def test_invariants_hold_on_any_history(orders, window, length):
    """S, R, E and the churned follow from the orders as the spec reads (computed here in
    Python, independently of the engine's SQL); the rates from them; a subset never exceeds
    the whole."""
    from retention.sales.models import Customer, Order

    Order.objects.all().delete()
    Customer.objects.all().delete()
    people = [CustomerFactory(acquisition_source="a" if n % 2 else "b") for n in range(6)]
    for who, day, status, amount in orders:
        OrderFactory(customer=people[who], status=status, amount=Decimal(amount),
                     ordered_at=datetime(2024, 1, 1, 12, tzinfo=ZoneInfo("UTC")) + timedelta(days=day))
    start = date(2025, 1, 1)
    end = start + timedelta(days=length - 1)

    whole = metrics.compute(start, end, window_days=window)
    part = metrics.compute(start, end, window_days=window, subset=metrics.Subset(source="a"))

    first = date(2024, 1, 1)

    def active(lo: date, hi: date, who: set[int]) -> set[int]:
        """Customers of `who` with a paid order (amount 0 too) dated in [lo, hi]."""
        return {c for c, day, status, _amount in orders if status == "paid" and c in who
                and lo <= first + timedelta(days=day) <= hi}

    for figures, who in ((whole, set(range(6))), (part, {1, 3, 5})):
        at_start = active(start - timedelta(days=window), start - timedelta(days=1), who)
        at_end = active(end - timedelta(days=window - 1), end, who)
        assert figures["customers_start"] == len(at_start)
        assert figures["customers_end"] == len(at_end)
        assert figures["retained_customers"] == len(at_start & at_end)
        assert figures["churned_customers"] == len(at_start - at_end)
        if at_start:
            kept = (Decimal(100 * len(at_start & at_end)) / len(at_start)).quantize(
                Decimal("0.01"), ROUND_HALF_UP)
            assert figures["retention_rate"] == kept
            assert figures["churn_rate"] == 100 - kept  # the spec: from the rounded rate
        else:
            assert figures["retention_rate"] is None and figures["churn_rate"] is None
    for key in ("customers_start", "customers_end", "new_customers", "orders", "buyers", "revenue"):
        assert part[key] <= whole[key], key


def test_dates_out_of_any_business_range_are_refused(api_client):
    with pytest.raises(metrics.InvalidPeriod, match="the start must be on or after 1902-01-01"):
        metrics.compute(date(1, 1, 1), date(1, 3, 31))
    with pytest.raises(metrics.InvalidPeriod, match="the end must be on or before 2999-12-31"):
        metrics.compute(date(2025, 1, 1), date(3000, 1, 1))

    response = api_client.get("/api/v1/metrics/", {"start": "0001-01-01", "end": "0001-02-01"})

    assert response.status_code == 400


def test_a_third_retained_gives_33_33_and_its_churn_66_67():
    """Three customers active at the start (orders in August 2024, inside Q3 2025's start
    window and outside its end window), one of them buying again in Q3."""
    buyers = [CustomerFactory() for _ in range(3)]
    for customer in buyers:
        OrderFactory(customer=customer, ordered_at=datetime(2024, 8, 1, 12, tzinfo=ZoneInfo("UTC")))
    OrderFactory(customer=buyers[0], ordered_at=datetime(2025, 8, 1, 12, tzinfo=ZoneInfo("UTC")))

    figures = metrics.compute(date(2025, 7, 1), date(2025, 9, 30), window_days=365)

    assert (figures["customers_start"], figures["customers_end"], figures["retained_customers"],
            figures["churned_customers"]) == (3, 1, 1, 2)
    assert figures["retention_rate"] == Decimal("33.33")
    assert figures["churn_rate"] == Decimal("66.67")
