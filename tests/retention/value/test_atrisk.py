"""Customers at risk: each reason, who is left out, re-runs, the back-test and pruning."""

import math
import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import time_machine
from django.db.models import Case, IntegerField, Q, Value, When

from retention.figures.models import StoredReport
from retention.sales.models import SupportTicket
from retention.value import atrisk, predictions
from retention.value.models import AtRisk, ClvFit, CustomerPrediction
from tests.factories import (
    CourseFactory,
    CustomerFactory,
    EnrolmentFactory,
    MembershipFactory,
    OrderFactory,
    SupportTicketFactory,
)

pytestmark = pytest.mark.django_db

AS_OF = date(2025, 6, 30)
SAST = ZoneInfo("Africa/Johannesburg")

# Every reason column as it is when that reason is absent (reason_count: one reason).
NO_REASON = {
    "low_active": False, "overdue": False, "abandoned_course": "", "abandoned_progress": None,
    "abandoned_since": None, "complaint_subject": "", "complaint_opened_at": None,
    "membership_plan": "", "membership_ends_on": None, "details": {},
    "reason_count": 1,
}


@pytest.fixture(autouse=True)
def rules(settings):
    """The at-risk rules spelt out, and the simple rule unless a test asks for the model."""
    settings.TIME_ZONE = "UTC"
    settings.RETENTION_ACTIVITY_WINDOW_DAYS = 365
    settings.RETENTION_AT_RISK_ACTIVE_BELOW = 0.5
    settings.RETENTION_AT_RISK_OVERDUE_FACTOR = 2
    settings.RETENTION_AT_RISK_ABANDONED_DAYS = 30
    settings.RETENTION_CLV_MIN_CUSTOMERS = 1000
    settings.RETENTION_CLV_MIN_REPEAT_BUYERS = 1000
    return settings


def at(day: date, hour: int = 12) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=UTC)


def buyer(*days: date, amount: str = "100.00", customer=None):
    """A customer with one paid order on each day."""
    customer = customer or CustomerFactory()
    for day in days:
        OrderFactory(customer=customer, ordered_at=at(day), amount=Decimal(amount))
    return customer


def run(as_of: date = AS_OF) -> int:
    """The nightly order: store the day's predictions, then score."""
    predictions.fit(as_of, purpose=ClvFit.Purpose.NIGHTLY, store=True)
    return atrisk.score(as_of)


def reasons_of(row: AtRisk) -> dict:
    return {column: getattr(row, column) for column in NO_REASON}


def detractor_reason(customer, answer: int) -> atrisk.Reason:
    """What the surveys app will register: the customer's latest NPS answer when 0 to 6
    (here, `answer` for `customer` and nobody else), kept in the row's details."""
    return atrisk.Reason(
        "detractor", "Detractor",
        annotate=lambda as_of, rows: rows.annotate(detractor=Case(
            When(customer_id=customer.pk, then=Value(answer)), default=None,
            output_field=IntegerField())),
        present=Q(detractor__isnull=False), facts={"score": "detractor"},
        describe=lambda row, facts: f"Detractor: answered {facts['score']} out of 10",
        order=60, telling=40)


@pytest.fixture
def modelled(rules):
    """Forty customers drawn from a buy-then-drop-out process, enough for BG/NBD to fit.

    Their histories are drawn with a fixed seed; the tests assert on customers of their own
    and on what the model says of them, never on the drawn customers' rows.
    """
    rules.RETENTION_CLV_MIN_CUSTOMERS = 10
    rules.RETENTION_CLV_MIN_REPEAT_BUYERS = 5
    rng = np.random.default_rng(0)
    first = rng.integers(60, 730, 40)  # days before AS_OF
    rate = rng.gamma(1.0, 1 / 40, 40)  # purchases a day
    life = rng.exponential(300, 40)
    for i in range(40):
        days, t = {0}, 0.0
        while (t := t + rng.exponential(1 / rate[i])) <= min(life[i], first[i]):
            days.add(int(t))
        start = AS_OF - timedelta(days=int(first[i]))
        buyer(*(start + timedelta(days=d) for d in sorted(days)),
              amount=f"{rng.integers(50, 400)}.00")
    return rules


# One test per reason ---------------------------------------------------------------------------


