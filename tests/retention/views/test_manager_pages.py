"""The managers' pages beside the overview: customers behind a figure, cohorts, segments,
the price update; and how stored figures follow the data."""

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.db.models import F

from retention.figures import segments, snapshots
from retention.figures.models import MetricSnapshot, StoredReport
from retention.sales import ingest, summaries
from retention.sales.models import DataChange, PriceChange
from tests.factories import CourseFactory, CustomerFactory, MembershipFactory, OrderFactory
from tests.retention.figures.test_metrics import Q3, scenario  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db
Q3_QUERY = {"period": "custom", "start": "2025-07-01", "end": "2025-09-30"}


@pytest.fixture
def manager_client(client, django_user_model):
    user = django_user_model.objects.create_user("boss", password="pw-boss-1234", is_staff=True)
    user.groups.add(Group.objects.get_or_create(name="Managers")[0])
    client.force_login(user)
    return client


def settled():
    """Date the change log a minute back, as if the data were loaded earlier."""
    DataChange.objects.update(recorded_at=F("recorded_at") - timedelta(minutes=1))


def rows_of(response) -> list[dict]:
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return list(csv.DictReader(io.StringIO(body.decode())))


# Customers behind a figure -------------------------------------------------------------------


def test_the_churned_customers_of_the_quarter_are_listed_and_exported(scenario, manager_client):  # noqa: F811
    response = manager_client.get("/metrics/customers/", {**Q3_QUERY, "set": "churned"})

    assert response.status_code == 200
    assert response.context["count"] == 1
    assert [c.external_id for c in response.context["page"]] == ["B"]
    assert "Churned: active at the start, not at the end" in response.content.decode()
    exported = rows_of(manager_client.get("/metrics/customers.csv", {**Q3_QUERY, "set": "churned"}))
    assert [(row["customer_id"], row["orders"], row["total_spent"]) for row in exported] == [
        ("B", "1", "40.00")]


def test_the_overview_links_each_count_to_its_customers(scenario, manager_client):  # noqa: F811
    response = manager_client.get("/metrics/", Q3_QUERY)

    cards = {card["key"]: card for _title, group in response.context["groups"] for card in group}
    link = cards["churned_customers"]["customers_url"]
    assert link.startswith("/metrics/customers/?") and "set=churned" in link
    assert manager_client.get(link).context["count"] == cards["churned_customers"]["value"]
    assert cards["revenue"]["customers_url"] is None


@pytest.mark.parametrize("customers", [3, 60])
def test_a_customer_list_page_runs_the_same_queries_for_any_length(
        manager_client, customers, django_assert_num_queries, settings):
    settings.TIME_ZONE = "UTC"
    for n in range(customers):
        OrderFactory(customer=CustomerFactory(), amount=Decimal(n),
                     ordered_at=datetime(2025, 8, 1, 12, tzinfo=UTC))
    # session, user, groups check, the count, the page's rows
    with django_assert_num_queries(5):
        response = manager_client.get("/metrics/customers/", {**Q3_QUERY, "set": "buyers"})
    assert response.context["count"] == customers
    assert len(response.context["page"]) == min(customers, 50)


def test_a_list_that_cannot_be_made_is_explained(manager_client):
    response = manager_client.get("/metrics/customers/", {**Q3_QUERY, "set": "friends"})
    assert response.status_code == 400 and "Unknown list friends" in response.content.decode()

    response = manager_client.get("/metrics/customers/", {"in_segment": "loyalist", "on": "soon"})
    assert response.status_code == 400 and "Give on as a date" in response.content.decode()


def test_other_staff_may_not_see_customer_lists(client, django_user_model):
    clerk = django_user_model.objects.create_user("clerk", password="pw-clerk-1234", is_staff=True)
    client.force_login(clerk)

    assert client.get("/metrics/customers/", {**Q3_QUERY, "set": "churned"}).status_code == 403
    assert client.get("/metrics/customers.csv", {**Q3_QUERY, "set": "churned"}).status_code == 403
    for page in ("/metrics/cohorts/", "/metrics/segments/", "/metrics/price-update/"):
        assert client.get(page).status_code == 403


