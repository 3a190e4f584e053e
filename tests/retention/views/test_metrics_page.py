"""The managers' metrics page: who may see it, what it shows, its CSV."""

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.db.models import F

from retention.figures import targets
from retention.sales.models import DataChange
from retention.views.choice import parse
from tests.factories import CustomerFactory, OrderFactory

pytestmark = pytest.mark.django_db


def settled():
    """Date the change log of the data made so far a minute back, as if loaded earlier.

    A stored figure computed within seconds of a write counts the write as later (it
    may not have been committed yet, see retention.sales.changes), so it would be computed
    again on the next view.
    """
    DataChange.objects.update(recorded_at=F("recorded_at") - timedelta(minutes=1))


@pytest.fixture
def manager(django_user_model):
    user = django_user_model.objects.create_user("boss", password="pw-boss-1234", is_staff=True)
    user.groups.add(Group.objects.get_or_create(name="Managers")[0])
    return user


@pytest.fixture
def manager_client(client, manager):
    client.force_login(manager)
    return client


def test_strangers_are_sent_to_log_in_and_other_staff_are_refused(client, django_user_model):
    assert client.get("/metrics/").url.startswith("/admin/login/?next=/metrics/")
    clerk = django_user_model.objects.create_user("clerk", password="pw-clerk-1234", is_staff=True)
    client.force_login(clerk)

    assert client.get("/metrics/").status_code == 403
    assert client.get("/metrics/export.csv").status_code == 403


def test_a_manager_sees_every_metric_with_its_definition_and_the_previous_period(manager_client):
    customer = CustomerFactory()
    OrderFactory(customer=customer, amount=Decimal("120"), ordered_at=datetime(2025, 5, 2, tzinfo=UTC))
    OrderFactory(customer=customer, amount=Decimal("80"), ordered_at=datetime(2025, 8, 2, tzinfo=UTC))

    response = manager_client.get("/metrics/", {"period": "custom", "start": "2025-07-01",
                                                "end": "2025-09-30"})

    page = response.content.decode()
    assert response.status_code == 200
    assert "2025-07-01 to 2025-09-30" in page and "2025-04-01 to 2025-06-30" in page
    cards = {card["key"]: card for _title, group in response.context["groups"] for card in group}
    assert len(cards) == 31
    assert (cards["revenue"]["value"], cards["revenue"]["previous"], cards["revenue"]["change"]) == (
        Decimal("80.00"), Decimal("120.00"), Decimal("-40.00"))
    assert "R / S × 100." in page


def test_the_quarters_targets_show_their_status(manager_client):
    targets.load_plan(2025, 3)

    response = manager_client.get("/metrics/", {"period": "custom", "start": "2025-07-01",
                                                "end": "2025-09-30"})

    cards = {card["key"]: card for _title, group in response.context["groups"] for card in group}
    assert cards["nps"]["target"]["evaluation"].status == "no data"
    assert "Goal: 40 to 50 — no data" in response.content.decode()


def test_a_running_quarters_target_says_what_it_compares_beside_the_cards_previous_period(
        manager_client):
    """The card compares with the days just before the period; the target with the same
    days of the previous quarter. Both say which days, in words a manager reads."""
    targets.load_plan(2025, 4)
    for customer_id, days in (("A", ["2024-11-01", "2025-08-01", "2025-11-02"]),
                              ("B", ["2024-10-20", "2025-07-15"])):
        customer = CustomerFactory(external_id=customer_id)
        for day in days:
            OrderFactory(customer=customer, amount=Decimal("1250.50"),
                         ordered_at=datetime.fromisoformat(day).replace(hour=12, tzinfo=UTC))

    with time_machine.travel(datetime(2025, 12, 1, 8, tzinfo=UTC), tick=False):
        response = manager_client.get("/metrics/", {"period": "custom", "start": "2025-10-01",
                                                    "end": "2025-11-30"})

    page = response.content.decode()
    card = page[page.index('id="metric-retention_rate"'):]
    card = card[:card.index("</article>")]
    assert "Retention rate" in card and "retention_rate" not in card.replace(
        'id="metric-retention_rate"', "")
    # The card's previous period: the 61 days before 1 Oct.
    assert "(2025-08-01 to 2025-09-30)" in card
    # The target's: the same days of the previous quarter, said beside it.
    assert "Goal: +5 % to +10 % on the previous quarter" in card
    assert " so far, 1 Oct 2025 – 30 Nov 2025 against 1 Jul 2025 – 30 Aug 2025" in card
    revenue = page[page.index('id="metric-revenue"'):]
    assert "ZAR1,250.50" in revenue[:revenue.index("</article>")]