def test_a_customer_long_past_their_usual_gap_is_overdue():
    # Every 30 days, three times; the last order 120 days before the day.
    customer = buyer(date(2025, 1, 1), date(2025, 1, 31), date(2025, 3, 2))

    assert run() == 1

    row = AtRisk.objects.get()
    assert (row.as_of, row.customer_id) == (AS_OF, customer.pk)
    assert reasons_of(row) == {**NO_REASON, "overdue": True}
    assert (row.days_since_last, row.usual_gap_days, row.probability_active) == (120, 30, 1.0)
    assert atrisk.in_words(row) == ["Overdue: 120 days since the last order; usually every 30 days"]
    # The simple rule: three purchase days in their first year, a Poisson rate of 3 a year.
    assert row.score == pytest.approx(math.exp(-3 * 90 / 365.25))


def test_exactly_twice_the_usual_gap_is_not_yet_overdue():
    buyer(date(2025, 1, 1), date(2025, 1, 31), date(2025, 3, 2))

    assert run(date(2025, 5, 1)) == 0  # 60 days since the last order, usually 30

    assert run(date(2025, 5, 2)) == 1  # 61
    assert atrisk.in_words(AtRisk.objects.get()) == [
        "Overdue: 61 days since the last order; usually every 30 days"]


def test_a_customer_the_model_doubts_is_unlikely_to_be_active(modelled):
    # They bought every ten days for three months and stopped; a lax overdue rule leaves
    # the model's doubt as the only reason (the same silence makes them overdue too).
    modelled.RETENTION_AT_RISK_OVERDUE_FACTOR = 50
    customer = buyer(*(AS_OF - timedelta(days=d) for d in range(160, 60, -10)))

    run()

    assert ClvFit.objects.get().purchases_method == ClvFit.Method.MODEL
    prediction = CustomerPrediction.objects.get(customer=customer, as_of=AS_OF)
    assert prediction.probability_active < 0.5
    row = AtRisk.objects.get(customer=customer)
    assert reasons_of(row) == {**NO_REASON, "low_active": True}
    assert (row.probability_active, row.days_since_last, row.usual_gap_days) == (
        prediction.probability_active, 70, 10)
    [words] = atrisk.in_words(row)
    assert re.fullmatch(r"Unlikely to be still buying: \d{1,2} % chance of being active", words)


@pytest.mark.parametrize(("probability", "shown"), [(0.3, "30"), (0.125, "13"), (0.145, "15"),
                                                    (0.004, "0")])
def test_the_chance_in_words_is_rounded_half_up_as_every_figure(probability, shown):
    row = AtRisk(as_of=AS_OF, probability_active=probability, low_active=True, score=0.9,
                 days_since_last=10)

    assert atrisk.in_words(row) == [
        f"Unlikely to be still buying: {shown} % chance of being active"]


@pytest.mark.parametrize("last_activity_at, since", [
    (at(date(2025, 5, 20), 15), date(2025, 5, 20)),
    (at(date(2025, 5, 31), 23), date(2025, 5, 31)),  # 30 whole days without activity
    (None, date(2025, 4, 1)),  # none recorded: idle since the start
])
def test_an_unfinished_course_without_recent_activity_is_abandoned(last_activity_at, since):
    customer = buyer(date(2025, 4, 1))
    EnrolmentFactory(customer=customer, course=CourseFactory(title="Bookkeeping basics"),
                     started_on=date(2025, 4, 1), progress_percent=40,
                     last_activity_at=last_activity_at)

    assert run() == 1

    row = AtRisk.objects.get(customer=customer)
    assert reasons_of(row) == {**NO_REASON, "abandoned_course": "Bookkeeping basics",
                               "abandoned_progress": 40, "abandoned_since": since}
    assert atrisk.in_words(row) == [
        f"Left “Bookkeeping basics” unfinished at 40 %, no activity since {since.isoformat()}"]


@pytest.mark.parametrize("enrolment", [
    pytest.param({"progress_percent": 100, "completed_on": date(2025, 5, 1),
                  "last_activity_at": at(date(2025, 5, 1))}, id="finished"),
    pytest.param({"progress_percent": 40, "last_activity_at": at(date(2025, 6, 1), 0)},
                 id="active-within-30-days"),
    pytest.param({"progress_percent": 0, "started_on": date(2025, 6, 15)}, id="just-started"),
    pytest.param({"progress_percent": 0, "started_on": date(2025, 7, 1)}, id="starts-later"),
])
def test_a_finished_recent_or_future_course_is_not_abandoned(enrolment):
    customer = buyer(date(2025, 4, 1))
    EnrolmentFactory(customer=customer, **{"started_on": date(2025, 4, 1), **enrolment})

    assert run() == 0

    assert not AtRisk.objects.exists()
    assert CustomerPrediction.objects.filter(customer=customer, as_of=AS_OF).exists()


