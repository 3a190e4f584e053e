"""Metric alerts: raised once, emailed once, with a link to the page behind them."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group

from retention import nightly
from retention.figures import alerts
from retention.figures.models import Alert, AlertRule
from tests.factories import CustomerFactory, OrderFactory

pytestmark = pytest.mark.django_db
NIGHT = date(2025, 8, 20)


def orders_on(*days):
    customer = CustomerFactory()
    for day in days:
        OrderFactory(customer=customer, amount=Decimal("10"),
                     ordered_at=datetime.fromisoformat(day).replace(hour=12, tzinfo=UTC))


@pytest.fixture
def history():
    # Two orders in each of May, June and July; four in August up to the 20th: +100 %.
    orders_on("2025-05-03", "2025-05-04", "2025-06-03", "2025-06-04", "2025-07-03", "2025-07-04",
              "2025-08-01", "2025-08-02", "2025-08-03", "2025-08-04")


@pytest.fixture
def manager(django_user_model):
    user = django_user_model.objects.create_user("boss", email="boss@example.com", is_staff=True)
    user.groups.add(Group.objects.get_or_create(name="Managers")[0])
    return user


def rule(**kwargs):
    return AlertRule.objects.create(**{"metric": "orders", "threshold_percent": Decimal("50"),
                                       "trailing_months": 3, **kwargs})


def test_a_sharp_rise_is_raised_once_and_emailed_once(
        history, manager, mailoutbox, django_capture_on_commit_callbacks, settings):
    settings.SITE_URL = "https://retention.example.com"
    rule(direction="up")

    with django_capture_on_commit_callbacks(execute=True):
        raised = alerts.check(NIGHT)
    with django_capture_on_commit_callbacks(execute=True):
        again = alerts.check(NIGHT)

    assert len(raised) == 1 and again == []
    alert = Alert.objects.get()
    assert (alert.value, alert.trailing_average, alert.change_percent) == (
        Decimal("4.00"), Decimal("2.00"), Decimal("100.00"))
    assert alert.emailed_at is not None
    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert mail.to == ["boss@example.com"] and mail.subject == "Orders +100 % against the usual, this month to date"
    assert "https://retention.example.com/metrics/?period=this_month" in mail.body
    assert "Orders for August 2025 to date is 4, +100 % against the average of the same days" \
        in mail.body and "Rule: Orders rises by 50 %." in mail.body


@pytest.mark.parametrize(("direction", "threshold", "fires"),
                         [("down", "50", False), ("either", "100", True), ("up", "150", False)])
def test_direction_and_threshold_decide(history, direction, threshold, fires):
    rule(direction=direction, threshold_percent=Decimal(threshold))

    assert bool(alerts.check(NIGHT)) is fires


def test_an_alert_without_managers_to_tell_is_emailed_once_there_are(
        history, django_user_model, mailoutbox, django_capture_on_commit_callbacks):
    rule(direction="up")
    with django_capture_on_commit_callbacks(execute=True):
        alerts.check(NIGHT)
    assert mailoutbox == [] and Alert.objects.get().emailed_at is None

    boss = django_user_model.objects.create_user("boss", email="boss@example.com")
    boss.groups.add(Group.objects.get_or_create(name="Managers")[0])
    with django_capture_on_commit_callbacks(execute=True):
        alerts.check(NIGHT)

    assert len(mailoutbox) == 1 and Alert.objects.get().emailed_at is not None


def test_the_nightly_job_checks_the_rules(history, manager, mailoutbox,
                                          django_capture_on_commit_callbacks):
    rule(direction="up")

    with django_capture_on_commit_callbacks(execute=True):
        outcomes = {name: outcome for name, outcome, _seconds in nightly.run(NIGHT)}

    assert outcomes["alerts"] == "orders +100.00 % in 2025-08"
    assert len(mailoutbox) == 1


def test_the_month_to_date_is_compared_with_the_same_days_of_earlier_months():
    """Three days into August against whole months would be a fall of about 90 % every
    month; against the first three days of May, June and July it is no change."""
    for month in ("05", "06", "07"):
        orders_on(f"2025-{month}-02", *(f"2025-{month}-{day:02d}" for day in range(10, 28)))
    orders_on("2025-08-02")
    rule(direction="down", threshold_percent=Decimal("30"))

    assert alerts.evaluate(AlertRule.objects.get(), date(2025, 8, 3)) is None
    assert alerts.check(date(2025, 8, 3)) == [] and not Alert.objects.exists()


def test_a_real_fall_against_the_same_days_fires():
    for month in ("05", "06", "07"):
        orders_on(f"2025-{month}-02", f"2025-{month}-03")
    orders_on("2025-08-20")  # none by the 3rd
    orders_on("2025-08-02")  # one by the 3rd, against two in each earlier month's first days
    rule(direction="down", threshold_percent=Decimal("30"))

    value, average, change = alerts.evaluate(AlertRule.objects.get(), date(2025, 8, 3))
    assert (value, average, change) == (Decimal("1"), Decimal("2.00"), Decimal("-50.00"))