def test_the_csv_holds_every_metric_of_the_page(manager_client):
    response = manager_client.get("/metrics/export.csv", {"period": "custom", "start": "2025-07-01",
                                                          "end": "2025-09-30"})

    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 31 and rows[0]["metric"] == "customers_start"
    assert rows[0]["start"] == "2025-07-01" and rows[0]["previous_end"] == "2025-06-30"


def test_a_bad_custom_period_is_explained(manager_client):
    response = manager_client.get("/metrics/", {"period": "custom", "start": "2025-09-30",
                                                "end": "2025-07-01"})

    assert response.status_code == 400
    assert "is before the start" in response.content.decode()


@pytest.mark.parametrize(
    ("period", "start", "end"),
    [("this_quarter", date(2025, 7, 1), date(2025, 8, 10)),
     ("last_quarter", date(2025, 4, 1), date(2025, 6, 30)),
     ("this_month", date(2025, 8, 1), date(2025, 8, 10)),
     ("last_month", date(2025, 7, 1), date(2025, 7, 31))],
)
def test_the_period_picker(period, start, end):
    choice = parse({"period": period}, as_of=date(2025, 8, 10))

    assert (choice.start, choice.end) == (start, end)


@pytest.mark.parametrize("customers", [1, 20])
def test_the_page_runs_the_same_queries_whatever_the_number_of_customers(
        manager_client, customers, django_assert_num_queries):
    for _ in range(customers):
        OrderFactory(ordered_at=datetime(2025, 8, 2, tzinfo=UTC))
    settled()
    query = {"period": "custom", "start": "2025-07-01", "end": "2025-09-30"}
    manager_client.get("/metrics/", query)  # the first view computes and stores the figures
    # session, user, the groups check, the picker's sources and categories; the period's
    # and its previous period's snapshots and the change log since they were computed;
    # the targets; the trend's 8 snapshots, the change log since those were computed and
    # the first paid order (is there a full window of history?); what needs attention
    # (the latest at-risk night, alerts, overdue follow-ups). The stored figures are read,
    # not computed.
    with django_assert_num_queries(14):
        response = manager_client.get("/metrics/", query)
    assert len(response.context["trend"]["labels"]) == 8


def test_the_trend_shows_eight_quarters_from_snapshots(manager_client):
    from retention.figures.models import MetricSnapshot

    manager_client.get("/metrics/")

    assert MetricSnapshot.objects.filter(grain="quarter").count() == 8


def test_the_scorecard_lists_the_quarters_targets_with_their_figures(manager_client):
    customer = CustomerFactory()
    for month, amount in ((5, "100"), (8, "150")):
        OrderFactory(customer=customer, amount=Decimal(amount),
                     ordered_at=datetime(2025, month, 2, tzinfo=UTC))
    targets.load_plan(2025, 3)

    response = manager_client.get("/metrics/scorecard/", {"year": 2025, "quarter": 3})

    assert response.status_code == 200
    rows = {row["target"].metric: row for row in response.context["rows"]}
    assert len(rows) == 6
    assert rows["nps"]["evaluation"].status == "no data"
    assert "Quarter scorecard: 2025 Q3" in response.content.decode()
    exported = list(csv.DictReader(io.StringIO(
        manager_client.get("/metrics/scorecard.csv", {"year": 2025, "quarter": 3}).content.decode())))
    assert {row["metric"] for row in exported} == set(rows)
    # The quarter is over: every target is judged on the whole of it, finally.
    assert {(row["period_start"], row["period_end"], row["final"]) for row in exported} == {
        ("2025-07-01", "2025-09-30", "True")}