@pytest.mark.parametrize("other", [
    pytest.param({"last_activity_at": at(date(2025, 6, 20))}, id="active-on-another-course"),
    pytest.param({"progress_percent": 100, "completed_on": date(2025, 6, 10),
                  "last_activity_at": at(date(2025, 6, 10))}, id="finished-another-course"),
    pytest.param({"started_on": date(2025, 6, 15)}, id="started-another-course"),
])
def test_a_course_left_behind_is_no_reason_once_the_customer_learns_again(other):
    customer = buyer(date(2025, 4, 1), date(2025, 6, 1))
    EnrolmentFactory(customer=customer, started_on=date(2025, 4, 1), progress_percent=40,
                     last_activity_at=at(date(2025, 5, 1)))
    EnrolmentFactory(customer=customer, **{"started_on": date(2025, 6, 1), "progress_percent": 5,
                                           **other})

    assert run() == 0

    assert not AtRisk.objects.exists()


@pytest.mark.parametrize("touched, listed", [
    (date(2024, 6, 30), False),  # 365 days before: outside the window, as an order would be
    (date(2024, 7, 1), True),
])
@pytest.mark.parametrize("recorded", [True, False], ids=["activity", "start-only"])
def test_a_course_left_before_the_activity_window_is_history(touched, listed, recorded):
    customer = buyer(date(2025, 4, 1))
    EnrolmentFactory(customer=customer, started_on=touched, progress_percent=40,
                     last_activity_at=at(touched) if recorded else None)

    assert run() == int(listed)

    assert list(AtRisk.objects.values_list("abandoned_since", flat=True)) == (
        [touched] if listed else [])


@pytest.mark.parametrize("status, resolved_at", [
    (SupportTicket.Status.OPEN, None),
    (SupportTicket.Status.PENDING, None),
    (SupportTicket.Status.RESOLVED, at(date(2025, 7, 1), 0)),  # resolved only after the day
])
def test_an_open_complaint_is_a_reason(status, resolved_at):
    customer = buyer(date(2025, 5, 1))
    SupportTicketFactory(customer=customer, is_complaint=True, subject="Certificate never arrived",
                         opened_at=at(date(2025, 6, 10), 9), status=status,
                         resolved_at=resolved_at)

    assert run() == 1

    row = AtRisk.objects.get(customer=customer)
    assert reasons_of(row) == {**NO_REASON, "complaint_subject": "Certificate never arrived",
                               "complaint_opened_at": at(date(2025, 6, 10), 9)}
    assert atrisk.in_words(row) == ["Open complaint since 2025-06-10: Certificate never arrived"]


def test_a_complaint_without_subject_is_still_explained():
    customer = buyer(date(2025, 5, 1))
    SupportTicketFactory(customer=customer, is_complaint=True, subject="",
                         opened_at=at(date(2025, 6, 10), 9))

    run()

    assert atrisk.in_words(AtRisk.objects.get(customer=customer)) == [
        "Open complaint since 2025-06-10: (no subject)"]


@pytest.mark.parametrize("ticket", [
    pytest.param({"status": SupportTicket.Status.RESOLVED,
                  "resolved_at": at(date(2025, 6, 30), 23)}, id="resolved-by-the-day"),
    pytest.param({"status": SupportTicket.Status.CLOSED}, id="closed"),
    pytest.param({"is_complaint": False}, id="not-a-complaint"),
    pytest.param({"opened_at": at(date(2025, 7, 1), 0)}, id="opened-after-the-day"),
])
def test_a_resolved_later_or_ordinary_ticket_is_no_reason(ticket):
    customer = buyer(date(2025, 5, 1))
    SupportTicketFactory(customer=customer, **{
        "is_complaint": True, "subject": "Video will not play",
        "opened_at": at(date(2025, 6, 10), 9), "status": SupportTicket.Status.OPEN, **ticket})

    assert run() == 0

    assert not AtRisk.objects.exists()


