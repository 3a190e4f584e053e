"""The price update's effect: the same number of days before and after, for two groups.

Prices of PY (100 -> 120) changed on 1 Jun 2025; SQL kept its price. Over 30 days each side:
  before (2 to 31 May): A buys PY for 100, B buys SQL for 50
  after  (1 to 30 Jun): A buys PY for 120, C buys SQL for 60 twice
"""

import io
import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from retention.figures import price_update
from retention.sales import catalogue
from tests.factories import CourseFactory, CustomerFactory, OrderFactory, OrderLineFactory

pytestmark = pytest.mark.django_db


def buy(customer, day, course, amount):
    order = OrderFactory(customer=customer, amount=Decimal(amount),
                         ordered_at=datetime.fromisoformat(day).replace(hour=12, tzinfo=UTC))
    OrderLineFactory(order=order, position=1, course=course, price=Decimal(amount))


@pytest.fixture
def update():
    py, sql = CourseFactory(code="PY", price=Decimal("100")), CourseFactory(code="SQL", price=Decimal("50"))
    py.price = Decimal("120")
    catalogue.save_offering(py, changed_at=datetime(2025, 6, 1, 8, tzinfo=UTC))
    a, b, c = (CustomerFactory(external_id=name) for name in "ABC")
    buy(a, "2025-05-10", py, "100")
    buy(b, "2025-05-20", sql, "50")
    buy(a, "2025-06-10", py, "120")
    buy(c, "2025-06-11", sql, "60")
    buy(c, "2025-06-12", sql, "60")


def test_the_metrics_before_and_after_for_everyone_and_the_buyers_of_repriced_courses(update):
    result = price_update.compare(date(2025, 6, 1), days=30)

    assert (result["before"], result["after"]) == (
        {"start": "2025-05-02", "end": "2025-05-31"}, {"start": "2025-06-01", "end": "2025-06-30"})
    assert [change["offering"] for change in result["changes"]] == ["PY"]
    everyone = result["all"]
    assert everyone["average_order_value"] == {
        "before": Decimal("75.00"), "after": Decimal("80.00"), "change": Decimal("5.00")}
    assert everyone["repeat_purchase_rate"]["after"] == Decimal("50.00")  # C of A, C
    buyers = result["buyers_of_repriced"]  # A only
    assert buyers["revenue_per_buyer"] == {
        "before": Decimal("100.00"), "after": Decimal("120.00"), "change": Decimal("20.00")}
    assert buyers["nps"] == {"before": None, "after": None, "change": None}


def test_the_latest_update_is_the_default_and_the_command_prints_json(update):
    out = io.StringIO()

    call_command("price_update_effect", "--days", "30", "--json", stdout=out)

    data = json.loads(out.getvalue())
    assert data["date"] == "2025-06-01" and data["all"]["average_order_value"]["after"] == 80.0


def test_a_date_without_a_price_change_is_explained(update, api_client):
    with pytest.raises(CommandError, match="no price change on 2025-05-01"):
        call_command("price_update_effect", "--date", "2025-05-01")
    response = api_client.get("/api/v1/metrics/price-update/", {"date": "2025-05-01"})
    assert response.status_code == 400 and "no price change on 2025-05-01" in response.json()["date"]
    ok = api_client.get("/api/v1/metrics/price-update/", {"date": "2025-06-01", "days": 30})
    assert ok.status_code == 200 and ok.json()["buyers_of_repriced"]["revenue_per_buyer"]["after"] == 120.0


def test_without_any_price_change_the_command_says_so():
    with pytest.raises(CommandError, match="no price change has been recorded"):
        call_command("price_update_effect")
