"""The managers' pages of predicted value and customers at risk, acting on the list
(follow-ups and re-engagement lists), and the admin's views of the same rows."""

import csv
import io
import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from retention.sales.models import Customer
from retention.value import atrisk, followups, predictions
from retention.value.models import (
    AtRisk,
    ClvFit,
    CustomerPrediction,
    FollowUp,
    ReEngagementList,
    ReEngagementMember,
)
from tests.factories import (
    CustomerFactory,
    EnrolmentFactory,
    OrderFactory,
    OrganisationFactory,
    SupportTicketFactory,
)

pytestmark = pytest.mark.django_db
DAY = date(2025, 6, 30)


def at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 10, tzinfo=UTC)


def buyer(external_id: str, days_ago: list[int], amount: str = "100.00", **fields):
    """A customer with one paid order on each of the given days before DAY."""
    customer = CustomerFactory(external_id=external_id, **fields)
    for ago in days_ago:
        OrderFactory(customer=customer, ordered_at=at(DAY - timedelta(days=ago)),
                     amount=Decimal(amount))
    return customer


@pytest.fixture
def listed(settings):
    """Five customers with predictions on DAY (the simple rule: too few to fit) and three
    of them at risk: one overdue, one with an open complaint, one who left a course."""
    settings.RETENTION_CLV_MIN_CUSTOMERS = 200
    overdue = buyer("overdue", [300, 270, 240, 210, 120], amount="400.00")
    complaint = buyer("complaint", [20, 10], amount="50.00")
    SupportTicketFactory(customer=complaint, is_complaint=True, subject="Refund refused",
                         opened_at=at(DAY - timedelta(days=5)))
    learner = buyer("learner", [60], amount="250.00")
    EnrolmentFactory(customer=learner, started_on=DAY - timedelta(days=58), progress_percent=40,
                     last_activity_at=at(DAY - timedelta(days=45)))
    buyer("steady", [40, 30, 20, 10])
    buyer("gone", [500])
    predictions.fit(DAY, purpose=ClvFit.Purpose.NIGHTLY, store=True)
    atrisk.score(DAY)
    return {"overdue": overdue, "complaint": complaint, "learner": learner}


@pytest.fixture
def manager(view_only_manager):
    return view_only_manager


@pytest.fixture
def manager_client(client, manager):
    client.force_login(manager)
    return client


@pytest.fixture
def acting_manager(manager):
    """A manager who may also act on the list, as create_manager sets the group up."""
    call_command("create_manager", "--url", "http://testserver/", stdout=io.StringIO())
    manager.groups.add(Group.objects.get(name="Managers"))
    return manager


def rows_of(response) -> list[dict]:
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return list(csv.DictReader(io.StringIO(body.decode())))


# Predicted value ------------------------------------------------------------------------------