@pytest.mark.parametrize("ended_on, ends", [
    (date(2025, 7, 31), " (ends 2025-07-31)"),
    (date(2025, 6, 30), " (ends 2025-06-30)"),  # its last day
    (None, ""),
])
def test_a_running_membership_set_not_to_renew_is_a_reason(ended_on, ends):
    customer = buyer(date(2025, 5, 1))
    MembershipFactory(customer=customer, plan="Pro yearly", started_on=date(2024, 8, 1),
                      ended_on=ended_on, auto_renew=False, cancelled_at=at(date(2025, 6, 1)))

    assert run() == 1

    row = AtRisk.objects.get(customer=customer)
    assert reasons_of(row) == {**NO_REASON, "membership_plan": "Pro yearly",
                               "membership_ends_on": ended_on}
    assert atrisk.in_words(row) == [f"Membership “Pro yearly” set not to renew{ends}"]


def test_of_two_memberships_set_not_to_renew_the_one_ending_first_is_named():
    customer = buyer(date(2025, 5, 1))
    MembershipFactory(customer=customer, plan="Open-ended", started_on=date(2024, 1, 1),
                      ended_on=None, auto_renew=False)
    MembershipFactory(customer=customer, plan="Pro yearly", started_on=date(2024, 8, 1),
                      ended_on=date(2025, 7, 31), auto_renew=False)

    run()

    row = AtRisk.objects.get()
    assert (row.membership_plan, row.membership_ends_on, row.reason_count) == (
        "Pro yearly", date(2025, 7, 31), 1)


@pytest.mark.parametrize("membership", [
    pytest.param({"auto_renew": True}, id="renewing"),
    pytest.param({"ended_on": date(2025, 6, 29)}, id="already-ended"),
    pytest.param({"started_on": date(2025, 7, 1), "ended_on": date(2025, 7, 31)},
                 id="starts-later"),
])
def test_a_renewing_ended_or_future_membership_is_no_reason(membership):
    customer = buyer(date(2025, 5, 1))
    MembershipFactory(customer=customer, **{
        "plan": "Pro yearly", "started_on": date(2024, 8, 1), "ended_on": date(2025, 7, 31),
        "auto_renew": False, **membership})

    assert run() == 0

    assert not AtRisk.objects.exists()


def test_a_registered_reason_adds_the_detractor_answer_without_a_column(registries):
    customer = buyer(date(2025, 5, 1))
    other = buyer(date(2025, 5, 1))
    atrisk.register_reason(detractor_reason(customer, 4))

    assert run() == 1

    row = AtRisk.objects.get()
    assert row.customer_id == customer.pk
    assert reasons_of(row) == {**NO_REASON, "details": {"detractor": {"score": 4}}}
    assert atrisk.in_words(row) == ["Detractor: answered 4 out of 10"]
    assert atrisk.codes_of(row) == ["detractor"]
    assert list(AtRisk.objects.filter(atrisk.reason("detractor").condition())) == [row]
    assert not AtRisk.objects.filter(customer=other).exists()


def test_days_and_cutoffs_follow_the_business_time_zone(rules):
    rules.TIME_ZONE = "Africa/Johannesburg"
    customer = buyer(date(2025, 5, 1))
    EnrolmentFactory(customer=customer, course=CourseFactory(title="Tax returns"),
                     started_on=date(2025, 4, 1), progress_percent=10,
                     last_activity_at=datetime(2025, 5, 31, 23, 30, tzinfo=SAST))  # 21:30 UTC
    not_yet = buyer(date(2025, 5, 1))
    EnrolmentFactory(customer=not_yet, started_on=date(2025, 4, 1), progress_percent=10,
                     last_activity_at=datetime(2025, 6, 1, 0, 30, tzinfo=SAST))  # 31 May UTC
    late = buyer(date(2025, 5, 1))
    SupportTicketFactory(customer=late, is_complaint=True,
                         opened_at=datetime(2025, 7, 1, 0, 30, tzinfo=SAST))  # 30 June UTC

    assert run() == 1

    row = AtRisk.objects.get()
    assert (row.customer_id, row.abandoned_since) == (customer.pk, date(2025, 5, 31))
    assert atrisk.in_words(row) == [
        "Left “Tax returns” unfinished at 10 %, no activity since 2025-05-31"]


def test_the_complaint_is_dated_in_the_business_time_zone(rules):
    rules.TIME_ZONE = "Africa/Johannesburg"
    customer = buyer(date(2025, 5, 1))
    SupportTicketFactory(customer=customer, is_complaint=True, subject="Locked out",
                         opened_at=datetime(2025, 6, 10, 0, 30, tzinfo=SAST))  # 9 June UTC

    run()

    assert atrisk.in_words(AtRisk.objects.get()) == ["Open complaint since 2025-06-10: Locked out"]


