"""Cohort retention against a table worked out by hand.

Business zone UTC+2; range 1 Jan to 15 Mar 2025 (as-of 15 Mar):
  A  first 2025-01-01 00:30 local (31 Dec 23:30 UTC: January, not December), again 2025-02-10
  B  first 2025-01-20, again 2025-03-20 (after the as-of date: counts nowhere)
  C  first 2024-12-15 (December cohort: before the range), buys 2025-01-05
  D  first 2025-03-01, refunded 2025-02-01 (a refund counts nowhere)
  E  first order 2025-03-20, after the as-of date: in no cohort
"""

import io
import json
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command

from retention.figures import cohorts, metrics
from retention.sales import summaries
from tests.factories import CustomerFactory, OrderFactory

pytestmark = pytest.mark.django_db
ZONE = ZoneInfo("Africa/Johannesburg")


def buy(customer, when, amount, status="paid"):
    OrderFactory(customer=customer, amount=Decimal(amount), status=status,
                 ordered_at=datetime.fromisoformat(when).replace(tzinfo=ZONE))


@pytest.fixture
def history(settings):
    settings.TIME_ZONE = "Africa/Johannesburg"
    a, b, c, d, e = (CustomerFactory(external_id=name) for name in "ABCDE")
    buy(a, "2025-01-01 00:30", "100")
    buy(a, "2025-02-10 12:00", "40")
    buy(b, "2025-01-20 12:00", "60")
    buy(b, "2025-03-20 12:00", "999")
    buy(c, "2024-12-15 12:00", "10")
    buy(c, "2025-01-05 12:00", "20")
    buy(d, "2025-02-01 12:00", "30", status="refunded")
    buy(d, "2025-03-01 12:00", "70")
    buy(e, "2025-03-20 12:00", "5")
    summaries.refresh()  # the factories write orders past the import's summary upkeep


def test_the_hand_worked_table(history):
    result = cohorts.table(date(2025, 1, 1), date(2025, 3, 15))

    assert result == {
        "as_of": "2025-03-15",
        "cohorts": [
            {"cohort": "2025-01", "size": 2,  # A, B
             "retention": [Decimal("100.00"), Decimal("50.00"), Decimal("0.00")],
             "revenue": [Decimal("160.00"), Decimal("40.00"), Decimal("0.00")]},
            {"cohort": "2025-02", "size": 0,  # nobody started in February
             "retention": [None, None], "revenue": [Decimal("0.00"), Decimal("0.00")]},
            {"cohort": "2025-03", "size": 1,  # D; E's first order is after the as-of date
             "retention": [Decimal("100.00")], "revenue": [Decimal("70.00")]},
        ],
    }


def test_the_command_and_the_api_print_the_same_json(history, api_client):
    out = io.StringIO()
    call_command("cohort_retention", "--start", "2025-01-01", "--end", "2025-03-15", "--json",
                 stdout=out)

    response = api_client.get("/api/v1/metrics/cohorts/", {"start": "2025-01-01", "end": "2025-03-15"})

    data = json.loads(out.getvalue())
    assert response.status_code == 200 and response.json() == data
    assert data["cohorts"][0] == {"cohort": "2025-01", "size": 2, "retention": [100.0, 50.0, 0.0],
                                  "revenue": [160.0, 40.0, 0.0]}


def test_bad_ranges_are_explained(api_client):
    with pytest.raises(CommandError, match="is before the start"):
        call_command("cohort_retention", "--start", "2025-03-01", "--end", "2025-01-01")
    with pytest.raises(CommandError, match="use YYYY-MM-DD"):
        call_command("cohort_retention", "--start", "March", "--end", "2025-01-01")
    with pytest.raises(metrics.InvalidPeriod):
        cohorts.table(date(1, 1, 1), date(1, 2, 1))
    response = api_client.get("/api/v1/metrics/cohorts/", {"start": "2025-03-01", "end": "2025-01-01"})
    assert response.status_code == 400 and "end" in response.json()