def test_the_scorecard_explains_a_bad_quarter_and_refuses_other_staff(manager_client, client,
                                                                       django_user_model):
    response = manager_client.get("/metrics/scorecard/", {"year": 2025, "quarter": 7})
    assert "Pick a quarter 1 to 4" in response.content.decode()

    clerk = django_user_model.objects.create_user("clerk2", password="pw-clerk-1234", is_staff=True)
    client.force_login(clerk)
    assert client.get("/metrics/scorecard/").status_code == 403


def test_the_predicted_value_card_says_which_predictions_it_read(manager_client):
    from django.utils import timezone

    from retention.value import predictions
    from retention.value.models import ClvFit

    yesterday = timezone.localdate() - timedelta(days=1)
    for n in range(3):
        OrderFactory(customer=CustomerFactory(), amount=Decimal("120.00"),
                     ordered_at=datetime.combine(yesterday - timedelta(days=10 * n),
                                                 datetime.min.time(), tzinfo=UTC))
    settled()
    period = {"period": "custom", "start": str(yesterday), "end": str(yesterday)}
    before = manager_client.get("/metrics/", period).content.decode()
    # fit_clv --store: the stored figure of the period is computed again with them.
    predictions.fit(yesterday, purpose=ClvFit.Purpose.NIGHTLY, store=True)

    after = manager_client.get("/metrics/", period).content.decode()

    assert "No predictions stored on or before the period" in before
    assert f"From the predictions of {yesterday.isoformat()}, made with" in after
    assert "the simple rule" in after  # three customers are too few to fit the models


@pytest.mark.parametrize("trend", ["quarters", "months"])
def test_a_segment_filter_shows_no_data_before_its_first_snapshot_not_an_error(
        manager_client, trend):
    from retention.figures import segments
    from retention.periods import last_complete_day, quarter_start

    today = last_complete_day()
    customer = CustomerFactory()
    for ago in (200, 30):
        OrderFactory(customer=customer, amount=Decimal("50"), ordered_at=datetime.combine(
            today - timedelta(days=ago), datetime.min.time(), tzinfo=UTC))
    # The only snapshot, on the quarter's first day: the trend and the previous quarter
    # reach before it.
    segments.snapshot(quarter_start(today))

    response = manager_client.get("/metrics/", {"segment": "at_risk", "trend": trend})

    assert response.status_code == 200
    series = response.context["trend"]["series"]["retention_rate"]
    assert series[0] is None  # two years back: no snapshot, so no data
    cards = {card["key"]: card for _title, group in response.context["groups"] for card in group}
    assert cards["customers_end"]["value"] is not None
    assert cards["customers_end"]["previous"] is None

    csv_rows = list(csv.reader(io.StringIO(manager_client.get(
        "/metrics/trend.csv", {"segment": "at_risk", "trend": trend}).content.decode())))
    assert csv_rows[1][0] == "retention_rate" and csv_rows[1][1] == ""


def test_the_first_screen_shows_the_quarters_targets_and_what_needs_attention(
        manager_client, manager, admin_client):
    from retention.value.models import AtRisk, FollowUp

    today = date(2025, 11, 30)
    targets.load_plan(2025, 4)
    customers = [CustomerFactory(external_id=f"R{n}", name=f"Risky {n}") for n in range(8)]
    for n, customer in enumerate(customers):
        AtRisk.objects.create(customer=customer, as_of=today, score=0.8,
                              value_at_risk=Decimal(1000 + n), predicted_value_12m=Decimal(2000),
                              probability_active=0.3, days_since_last=200, overdue=True,
                              reason_count=1, details={})
    FollowUp.objects.create(customer=customers[0], assigned_to=manager, created_by=manager,
                            due_on=today - timedelta(days=3), reason="overdue")
    FollowUp.objects.create(customer=customers[1], assigned_to=manager, created_by=manager,
                            due_on=today + timedelta(days=3), reason="overdue")

    with time_machine.travel(datetime(2025, 12, 1, 8, tzinfo=UTC), tick=False):
        response = manager_client.get("/metrics/")

    page = response.content.decode()
    glance = page[page.index('id="targets-title"'):page.index('id="trend-title"')]
    assert "Targets for 2025 Q4" in glance
    for name in ("Retention rate", "Repeat purchase rate", "Net Promoter Score", "Churn rate"):
        assert name in glance
    # The five worth most, the most first, and how many there are in all.
    assert glance.index("Risky 7") < glance.index("Risky 3") and "Risky 2" not in glance
    assert "ZAR805.60 expected to be lost" in glance  # 1,007 at risk × 0.8
    assert "of 8 customers at risk on 30 November 2025" in glance
    assert "1 open follow-up past its due date" in glance
    assert 'href="/admin/retention/followup/?overdue=yes"' in glance
    with time_machine.travel(datetime(2025, 12, 1, 8, tzinfo=UTC), tick=False):
        listed = admin_client.get("/admin/retention/followup/", {"overdue": "yes"})
    assert [f.customer.external_id for f in listed.context["cl"].result_list] == ["R0"]