# Cohorts -------------------------------------------------------------------------------------


@pytest.fixture
def two_cohorts(settings):
    settings.TIME_ZONE = "UTC"
    first, second, third = CustomerFactory(), CustomerFactory(), CustomerFactory()
    for customer, day, amount in ((first, date(2025, 1, 5), "100"), (first, date(2025, 2, 5), "50"),
                                  (second, date(2025, 1, 20), "80"),
                                  (third, date(2025, 2, 10), "30")):
        OrderFactory(customer=customer, amount=Decimal(amount),
                     ordered_at=datetime.combine(day, datetime.min.time(), tzinfo=UTC))
    summaries.refresh()  # cohorts read the cached first orders; factories skip the cache
    settled()


def test_the_cohort_heatmap_shows_retention_and_revenue(two_cohorts, manager_client):
    response = manager_client.get("/metrics/cohorts/", {"start": "2025-01", "end": "2025-02"})

    rows = {row["cohort"]: row for row in response.context["rows"]}
    assert rows["2025-01"]["size"] == 2
    assert [cell["value"] for cell in rows["2025-01"]["retention"]] == [100.0, 50.0]
    assert [cell["value"] for cell in rows["2025-01"]["revenue"]] == [180.0, 50.0]
    assert [cell["value"] for cell in rows["2025-02"]["retention"]] == [100.0]
    page = response.content.decode()
    assert 'id="cohort-retention"' in page and 'style="--shade: 0.35"' in page  # 50 % of 0.7
    exported = rows_of(manager_client.get("/metrics/cohorts.csv",
                                          {"start": "2025-01", "end": "2025-02", "table": "revenue"}))
    assert exported[0] == {"cohort": "2025-01", "size": "2", "month_0": "180.0", "month_1": "50.0"}


def test_a_stored_cohort_table_is_read_until_an_order_in_its_range_changes(
        two_cohorts, manager_client, django_assert_num_queries):
    query = {"start": "2025-01", "end": "2025-02"}
    manager_client.get("/metrics/cohorts/", query)
    # session, user, groups check, the stored report, the change log since it
    with django_assert_num_queries(5):
        manager_client.get("/metrics/cohorts/", query)

    OrderFactory(customer=CustomerFactory(), amount=Decimal("10"),
                 ordered_at=datetime(2025, 2, 20, tzinfo=UTC))
    summaries.refresh()
    response = manager_client.get("/metrics/cohorts/", query)

    rows = {row["cohort"]: row for row in response.context["rows"]}
    assert rows["2025-02"]["size"] == 2


# Segments ------------------------------------------------------------------------------------


def test_the_segments_page_asks_for_a_snapshot_first(manager_client):
    response = manager_client.get("/metrics/segments/")

    assert "No segment snapshot yet" in response.content.decode()


def test_the_segments_page_shows_sizes_and_moves_with_their_customers(two_cohorts, manager_client):
    segments.snapshot(date(2025, 1, 31))
    segments.snapshot(date(2025, 6, 30))

    response = manager_client.get("/metrics/segments/")

    assert (response.context["on"], response.context["first"], response.context["second"]) == (
        date(2025, 6, 30), date(2025, 1, 31), date(2025, 6, 30))
    sizes = {size["name"]: size["customers"] for size in response.context["sizes"]}
    assert sizes["one_time"] == 2 and sizes["two_time"] == 1 and sum(sizes.values()) == 3
    moves = {row["origin"]: row for row in response.context["rows"]}
    # On 31 Jan both January customers had bought once; by June the first had bought twice.
    assert moves["one_time"]["customers"] == 2 and moves["new"]["customers"] == 1
    page = response.content.decode()
    assert "moved_from=one_time&amp;moved_to=two_time" in page
    followed = manager_client.get("/metrics/customers/", {
        "moved_from": "one_time", "moved_to": "two_time", "first": "2025-01-31",
        "second": "2025-06-30"})
    assert followed.context["count"] == 1
    exported = rows_of(manager_client.get("/metrics/segments.csv", {"table": "moves"}))
    assert {(row["from"], row["to"], row["customers"]) for row in exported} == {
        ("new", "one_time", "1"), ("one_time", "one_time", "1"), ("one_time", "two_time", "1")}