# Who is listed ---------------------------------------------------------------------------------


def test_a_customer_without_a_reason_is_not_listed():
    customer = buyer(date(2025, 4, 30), date(2025, 5, 31), date(2025, 6, 20))
    EnrolmentFactory(customer=customer, started_on=date(2025, 5, 1), progress_percent=60,
                     last_activity_at=at(date(2025, 6, 25)))
    MembershipFactory(customer=customer, started_on=date(2025, 1, 1), auto_renew=True)

    assert run() == 0

    assert not AtRisk.objects.exists()
    assert CustomerPrediction.objects.filter(customer=customer, as_of=AS_OF).exists()


def test_a_customer_whose_last_order_is_outside_the_window_is_gone_not_at_risk():
    gone = buyer(AS_OF - timedelta(days=365))
    still = buyer(AS_OF - timedelta(days=364))
    for customer in (gone, still):
        SupportTicketFactory(customer=customer, is_complaint=True, subject="Refund, please",
                             opened_at=at(date(2025, 6, 1)))

    assert run() == 1

    assert list(AtRisk.objects.values_list("customer_id", "days_since_last")) == [
        (still.pk, 364)]
    assert CustomerPrediction.objects.filter(customer=gone, as_of=AS_OF).exists()


def test_a_refunded_order_does_not_keep_a_customer_active():
    customer = buyer(date(2024, 5, 1))
    OrderFactory(customer=customer, ordered_at=at(date(2025, 6, 1)), status="refunded")
    SupportTicketFactory(customer=customer, is_complaint=True, opened_at=at(date(2025, 6, 1)))

    assert run() == 0

    assert not AtRisk.objects.exists()


def test_a_customer_with_several_reasons_gets_them_all(registries):
    customer = buyer(date(2025, 1, 1), date(2025, 1, 31), date(2025, 3, 2))
    EnrolmentFactory(customer=customer, course=CourseFactory(title="Payroll"),
                     started_on=date(2025, 1, 31), progress_percent=15,
                     last_activity_at=at(date(2025, 2, 14)))
    SupportTicketFactory(customer=customer, is_complaint=True, subject="Charged twice",
                         opened_at=at(date(2025, 3, 3), 8))
    MembershipFactory(customer=customer, plan="All-access", started_on=date(2025, 1, 1),
                      ended_on=date(2025, 12, 31), auto_renew=False)
    atrisk.register_reason(detractor_reason(customer, 2))

    assert run() == 1

    row = AtRisk.objects.get()
    assert reasons_of(row) == {
        "low_active": False, "overdue": True, "abandoned_course": "Payroll",
        "abandoned_progress": 15, "abandoned_since": date(2025, 2, 14),
        "complaint_subject": "Charged twice", "complaint_opened_at": at(date(2025, 3, 3), 8),
        "membership_plan": "All-access", "membership_ends_on": date(2025, 12, 31),
        "details": {"detractor": {"score": 2}}, "reason_count": 5,
    }
    assert atrisk.in_words(row) == [
        "Overdue: 120 days since the last order; usually every 30 days",
        "Open complaint since 2025-03-03: Charged twice",
        "Detractor: answered 2 out of 10",
        "Left “Payroll” unfinished at 15 %, no activity since 2025-02-14",
        "Membership “All-access” set not to renew (ends 2025-12-31)",
    ]


def test_scoring_a_day_again_replaces_its_rows():
    customer = buyer(date(2025, 5, 1))
    ticket = SupportTicketFactory(customer=customer, is_complaint=True, subject="Slow answers",
                                  opened_at=at(date(2025, 6, 10)))
    other = buyer(date(2025, 5, 2))
    SupportTicketFactory(customer=other, is_complaint=True, subject="No invoice",
                         opened_at=at(date(2025, 6, 11)))
    yesterday = buyer(date(2025, 5, 3))
    SupportTicketFactory(customer=yesterday, is_complaint=True, opened_at=at(date(2025, 6, 1)))
    run(date(2025, 6, 29))
    assert run() == 3

    assert run() == 3
    assert AtRisk.objects.filter(as_of=AS_OF).count() == 3

    ticket.status, ticket.resolved_at = SupportTicket.Status.RESOLVED, at(date(2025, 6, 20))
    ticket.save()
    assert atrisk.score(AS_OF) == 2
    assert set(AtRisk.objects.filter(as_of=AS_OF).values_list("customer_id", flat=True)) == {
        other.pk, yesterday.pk}
    assert AtRisk.objects.filter(as_of=date(2025, 6, 29)).count() == 3  # another day: untouched


