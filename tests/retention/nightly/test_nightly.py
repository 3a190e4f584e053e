"""The nightly pipeline: snapshots, re-runs, late and refunded orders, incremental summaries."""

import io
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db.models import F
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from retention import nightly
from retention.figures import metrics, segments, snapshots
from retention.figures.models import CustomerSegment, MetricSnapshot, StoredReport
from retention.money import as_json
from retention.nightly.models import NightlyRun
from retention.sales import ingest, summaries
from retention.sales.models import Customer, DataChange, Order
from retention.value import atrisk
from retention.value.models import AtRisk, CustomerPrediction
from tests.factories import CustomerFactory, OrderFactory, SupportTicketFactory

pytestmark = pytest.mark.django_db


def import_orders(*rows):
    """Write orders the way the platform does (CSV import or API)."""
    result = ingest.import_rows(
        (line, dict(zip(("order_id", "customer_id", "ordered_at", "amount", "status"), row,
                        strict=True)))
        for line, row in enumerate(rows, 2)
    )
    assert result.invalid == 0 and result.written


def snapshot(grain, start):
    return MetricSnapshot.objects.get(grain=grain, start=start, subset="")


def test_a_night_stores_the_day_month_and_quarter_to_date():
    import_orders(("A-1", "C-1", "2025-08-10", "100", "paid"))

    nightly.run(date(2025, 8, 10))

    day = snapshot("day", date(2025, 8, 10))
    assert (day.end, day.figures["orders"], day.figures["revenue"]) == (date(2025, 8, 10), 1, 100.0)
    assert snapshot("month", date(2025, 8, 1)).end == date(2025, 8, 10)
    assert snapshot("quarter", date(2025, 7, 1)).figures["new_customers"] == 1
    assert NightlyRun.objects.get().finished_at is not None


def test_running_a_night_twice_gives_the_same_snapshots():
    import_orders(("A-1", "C-1", "2025-08-10", "100", "paid"))
    nightly.run(date(2025, 8, 10))
    first = {(s.grain, s.start, s.end): s.figures for s in MetricSnapshot.objects.all()}
    segments_first = list(CustomerSegment.objects.values_list("customer", "snapshot_on", "segment"))

    nightly.run(date(2025, 8, 10))

    assert {(s.grain, s.start, s.end): s.figures for s in MetricSnapshot.objects.all()} == first
    assert list(CustomerSegment.objects.values_list("customer", "snapshot_on", "segment")) == (
        segments_first)
    # The night's three, and the pages' periods (previous periods and the two trends).
    assert {(s.grain, s.start) for s in MetricSnapshot.objects.filter(end=date(2025, 8, 10))} == {
        ("day", date(2025, 8, 10)), ("month", date(2025, 8, 1)), ("quarter", date(2025, 7, 1))}


def test_the_next_night_moves_the_month_on_and_keeps_one_row_per_period():
    import_orders(("A-1", "C-1", "2025-08-10", "100", "paid"))
    nightly.run(date(2025, 8, 10))
    import_orders(("A-2", "C-2", "2025-08-11", "50", "paid"))

    nightly.run(date(2025, 8, 11))

    month = snapshot("month", date(2025, 8, 1))
    assert (month.end, month.figures["orders"], month.figures["revenue"]) == (
        date(2025, 8, 11), 2, 150.0)
    assert MetricSnapshot.objects.filter(grain="month", start=date(2025, 8, 1)).count() == 1
    assert MetricSnapshot.objects.filter(grain="day").count() == 2


def test_a_refund_and_a_late_order_correct_the_snapshots_they_affect():
    import_orders(("A-1", "C-1", "2025-08-10", "100", "paid"))
    nightly.run(date(2025, 8, 10))
    nightly.run(date(2025, 8, 12))

    # Days later the platform reports a refund, and an order of 11 Aug that arrived late.
    import_orders(("A-1", "C-1", "2025-08-10", "100", "refunded"),
                  ("A-9", "C-9", "2025-08-11", "70", "paid"))
    nightly.run(date(2025, 8, 13))

    assert snapshot("day", date(2025, 8, 10)).figures["orders"] == 0
    assert snapshot("month", date(2025, 8, 1)).figures["revenue"] == 70.0
    assert snapshot("day", date(2025, 8, 12)).figures["customers_end"] == 1  # C-9, not C-1
    fresh = as_json(metrics.compute(date(2025, 8, 1), date(2025, 8, 12)))
    stored = MetricSnapshot.objects.get(grain="month", start=date(2025, 8, 1)).figures
    assert stored["revenue"] == fresh["revenue"] == 70.0