def test_a_date_without_a_snapshot_falls_back_and_says_so(two_cohorts, manager_client):
    segments.snapshot(date(2025, 6, 30))

    response = manager_client.get("/metrics/segments/", {"on": "2025-03-01"})

    assert "No segment snapshot on 2025-03-01; showing 2025-06-30." in response.content.decode()


# Price update --------------------------------------------------------------------------------


def test_the_price_update_page_compares_before_and_after(manager_client, settings):
    settings.TIME_ZONE = "UTC"
    course = CourseFactory(code="bus-101", price=Decimal("120"))
    PriceChange.objects.create(course=course, old_price=Decimal("100"), new_price=Decimal("120"),
                               changed_at=datetime(2025, 6, 1, tzinfo=UTC))
    buyer = CustomerFactory()
    OrderFactory(customer=buyer, amount=Decimal("100"), ordered_at=datetime(2025, 5, 20, tzinfo=UTC))
    OrderFactory(customer=buyer, amount=Decimal("120"), ordered_at=datetime(2025, 6, 10, tzinfo=UTC))

    response = manager_client.get("/metrics/price-update/", {"date": "2025-06-01", "days": "30"})

    groups = {group["name"]: group for group in response.context["groups"]}
    aov = {row["key"]: row for row in groups["all"]["rows"]}["average_order_value"]
    assert (aov["before"], aov["after"], aov["change"]) == (100.0, 120.0, 20.0)
    assert "bus-101" in response.content.decode()
    exported = rows_of(manager_client.get("/metrics/price-update.csv",
                                          {"date": "2025-06-01", "days": "30"}))
    assert {"customers": "all", "metric": "average_order_value", "before": "100.0",
            "after": "120.0", "change": "20.0", "before_start": "2025-05-02",
            "before_end": "2025-05-31", "after_start": "2025-06-01",
            "after_end": "2025-06-30"} in exported


def test_the_price_update_page_without_any_update(manager_client):
    response = manager_client.get("/metrics/price-update/")

    assert response.status_code == 200
    assert "No price change has been recorded yet." in response.content.decode()


# Stored figures and the change log -----------------------------------------------------------


def test_a_stored_period_is_read_again_until_data_dated_in_it_changes(settings):
    settings.TIME_ZONE = "UTC"
    customer = CustomerFactory()
    OrderFactory(customer=customer, amount=Decimal("100"), ordered_at=datetime(2025, 8, 1, tzinfo=UTC))
    settled()
    first = snapshots.figures(*Q3)
    computed_at = MetricSnapshot.objects.get().computed_at

    OrderFactory(customer=customer, amount=Decimal("5"), ordered_at=datetime(2025, 10, 2, tzinfo=UTC))
    after_the_period = snapshots.figures(*Q3)
    assert after_the_period == first
    assert MetricSnapshot.objects.get().computed_at == computed_at

    OrderFactory(customer=customer, amount=Decimal("50"), ordered_at=datetime(2025, 9, 2, tzinfo=UTC))
    late = snapshots.figures(*Q3)
    assert late["revenue"] == 150.0 and MetricSnapshot.objects.get().computed_at > computed_at


def test_an_import_records_the_earliest_date_it_touched_old_or_new(settings):
    settings.TIME_ZONE = "UTC"
    CourseFactory(code="bus-101")
    row = {"order_id": "A-1", "customer_id": "C-1", "ordered_at": "2025-08-01", "amount": "10",
           "items": "bus-101"}
    ingest.import_rows([(2, row)])
    assert DataChange.objects.get().first_day == date(2025, 8, 1)

    ingest.import_rows([(2, {**row, "ordered_at": "2025-09-15"})])  # moved later
    assert DataChange.objects.order_by("-pk").first().first_day == date(2025, 8, 1)

    ingest.import_rows([(2, {**row, "ordered_at": "2025-09-15"})])  # unchanged: nothing
    ingest.import_rows([(2, {**row, "ordered_at": "2025-01-01"})], dry_run=True)
    assert DataChange.objects.count() == 2