def test_score_and_value_at_risk_are_the_predictions(modelled):
    customer = buyer(*(AS_OF - timedelta(days=d) for d in (200, 170, 140, 110)), amount="500.00")

    run()

    rows = AtRisk.objects.filter(as_of=AS_OF)
    assert rows.filter(customer=customer).exists() and rows.count() > 1
    found = {p.customer_id: p for p in CustomerPrediction.objects.filter(as_of=AS_OF)}
    for row in rows:
        prediction = found[row.customer_id]
        assert (row.score, row.value_at_risk, row.predicted_value_12m,
                row.probability_active) == (
            prediction.no_purchase_90d, prediction.value_at_risk,
            prediction.predicted_value_12m, prediction.probability_active)
    assert rows.get(customer=customer).value_at_risk > 0


def test_without_stored_predictions_nothing_is_scored():
    customer = buyer(date(2025, 5, 1))
    SupportTicketFactory(customer=customer, is_complaint=True, opened_at=at(date(2025, 6, 1)))
    predictions.fit(AS_OF)  # a manual fit stores no predictions

    assert atrisk.score(AS_OF) == 0

    assert not AtRisk.objects.exists()


# Back-test -------------------------------------------------------------------------------------


def test_quality_counts_ties_as_halves():
    rank = np.array([3.0, 2.0, 2.0, 1.0])
    lost = np.array([True, True, False, False])

    # Pairs (lost, kept): 3>2 1, 3>1 1, 2=2 ½, 2>1 1 → 3.5 of 4.
    assert atrisk._quality(rank, lost) == {
        "precision_at_100": None, "precision_at_1000": None, "auc": 0.875}


def test_quality_takes_the_top_k_and_breaks_ties_by_position():
    # 101 equal scores: the first 100 by position, of whom the first did buy.
    rank = np.ones(101)
    lost = np.array([False] + [True] * 100)

    assert atrisk._quality(rank, lost) == {
        "precision_at_100": 99.0, "precision_at_1000": None, "auc": 0.5}


def test_quality_of_a_perfect_ranking():
    rank = np.arange(1200, dtype=float)
    lost = rank >= 400  # the 800 highest did not buy

    assert atrisk._quality(rank, lost) == {
        "precision_at_100": 100.0, "precision_at_1000": 80.0, "auc": 1.0}


@pytest.mark.parametrize("lost", [np.ones(5, dtype=bool), np.zeros(5, dtype=bool)])
def test_quality_has_no_auc_with_one_class(lost):
    assert atrisk._quality(np.arange(5.0), lost)["auc"] is None


def test_backtest_compares_the_score_and_recency_with_who_bought_afterwards():
    day = date(2025, 3, 31)  # the 90 days after: 1 April to 29 June
    buyer(date(2024, 6, 30))  # lost: nothing after
    back = buyer(date(2025, 1, 30))
    buyer(date(2025, 6, 29), customer=back)  # day 90: bought
    regular_lost = buyer(date(2024, 10, 31), date(2024, 11, 30), date(2024, 12, 31),
                         date(2025, 1, 31))
    buyer(date(2025, 6, 30), customer=regular_lost)  # day 91: too late, lost
    regular = buyer(date(2024, 12, 15), date(2025, 1, 15), date(2025, 2, 15), date(2025, 3, 15),
                    date(2025, 3, 30))
    buyer(date(2025, 4, 20), customer=regular)
    refunded = buyer(date(2025, 1, 29))
    OrderFactory(customer=refunded, ordered_at=at(date(2025, 4, 10)), status="refunded")
    gone = buyer(date(2024, 3, 1))  # 395 days before: not active, not counted
    buyer(date(2025, 4, 5), customer=gone)

    result = atrisk.backtest(day)

    # Scores (simple rule, exp(-rate × 90 / 365.25)) and days since the last order:
    #   lost:  once 0.78 / 274, regular_lost 0.37 / 59, refunded 0.78 / 61
    #   kept:  back 0.78 / 60, regular 0.29 / 1
    # Score pairs: ½ + 1, 0 + 1, ½ + 1 → 4 of 6. Recency: 1 + 1, 0 + 1, 1 + 1 → 5 of 6.
    assert result == {
        "as_of": "2025-03-31", "until": "2025-06-29", "customers": 5, "did_not_buy": 3,
        "base_rate": 60.0, "method": "fallback",
        "score": {"precision_at_100": None, "precision_at_1000": None, "auc": 0.667},
        "recency_baseline": {"precision_at_100": None, "precision_at_1000": None,
                             "auc": 0.833},
    }
    assert not ClvFit.objects.exists() and not AtRisk.objects.exists()  # nothing stored