def test_the_value_page_says_the_simple_rule_was_used_and_why(listed, manager_client):
    response = manager_client.get("/metrics/value/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "Simple rule" in page
    assert "too little data to fit: 5 customers and 3 repeat buyers" in page
    assert response.context["fit"]["method"] == "fallback"
    assert response.context["summary"]["customers"] == 5


def test_the_value_distribution_adds_up_to_the_total_and_the_top_customer_leads(
        listed, manager_client):
    response = manager_client.get("/metrics/value/")

    tenths = response.context["tenths"]
    total = response.context["summary"]["predicted_value"]
    stored = sum(CustomerPrediction.objects.filter(as_of=DAY).values_list(
        "predicted_value_12m", flat=True))
    assert sum(row["customers"] for row in tenths) == 5
    assert sum(row["value"] for row in tenths) == total == stored
    top = list(response.context["top"])
    assert [p.predicted_value_12m for p in top] == sorted(
        (p.predicted_value_12m for p in top), reverse=True)


def test_every_prediction_downloads_as_csv(listed, manager_client):
    rows = rows_of(manager_client.get("/metrics/value.csv"))

    assert sorted(row["customer_id"] for row in rows) == [
        "complaint", "gone", "learner", "overdue", "steady"]
    gone = next(row for row in rows if row["customer_id"] == "gone")
    # 500 days since the only order: outside the activity window, so not active.
    assert float(gone["probability_active"]) == 0
    assert gone["predicted_value_12m"] == "0.00"


def test_the_value_page_without_predictions_says_how_to_make_them(manager_client):
    response = manager_client.get("/metrics/value/")

    assert response.status_code == 200
    assert "the nightly job makes them" in response.content.decode()


def test_an_unknown_day_shows_the_latest_and_says_so(listed, manager_client):
    response = manager_client.get("/metrics/value/", {"as_of": "2020-01-01"})

    assert response.context["day"] == DAY
    assert "No predictions stored for 2020-01-01" in response.content.decode()
    bad = manager_client.get("/metrics/value/", {"as_of": "soon"})
    assert "Give as_of as a date" in bad.content.decode()


def test_people_who_are_not_managers_are_refused(listed, client, django_user_model):
    client.force_login(django_user_model.objects.create_user("clerk", is_staff=True))

    assert client.get("/metrics/value/").status_code == 403
    assert client.get("/metrics/at-risk/").status_code == 403
    assert client.post("/metrics/at-risk/", {"action": "assign"}).status_code == 403


# The at-risk list -----------------------------------------------------------------------------


def test_the_list_holds_the_customers_at_risk_by_value_lost(listed, manager_client):
    response = manager_client.get("/metrics/at-risk/")

    rows = list(response.context["page"])
    assert {row.customer.external_id for row in rows} == {"overdue", "complaint", "learner"}
    assert [row.value_at_risk for row in rows] == sorted(
        (row.value_at_risk for row in rows), reverse=True)
    page = response.content.decode()
    assert "Open complaint since" in page and "Refund refused" in page
    assert "unfinished at 40 %" in page
    assert "the simple rule" in page and "too little data to fit" in page
    summary = response.context["summary"]
    reasons = {reason["code"]: reason["customers"] for reason in summary["reasons"]}
    assert reasons["complaint"] == 1 and reasons["abandoned_course"] == 1
    assert summary["customers"] == 3


def test_the_list_filters_by_reason_and_sorts_by_days_since_the_last_order(
        listed, manager_client):
    only = manager_client.get("/metrics/at-risk/", {"reason": "complaint"})
    assert [row.customer.external_id for row in only.context["page"]] == ["complaint"]

    by_days = manager_client.get("/metrics/at-risk/", {"sort": "days_since_last"})
    days = [row.days_since_last for row in by_days.context["page"]]
    assert days == sorted(days, reverse=True)

    # The summary counts the list shown: the reason filter applies to it too.
    assert only.context["summary"]["customers"] == 1
    assert only.context["summary"]["value_at_risk"] == only.context["page"][0].value_at_risk

    unknown = manager_client.get("/metrics/at-risk/", {"reason": "moon", "sort": "height"})
    page = unknown.content.decode()
    assert "Unknown reason moon" in page and "Unknown sort height" in page
    assert unknown.context["count"] == 3


def test_the_csv_holds_the_same_list_with_reasons_in_words(listed, manager_client):
    rows = rows_of(manager_client.get("/metrics/at-risk.csv", {"reason": "overdue"}))

    assert [row["customer_id"] for row in rows] == ["overdue"]
    assert "Overdue: 120 days since the last order; usually every 45 days" in rows[0]["reasons"]


def _at_risk_learners(first: int, last: int) -> None:
    for i in range(first, last):
        customer = buyer(f"c{i:03d}", [300, 200, 100])
        EnrolmentFactory(customer=customer, started_on=DAY - timedelta(days=90),
                         progress_percent=10, last_activity_at=at(DAY - timedelta(days=80)))
    predictions.fit(DAY, purpose=ClvFit.Purpose.NIGHTLY, store=True)
    atrisk.score(DAY)


def _queries_of_the_list(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/metrics/at-risk/", {"all": "1"})
    assert response.status_code == 200
    return response.context["count"], len(queries)


def test_the_list_page_costs_the_same_queries_for_one_row_or_many(manager_client, settings):
    settings.RETENTION_CLV_MIN_CUSTOMERS = 10_000
    _at_risk_learners(0, 1)
    manager_client.get("/metrics/at-risk/", {"all": "1"})  # back-tests computed, then stored
    one = _queries_of_the_list(manager_client)
    _at_risk_learners(1, 30)
    many = _queries_of_the_list(manager_client)

    # session, user, groups (managers_only), permissions, the days, the back-tests'
    # stored reports, the summary, the count and the page's rows (customers and
    # follow-ups joined): the same number whatever the rows.
    assert one[0] == 1 and many[0] == 30
    assert one[1] == many[1]


def test_the_list_is_ranked_by_expected_value_lost(listed, manager_client):
    rows = list(manager_client.get("/metrics/at-risk/").context["page"])

    losses = [row.expected_loss for row in rows]
    assert losses == sorted(losses, reverse=True)
    assert all(abs(row.expected_loss - float(row.value_at_risk) * row.score) < 1e-6
               for row in rows)
    exported = rows_of(manager_client.get("/metrics/at-risk.csv"))
    assert [Decimal(row["expected_loss"]) for row in exported] == [
        Decimal(str(round(loss, 2))).quantize(Decimal("0.01")) for loss in losses]


@pytest.fixture
def backtested(listed, monkeypatch):
    """The list of DAY, 90 days on: 'overdue' and 'steady' bought again, the others did not.
    Every reason is judged, however few it named."""
    monkeypatch.setattr(atrisk, "MIN_TO_TELL", 1)
    for external_id in ("overdue", "steady"):
        OrderFactory(customer=Customer.objects.get(external_id=external_id),
                     ordered_at=at(DAY + timedelta(days=20)), amount=Decimal("80"))
    return listed


def test_each_reason_shows_how_often_it_was_right_90_days_on(backtested, manager_client):
    response = manager_client.get("/metrics/at-risk/", {"as_of": DAY.isoformat()})

    precision = response.context["precision"]
    # Active on DAY: overdue, complaint, learner, steady; complaint and learner bought nothing.
    assert (precision["as_of"], precision["active"], precision["base_rate"]) == (
        DAY.isoformat(), 4, 50.0)
    judged = precision["reasons"]
    assert judged["overdue"] == {"customers": 1, "precision": 0.0, "telling": False}
    assert judged["complaint"] == {"customers": 1, "precision": 100.0, "telling": True}
    page = response.content.decode()
    assert "0 % of 1 did not buy: no better than chance" in page
    assert "against 50 % of all 4 customers active then" in page


def test_the_default_view_leaves_out_customers_only_untelling_reasons_name(
        backtested, manager_client):
    focused = manager_client.get("/metrics/at-risk/", {"as_of": DAY.isoformat()})
    everyone = manager_client.get("/metrics/at-risk/", {"as_of": DAY.isoformat(), "all": "1"})

    def ids(response):
        return {row.customer.external_id for row in response.context["page"]}

    assert ids(everyone) == {"overdue", "complaint", "learner"}
    assert ids(focused) == {"complaint", "learner"}
    assert focused.context["focus"]["left_out"] == ["Overdue"]
    assert "leaving out those whose only reasons did no better than chance" in \
        focused.content.decode()
    assert "Show all 3" in focused.content.decode()


def test_the_default_view_is_the_two_hundred_worth_most(manager_client, settings):
    settings.RETENTION_CLV_MIN_CUSTOMERS = 10_000
    _at_risk_learners(0, 205)

    # The next morning: no list is 90 days old yet, so no reason is judged.
    with time_machine.travel(datetime(2025, 7, 1, 6, tzinfo=UTC), tick=False):
        focused = manager_client.get("/metrics/at-risk/")
        everyone = manager_client.get("/metrics/at-risk/", {"all": "1"})

    assert focused.context["count"] == 200 and everyone.context["count"] == 205
    assert focused.context["summary"]["customers"] == 205


# Acting on the list --------------------------------------------------------------------------


def test_ticked_customers_get_a_follow_up_with_their_reasons(listed, acting_manager, client):
    client.force_login(acting_manager)
    customers = [listed["overdue"].pk, listed["learner"].pk]

    response = client.post("/metrics/at-risk/", {
        "action": "assign", "customers": customers, "assignee": acting_manager.pk,
        "due_on": "2025-07-07", "next": "/metrics/at-risk/?sort=score"}, follow=True)

    assert response.redirect_chain[-1][0] == "/metrics/at-risk/?sort=score"
    assert "2 follow-ups created, 0 reassigned" in response.content.decode()
    made = FollowUp.objects.order_by("customer__external_id")
    assert [(f.customer.external_id, f.assigned_to, f.due_on, f.status) for f in made] == [
        ("learner", acting_manager, date(2025, 7, 7), "open"),
        ("overdue", acting_manager, date(2025, 7, 7), "open")]
    assert "Overdue: 120 days since the last order" in made[1].reason
    assert response.context["summary"]["followed_up"] == 2


def test_assigning_again_hands_the_open_follow_up_over_instead_of_adding_one(
        listed, acting_manager, django_user_model):
    other = django_user_model.objects.create_user("thandi", is_staff=True)
    customer = listed["overdue"].pk

    first = followups.assign([customer], to=acting_manager, by=acting_manager)
    again = followups.assign([customer], to=acting_manager, by=acting_manager)
    handed = followups.assign([customer], to=other, by=acting_manager)

    assert (first.created, again.created, again.unchanged) == (1, 0, 1)
    assert (handed.created, handed.reassigned) == (0, 1)
    assert list(FollowUp.objects.values_list("assigned_to__username", "status")) == [
        ("thandi", "open")]
    followups.complete(FollowUp.objects.all(), note="Called; renewing in July")
    followups.assign([customer], to=acting_manager, by=acting_manager)
    assert FollowUp.objects.filter(status="open").count() == 1
    assert FollowUp.objects.filter(status="done", note="Called; renewing in July").count() == 1


def test_ticked_customers_join_a_re_engagement_list_once(listed, acting_manager, client):
    client.force_login(acting_manager)
    ticked = {"action": "add_to_list", "customers": [listed["complaint"].pk],
              "new_list": "Win-back July"}

    client.post("/metrics/at-risk/", ticked)
    response = client.post("/metrics/at-risk/", {**ticked, "customers": [
        listed["complaint"].pk, listed["learner"].pk]}, follow=True)

    chosen = ReEngagementList.objects.get(name="Win-back July")
    assert sorted(chosen.customers.values_list("external_id", flat=True)) == [
        "complaint", "learner"]
    assert "1 of 2 customers added to “Win-back July”" in response.content.decode()
    assert "Open complaint since" in ReEngagementMember.objects.get(
        customer=listed["complaint"]).reasons


def test_after_acting_the_page_goes_back_only_to_this_site(listed, acting_manager, client):
    client.force_login(acting_manager)

    response = client.post("/metrics/at-risk/", {
        "action": "add_to_list", "customers": [listed["overdue"].pk], "new_list": "Win-back",
        "next": "//evil.example/phish"})

    assert response.status_code == 302
    assert response["Location"] == "/metrics/at-risk/"


def test_an_incomplete_action_is_explained_and_writes_nothing(listed, acting_manager, client):
    client.force_login(acting_manager)
    existing = ReEngagementList.objects.create(name="Spring")
    both = client.post("/metrics/at-risk/", {"action": "add_to_list",
                                             "customers": [listed["overdue"].pk],
                                             "existing_list": existing.pk, "new_list": "Autumn"},
                       follow=True)
    assert "Choose a list or name a new one, not both." in both.content.decode()
    assert not existing.members.exists()
    existing.delete()

    nobody = client.post("/metrics/at-risk/", {"action": "assign",
                                               "assignee": acting_manager.pk}, follow=True)
    no_list = client.post("/metrics/at-risk/", {"action": "add_to_list",
                                                "customers": [listed["overdue"].pk]},
                          follow=True)

    assert "Tick at least one customer." in nobody.content.decode()
    assert "Choose a list or name a new one." in no_list.content.decode()
    assert not FollowUp.objects.exists() and not ReEngagementList.objects.exists()


def test_a_manager_who_may_only_read_cannot_act(listed, manager, client):
    client.force_login(manager)

    page = client.get("/metrics/at-risk/")
    refused = client.post("/metrics/at-risk/", {
        "action": "assign", "customers": [listed["overdue"].pk], "assignee": manager.pk})

    assert page.context["may_act"] is False
    assert 'name="customers"' not in page.content.decode()
    assert refused.status_code == 403
    assert not FollowUp.objects.exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL's locking")
@pytest.mark.django_db(transaction=True)
def test_two_people_assigning_the_same_customers_at_once_leave_one_open_follow_up(
        django_user_model):
    customers = [CustomerFactory().pk for _ in range(20)]
    one = django_user_model.objects.create_user("one", is_staff=True)
    two = django_user_model.objects.create_user("two", is_staff=True)
    barrier = threading.Barrier(2)
    errors = []

    def assign(user):
        try:
            barrier.wait()
            followups.assign(customers, to=user, by=user)
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=assign, args=(user,)) for user in (one, two)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert FollowUp.objects.filter(status="open").count() == 20
    assert sorted(FollowUp.objects.values_list("customer_id", flat=True)) == sorted(customers)


# The admin ------------------------------------------------------------------------------------


def test_the_customer_page_in_the_admin_shows_predicted_value_and_risk(
        listed, admin_client):
    response = admin_client.get(f"/admin/retention/customer/{listed['complaint'].pk}/change/")

    page = response.content.decode()
    assert "predicted value (latest nightly prediction)" in page.lower() and "simple rule" in page
    assert "Open complaint since" in page


def test_the_admin_at_risk_list_assigns_follow_ups_to_the_person_chosen(
        listed, admin_client, django_user_model):
    other = django_user_model.objects.create_user("thandi", is_staff=True)
    rows = AtRisk.objects.filter(as_of=DAY)

    listing = admin_client.get("/admin/retention/atrisk/")
    response = admin_client.post("/admin/retention/atrisk/", {
        "action": "assign_follow_up", "_selected_action": [row.pk for row in rows],
        "assignee": other.pk}, follow=True)

    assert listing.status_code == 200 and "Refund refused" in listing.content.decode()
    assert "3 follow-ups created" in response.content.decode()
    assert set(FollowUp.objects.values_list("assigned_to__username", flat=True)) == {"thandi"}


def test_the_admin_asks_for_a_list_name_before_adding(listed, admin_client):
    rows = AtRisk.objects.filter(as_of=DAY)

    response = admin_client.post("/admin/retention/atrisk/", {
        "action": "add_to_list", "_selected_action": [row.pk for row in rows],
        "list_name": ""}, follow=True)
    assert "Choose a re-engagement list or give a name" in response.content.decode()
    admin_client.post("/admin/retention/atrisk/", {
        "action": "add_to_list", "_selected_action": [row.pk for row in rows],
        "list_name": "Win-back"})
    assert ReEngagementList.objects.get(name="Win-back").members.count() == 3


def test_the_fit_admin_shows_each_fit_with_its_health(listed, admin_client):
    response = admin_client.get("/admin/retention/clvfit/")

    assert response.status_code == 200
    assert "simple rule" in response.content.decode()


def test_an_organisation_at_risk_is_found_by_type(settings, manager_client):
    settings.RETENTION_CLV_MIN_CUSTOMERS = 200
    firm = OrganisationFactory(external_id="firm")
    OrderFactory(customer=firm, ordered_at=at(DAY - timedelta(days=30)))
    SupportTicketFactory(customer=firm, is_complaint=True, opened_at=at(DAY))
    buyer("person", [30])
    SupportTicketFactory(customer__external_id="x", is_complaint=True, opened_at=at(DAY))
    predictions.fit(DAY, purpose=ClvFit.Purpose.NIGHTLY, store=True)
    atrisk.score(DAY)

    response = manager_client.get("/metrics/at-risk/", {"customer_type": "organisation"})

    assert [row.customer.external_id for row in response.context["page"]] == ["firm"]


def test_a_re_engagement_list_in_the_admin_names_its_customers(listed, admin_client):
    chosen, added = followups.add_to_list([listed["overdue"].pk, listed["learner"].pk],
                                          list_name="Win-back")

    page = admin_client.get(f"/admin/retention/reengagementlist/{chosen.pk}/change/")
    listing = admin_client.get("/admin/retention/reengagementlist/")

    assert added == 2
    assert "overdue in Win-back" in page.content.decode()
    assert "learner in Win-back" in page.content.decode()
    assert listing.context["cl"].result_list[0].member_count == 2


def test_calibrating_tries_each_threshold_on_history_and_names_the_value_to_use(
        backtested, settings):
    out = io.StringIO()
    call_command("calibrate_at_risk", "--date", DAY.isoformat(), "--json", stdout=out)
    result = __import__("json").loads(out.getvalue())

    assert (result["active"], result["base_rate"]) == (4, 50.0)
    overdue = result["reasons"]["overdue"]
    assert overdue["setting"] == "RETENTION_AT_RISK_OVERDUE_FACTOR"
    assert [t["value"] for t in overdue["tried"]] == [1.5, 2.0, 2.5, 3.0, 4.0, 5.0]
    # The overdue customer bought again: no value of the factor beats chance.
    assert overdue["best"] is None
    abandoned = result["reasons"]["abandoned_course"]
    # The learner, 45 days without activity on DAY, is named up to 45 days and bought nothing.
    by_value = {t["value"]: t for t in abandoned["tried"]}
    assert by_value[30]["customers"] == 1 and by_value[30]["precision"] == 100.0
    assert by_value[60]["customers"] == 0
    assert abandoned["best"] in (14, 30, 45)

    text = io.StringIO()
    call_command("calibrate_at_risk", "--date", DAY.isoformat(), stdout=text)
    assert "predicts nothing here" in text.getvalue()
    assert "set RETENTION_AT_RISK_ABANDONED_DAYS=" in text.getvalue()


def test_calibrating_needs_a_day_ninety_days_back(settings):
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="No stored predictions 90 days or more back"):
        call_command("calibrate_at_risk", stdout=io.StringIO())
    with pytest.raises(CommandError, match="is not a date"):
        call_command("calibrate_at_risk", "--date", "soon", stdout=io.StringIO())