def test_saves_and_deletes_through_the_orm_are_recorded():
    membership = MembershipFactory(started_on=date(2025, 3, 1))
    order = OrderFactory(ordered_at=datetime(2025, 5, 1, tzinfo=UTC))
    order.ordered_at = datetime(2025, 7, 1, tzinfo=UTC)
    order.save()
    membership.delete()

    assert [(c.source, c.first_day) for c in DataChange.objects.order_by("pk")] == [
        ("membership", date(2025, 3, 1)),
        ("order", date(2025, 5, 1)), ("order", date(2025, 5, 1)),
        ("membership", date(2025, 3, 1))]


def test_reports_are_stored_once_per_parameters(two_cohorts, manager_client):
    manager_client.get("/metrics/cohorts/", {"start": "2025-01", "end": "2025-02"})
    manager_client.get("/metrics/cohorts/", {"start": "2025-01", "end": "2025-02"})

    assert StoredReport.objects.filter(kind="cohorts").count() == 1


@pytest.mark.parametrize(("url", "status", "says"), [
    ("/metrics/customers/?set=churned&period=custom&start=x&end=y", 400,
     "Give the custom period"),
    ("/metrics/customers/?moved_from=bogus&moved_to=loyalist&first=2025-01-01&second=2025-02-01",
     400, "Unknown segment in this move"),
    ("/metrics/cohorts/?start=2025-13&end=zz", 200, "Give the months as YYYY-MM"),
    ("/metrics/price-update/?date=bad&days=-3", 200, "Give the date as YYYY-MM-DD"),
    ("/metrics/?period=custom&start=2025-09-01&end=2025-01-01&trend=weird", 400,
     "is before the start"),
    ("/c/garbage/", 400, "This link does not work"),
    ("/u/garbage/", 400, "This link does not work"),
    ("/r/garbage/", 400, "This link does not work"),
])
def test_bad_input_on_the_pages_is_explained_not_a_server_error(manager_client, url, status,
                                                                 says):
    response = manager_client.get(url)

    assert response.status_code == status
    assert says in response.content.decode()


def test_the_month_not_over_yet_is_marked_in_the_heatmaps(two_cohorts, manager_client):
    import time_machine

    with time_machine.travel(datetime(2025, 2, 21, 8, tzinfo=UTC), tick=False):
        response = manager_client.get("/metrics/cohorts/", {"start": "2025-01"})

    rows = {row["cohort"]: row for row in response.context["rows"]}
    # February runs to the 20th: month 1 of January's cohort and month 0 of February's.
    assert [cell["partial"] for cell in rows["2025-01"]["retention"]] == [False, True]
    assert [cell["partial"] for cell in rows["2025-02"]["retention"]] == [True]
    assert "Cells marked * are February 2025, a month not over yet" in response.content.decode()

    finished = manager_client.get("/metrics/cohorts/", {"start": "2025-01", "end": "2025-01"})
    assert not any(cell["partial"] for row in finished.context["rows"] for cell in row["retention"])


def test_an_empty_customer_list_says_so_with_its_period(manager_client):
    response = manager_client.get("/metrics/customers/", {"period": "this_quarter",
                                                          "set": "churned"})

    page = response.content.decode()
    assert response.status_code == 200 and response.context["count"] == 0
    assert "No customers in this list for this period." in page
    assert "Download CSV" in page


def test_segment_lists_are_titled_in_words(two_cohorts, manager_client):
    segments.snapshot(date(2025, 1, 31))
    segments.snapshot(date(2025, 6, 30))
    moved = manager_client.get("/metrics/customers/", {
        "moved_from": "one_time", "moved_to": "two_time", "first": "2025-01-31",
        "second": "2025-06-30"})
    assert moved.context["title"] == "From One-time buyers on 31 Jan 2025 to Two-time buyers on 30 Jun 2025"
    inside = manager_client.get("/metrics/customers/", {"in_segment": "one_time",
                                                         "on": "2025-06-30"})
    assert inside.context["title"] == "One-time buyers on 30 Jun 2025"
