"""Every CSV the application writes neutralises text a spreadsheet would run as a formula."""

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.urls import get_resolver

from retention.figures import segments
from retention.safetext import SpreadsheetWriter, spreadsheet_cell
from retention.sales import summaries
from retention.value import atrisk, predictions
from retention.value.models import ClvFit
from tests.factories import CustomerFactory, OrderFactory

pytestmark = pytest.mark.django_db
DAY = date(2025, 6, 30)
HYPERLINK = '=HYPERLINK("http://evil.example","x")'
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@pytest.mark.parametrize(("value", "cell"), [
    (HYPERLINK, "'" + HYPERLINK),
    ("=1+1", "'=1+1"),
    ("+44 20 7946 0000", "'+44 20 7946 0000"),
    ("-2+3", "'-2+3"),
    ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
    ("\t=1", "'\t=1"),
    ("\r=1", "'\r=1"),
    ("Ann = the boss", "Ann = the boss"),  # only a leading character counts
    (Decimal("-12.50"), "-12.50"),  # real numbers are left alone
    (-3, "-3"),
    ("-12.50", "-12.50"),  # and text that is exactly a number
    ("+5", "+5"),
    (None, ""),
])
def test_a_cell_is_neutralised_only_when_a_spreadsheet_would_run_it(value, cell):
    assert spreadsheet_cell(value) == cell


def test_the_writer_quotes_as_csv_after_neutralising():
    line = SpreadsheetWriter().writerow([HYPERLINK, 7])
    assert next(csv.reader(io.StringIO(line))) == ["'" + HYPERLINK, "7"]


def _csv_routes() -> list[str]:
    """The name of every URL of the application whose path ends in .csv."""
    return sorted(pattern.name for pattern in get_resolver().url_patterns
                  if str(getattr(pattern, "pattern", "")).endswith(".csv"))


# What each CSV needs in its query to list the planted customer (the rest need nothing).
QUERIES = {
    "metrics-customers-csv": {"period": "custom", "start": "2024-07-01", "end": "2025-06-30",
                              "set": "buyers"},
    "metrics-csv": {"period": "custom", "start": "2024-07-01", "end": "2025-06-30"},
    "trend-csv": {},
}


@pytest.fixture
def planted(settings):
    """A customer whose every text field is a formula, with orders, a prediction and a risk."""
    settings.RETENTION_CLV_MIN_CUSTOMERS = 200
    evil = CustomerFactory(external_id="=1+1", name=HYPERLINK, email="=cmd@evil.example",
                           acquisition_source="+ads")
    for ago in (300, 270, 240, 210, 120):
        OrderFactory(customer=evil, amount=Decimal("400.00"),
                     ordered_at=datetime.combine(DAY - timedelta(days=ago), datetime.min.time(),
                                                 tzinfo=UTC).replace(hour=10))
    summaries.refresh()
    predictions.fit(DAY, purpose=ClvFit.Purpose.NIGHTLY, store=True)
    atrisk.score(DAY)
    segments.snapshot(DAY)
    return evil


@pytest.fixture
def manager_client(client, view_only_manager):
    client.force_login(view_only_manager)
    return client


def test_every_csv_download_neutralises_a_customer_named_as_a_formula(planted, manager_client):
    from django.urls import reverse

    routes = _csv_routes()
    assert len(routes) == 9, routes  # every export of the managers' pages is found
    seen_the_name = []
    for name in routes:
        response = manager_client.get(reverse(name), QUERIES.get(name, {}))
        assert response.status_code == 200, name
        body = (b"".join(response.streaming_content) if response.streaming
                else response.content).decode()
        cells = [cell for row in csv.reader(io.StringIO(body)) for cell in row]
        for cell in cells:
            assert not cell.startswith(FORMULA_START) or spreadsheet_cell(cell) == cell, (
                name, cell)
        if "'" + HYPERLINK in cells:
            seen_the_name.append(name)
            assert "'=cmd@evil.example" in cells or name == "metrics-customers-csv", name
    # The lists of customers carry the name, neutralised: the planted customer is in them.
    assert {"metrics-customers-csv", "at-risk-csv", "value-csv"} <= set(seen_the_name)