def test_incremental_summaries_equal_a_full_recomputation_after_writes_past_the_importer():
    customer = CustomerFactory()
    nightly.run(date(2025, 8, 1))
    # Written straight to the table (as a data fix would): the cached summary lags.
    OrderFactory(customer=customer, amount=Decimal("40"),
                 ordered_at=datetime(2025, 8, 2, 9, tzinfo=UTC))
    assert summaries.stale().exists()

    out = io.StringIO()
    call_command("run_nightly", "--date", "2025-08-02", stdout=out)

    assert "customers with changed orders checked, 1 corrected" in out.getvalue()
    assert not summaries.stale().exists()


ROWS = st.lists(
    st.tuples(st.integers(0, 30), st.integers(1, 28), st.integers(0, 900),
              st.sampled_from(["paid", "paid", "refunded", "cancelled"]), st.integers(0, 5)),
    min_size=1, max_size=20,
)


@hsettings(max_examples=25, deadline=None,
           suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(batches=st.lists(ROWS, min_size=1, max_size=3))
def test_summaries_kept_by_each_import_equal_a_full_recomputation(batches):
    """Whatever the sequence of imports (new orders, changes, refunds, moved orders),
    the incrementally kept summaries equal the independent full computation."""
    Order.objects.all().delete()
    Customer.objects.all().delete()
    for batch in batches:
        seen = {}
        for order, day, amount, status, customer in batch:
            seen[order] = (f"O-{order}", f"C-{customer}", f"2025-03-{day:02d}", str(amount), status)
        import_orders(*seen.values())
        assert not summaries.stale().exists()


def test_compute_metrics_save_stores_a_snapshot_once():
    import_orders(("A-1", "C-1", "2025-08-10", "100", "paid"))
    for _ in range(2):
        out = io.StringIO()
        call_command("compute_metrics", "--start", "2025-07-01", "--end", "2025-09-30", "--json",
                     "--save", stdout=out, stderr=io.StringIO())

    stored = MetricSnapshot.objects.get()
    assert (stored.grain, stored.start, stored.end) == ("quarter", date(2025, 7, 1), date(2025, 9, 30))
    assert stored.figures == json.loads(out.getvalue())


def test_old_daily_segment_snapshots_go_and_month_ends_stay(settings):
    settings.RETENTION_SEGMENT_KEEP_DAYS = 10
    settings.RETENTION_PREDICTION_KEEP_DAYS = settings.RETENTION_AT_RISK_KEEP_DAYS = 1000
    import_orders(("A-1", "C-1", "2025-06-10", "100", "paid"))
    for day in (date(2025, 6, 29), date(2025, 6, 30), date(2025, 7, 1)):
        segments.snapshot(day)

    nightly.run(date(2025, 8, 10))

    assert segments.snapshot_dates() == [date(2025, 8, 10), date(2025, 6, 30)]
    assert set(CustomerSegment.objects.values_list("snapshot_on", flat=True)) == {
        date(2025, 8, 10), date(2025, 6, 30)}


def test_predictions_and_at_risk_lists_are_kept_for_their_own_number_of_days(settings):
    """Three settings, one per kind of history: keeping segments longer keeps nothing else."""
    settings.RETENTION_SEGMENT_KEEP_DAYS = 1000
    settings.RETENTION_PREDICTION_KEEP_DAYS = 5
    settings.RETENTION_AT_RISK_KEEP_DAYS = 20
    import_orders(("A-1", "C-1", "2025-06-10", "100", "paid"))
    SupportTicketFactory(customer=Customer.objects.get(), is_complaint=True,  # at risk
                         opened_at=datetime(2025, 6, 15, tzinfo=UTC))
    for day in (date(2025, 7, 1), date(2025, 7, 25), date(2025, 7, 31)):
        nightly.run(day)

    nightly.run(date(2025, 8, 10))

    assert sorted(set(CustomerPrediction.objects.values_list("as_of", flat=True))) == [
        date(2025, 7, 31), date(2025, 8, 10)]  # 1 and 25 July went; the month-end stays
    assert sorted(set(AtRisk.objects.values_list("as_of", flat=True))) == [
        date(2025, 7, 25), date(2025, 7, 31), date(2025, 8, 10)]
    assert segments.snapshot_dates()[-1] == date(2025, 7, 1)


def settled():
    """Date the change log a minute back, as if the data were loaded well before the run."""
    DataChange.objects.update(recorded_at=F("recorded_at") - timedelta(minutes=1))


def test_a_late_order_drops_stored_tables_and_redoes_the_segments_it_reaches():
    import_orders(("A-1", "C-1", "2025-08-01", "100", "paid"))
    settled()
    nightly.run(date(2025, 8, 10))
    custom = snapshots.save(date(2025, 8, 2), date(2025, 8, 9))
    assert StoredReport.objects.filter(kind="cohorts").exists()
    assert segments.sizes(date(2025, 8, 10))["one_time"] == 1

    import_orders(("A-2", "C-1", "2025-08-05", "40", "paid"))  # late: dated before the night
    outcomes = {name: text for name, text, _seconds in nightly.run(date(2025, 8, 11))}

    assert "data changed back to 2025-08-05" in outcomes["late data"]
    assert not MetricSnapshot.objects.filter(pk=custom.pk).exists()
    assert segments.sizes(date(2025, 8, 10))["two_time"] == 1  # redone
    cohorts_report = StoredReport.objects.get(kind="cohorts")  # computed again by "pages"
    assert cohorts_report.computed_at > NightlyRun.objects.order_by("started_at").last().started_at


def test_subsets_a_manager_looked_at_are_kept_current():
    import_orders(("A-1", "C-1", "2025-08-01", "100", "paid"))
    partners = metrics.Subset(source="partner")
    snapshots.save(date(2025, 7, 1), date(2025, 8, 3), subset=partners)

    nightly.run(date(2025, 8, 10))

    stored = MetricSnapshot.objects.get(grain="quarter", start=date(2025, 7, 1),
                                        subset="source=partner")
    assert stored.end == date(2025, 8, 10)


def test_the_change_log_keeps_only_what_the_next_run_needs():
    import_orders(("A-1", "C-1", "2025-08-01", "100", "paid"))
    settled()
    nightly.run(date(2025, 8, 10))
    import_orders(("A-2", "C-1", "2025-08-11", "40", "paid"))
    nightly.run(date(2025, 8, 11))

    assert list(DataChange.objects.values_list("first_day", flat=True)) == [date(2025, 8, 11)]


def test_after_a_night_the_overview_only_reads(client, django_user_model,
                                              django_assert_num_queries, monkeypatch):
    from django.contrib.auth.models import Group

    import_orders(("A-1", "C-1", "2025-08-01", "100", "paid"))
    settled()
    nightly.run(date(2025, 8, 10))
    boss = django_user_model.objects.create_user("boss", password="pw-boss-1234")
    boss.groups.add(Group.objects.get_or_create(name="Managers")[0])
    client.force_login(boss)
    monkeypatch.setattr("retention.views.overview.last_complete_day", lambda: date(2025, 8, 10))

    # session, user, groups, snapshots + change log, targets, trend snapshots + change
    # log, the first paid order, sources, categories, what needs attention (the latest
    # at-risk night, alerts, overdue follow-ups): nothing is computed
    with django_assert_num_queries(14):
        response = client.get("/metrics/")
    assert response.context["period"]["end"] == "2025-08-10"


def test_a_night_stores_predictions_and_the_at_risk_list_once_however_often_it_runs():
    from retention.sales.models import SupportTicket
    from retention.value.models import AtRisk, ClvFit, CustomerPrediction

    import_orders(("A-1", "C-1", "2025-05-10", "100", "paid"),
                  ("A-2", "C-1", "2025-06-10", "100", "paid"),
                  ("B-1", "C-2", "2025-08-01", "80", "paid"))
    SupportTicket.objects.create(customer=Customer.objects.get(external_id="C-2"),
                                 external_id="T-1", is_complaint=True, subject="Late access",
                                 opened_at=datetime(2025, 8, 5, 9, tzinfo=UTC))

    nightly.run(date(2025, 8, 10))
    nightly.run(date(2025, 8, 10))

    fits = ClvFit.objects.filter(purpose="nightly", as_of=date(2025, 8, 10))
    # Two customers are far too few to fit the models: the simple rule, said so.
    assert fits.count() == 2 and not fits.first().uses_models
    assert "too little data" in fits.first().fallback_reasons[0]
    assert CustomerPrediction.objects.filter(as_of=date(2025, 8, 10)).count() == 2
    at_risk = AtRisk.objects.get(as_of=date(2025, 8, 10))
    assert at_risk.customer.external_id == "C-2"
    assert atrisk.in_words(at_risk) == ["Open complaint since 2025-08-05: Late access"]
    run = NightlyRun.objects.order_by("-pk").first()
    assert "2 customers predicted with simple rule" in json.dumps(run.outcomes)