def test_the_home_page_leads_each_person_to_their_pages(client, manager, django_user_model):
    assert client.get("/")["Location"] == "/admin/login/?next=/"
    client.force_login(manager)
    assert client.get("/")["Location"] == "/metrics/"
    clerk = django_user_model.objects.create_user("clerk", is_staff=True)
    client.force_login(clerk)
    assert client.get("/")["Location"] == "/admin/"
    # The admin's "View site" leads back the same way.
    assert 'href="/"' in client.get("/admin/").content.decode()


def test_the_menu_leads_to_the_managers_pages_not_the_api(manager_client):
    page = manager_client.get("/metrics/").content.decode()
    menu = page[page.index('<nav aria-label="Main">'):page.index("</nav>")]
    assert 'href="/metrics/"' in menu and "/api/v1/metrics/" not in menu


def test_the_trend_marks_the_current_period_and_leaves_out_rates_without_a_full_window(
        manager_client):
    customer = CustomerFactory()
    for day in ("2025-03-10", "2025-08-01", "2025-11-02"):  # the first order: 10 Mar 2025
        OrderFactory(customer=customer, amount=Decimal("100"),
                     ordered_at=datetime.fromisoformat(day).replace(hour=12, tzinfo=UTC))

    with time_machine.travel(datetime(2025, 12, 1, 8, tzinfo=UTC), tick=False):
        response = manager_client.get("/metrics/")

    trend = response.context["trend"]
    assert trend["labels"][-1] == "2025 Q4 (to date)"
    # 8 quarters from 2024 Q1; a full 365-day window before the start exists only for
    # quarters starting on or after 10 Mar 2026, so none here: every rate is left out...
    assert trend["series"]["retention_rate"] == [None] * 8
    assert trend["short_history"][0] == "2024 Q1"
    assert "No rates for 2024 Q1" in response.content.decode()
    # ...rather than the 100 % the counts alone would give.
    assert response.context["groups"]


def test_rates_show_once_there_is_a_full_window_of_history(manager_client):
    customer = CustomerFactory()
    for day in ("2022-06-01", "2025-08-01"):
        OrderFactory(customer=customer, amount=Decimal("100"),
                     ordered_at=datetime.fromisoformat(day).replace(hour=12, tzinfo=UTC))

    with time_machine.travel(datetime(2025, 12, 1, 8, tzinfo=UTC), tick=False):
        trend = manager_client.get("/metrics/").context["trend"]

    assert trend["short_history"] == []
    assert trend["series"]["retention_rate"][-1] is not None


def test_dates_typed_into_the_picker_are_the_dates_asked_for():
    """The picker still said "This quarter" when the manager typed dates: theirs count."""
    typed = parse({"period": "this_quarter", "start": "2025-07-01", "end": "2025-07-31"},
                  date(2025, 8, 10))
    assert (typed.period, typed.start, typed.end) == ("custom", date(2025, 7, 1),
                                                      date(2025, 7, 31))
    untouched = parse({"period": "this_quarter", "start": "2025-07-01", "end": "2025-08-10"},
                      date(2025, 8, 10))
    assert untouched.period == "this_quarter"


def test_a_period_ending_after_the_last_complete_day_ends_there_and_says_so(manager_client):
    with time_machine.travel(datetime(2025, 12, 1, 8, tzinfo=UTC), tick=False):
        response = manager_client.get("/metrics/", {"period": "custom", "start": "2025-11-01",
                                                    "end": "2026-01-31"})

    assert response.status_code == 200
    assert response.context["period"]["end"] == "2025-11-30"
    assert "Figures run to 30 Nov 2025, the last complete day" in response.content.decode()