def test_backtest_of_a_day_without_customers():
    assert atrisk.backtest(date(2025, 3, 31)) == {
        "as_of": "2025-03-31", "until": "2025-06-29", "customers": 0, "did_not_buy": 0,
        "base_rate": None, "method": "fallback",
        "score": {"precision_at_100": None, "precision_at_1000": None, "auc": None},
        "recency_baseline": {"precision_at_100": None, "precision_at_1000": None, "auc": None},
    }


def test_backtest_ranks_by_the_model_when_it_fits(modelled):
    result = atrisk.backtest(AS_OF - timedelta(days=90))

    assert result["method"] == "model"
    assert 0 < result["did_not_buy"] < result["customers"]
    assert result["score"]["auc"] is not None and result["recency_baseline"]["auc"] is not None


@pytest.mark.parametrize("today, days", [
    (date(2025, 6, 15), [date(2025, 2, 28), date(2025, 1, 31), date(2024, 12, 31)]),
    (date(2025, 6, 28), [date(2025, 2, 28), date(2025, 1, 31), date(2024, 12, 31)]),
    (date(2025, 6, 29), [date(2025, 3, 31), date(2025, 2, 28), date(2025, 1, 31)]),
    (date(2024, 5, 29), [date(2024, 2, 29), date(2024, 1, 31), date(2023, 12, 31)]),
])
def test_backtest_days_are_month_ends_with_90_complete_days_after(today, days):
    assert atrisk.backtest_days(today) == days


def test_stored_backtests_are_computed_once():
    assert atrisk.stored_backtests(date(2025, 6, 15)) == []  # no orders: nothing to test

    with time_machine.travel(datetime(2025, 6, 15, 1, tzinfo=UTC), tick=False):
        buyer(date(2024, 6, 30))
        buyer(date(2024, 11, 30), date(2025, 3, 1))
    with time_machine.travel(datetime(2025, 6, 16, 1, tzinfo=UTC), tick=False):
        first = atrisk.stored_backtests(date(2025, 6, 15))
    with time_machine.travel(datetime(2025, 6, 16, 2, tzinfo=UTC), tick=False):
        again = atrisk.stored_backtests(date(2025, 6, 15))

    assert [r["as_of"] for r in first] == ["2025-02-28", "2025-01-31", "2024-12-31"]
    assert [r["did_not_buy"] for r in first] == [1, 1, 1]
    assert again == first
    stored = StoredReport.objects.filter(kind=atrisk.BACKTEST_REPORT)
    assert sorted(stored.values_list("key", "depends_until")) == [
        ("2024-12-31", date(2025, 3, 31)), ("2025-01-31", date(2025, 5, 1)),
        ("2025-02-28", date(2025, 5, 29))]
    assert {r.computed_at for r in stored} == {datetime(2025, 6, 16, 1, tzinfo=UTC)}


# Pruning ---------------------------------------------------------------------------------------


def test_prune_keeps_month_ends_and_recent_days():
    customer = CustomerFactory()
    days = [date(2024, 2, 28), date(2024, 2, 29), date(2025, 4, 15), date(2025, 4, 30),
            date(2025, 5, 25), date(2025, 5, 26), date(2025, 6, 30)]
    for day in days:
        AtRisk.objects.create(as_of=day, customer=customer, score=0.9,
                              value_at_risk=Decimal("10.00"), predicted_value_12m=Decimal("20.00"),
                              probability_active=0.3, low_active=True, days_since_last=100,
                              reason_count=1)

    # The cutoff is 26 May: older days go unless they end a month.
    assert atrisk.prune(keep_days=35, today=date(2025, 6, 30)) == 3

    assert list(AtRisk.objects.order_by("as_of").values_list("as_of", flat=True)) == [
        date(2024, 2, 29), date(2025, 4, 30), date(2025, 5, 26), date(2025, 6, 30)]

