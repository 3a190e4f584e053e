"""Two imports of the same orders at the same moment: nothing duplicated, nothing lost.

PostgreSQL only: SQLite lets one writer at a time, so there is no overlap to test.
"""

import io
import threading

import pytest
from django.core.management import call_command
from django.db import connection, connections

from retention.sales import summaries
from retention.sales.models import Customer, Order, OrderLine
from tests.factories import CourseFactory, CustomerFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_two_simultaneous_imports_of_one_file_write_each_order_once(tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("needs concurrent writers (PostgreSQL)")
    CourseFactory(code="PY101")
    CourseFactory(code="SQL201")
    # Known customers: neither import then waits on the other's new customer rows,
    # so both decide which orders are new before either commits.
    for n in range(40):
        CustomerFactory(external_id=f"C-{n}")
    rows = "".join(
        f"A-{n},C-{n % 40},2025-01-{1 + n % 28:02d},{100 + n}.00,,,paid,PY101|SQL201\n"
        for n in range(400)
    )
    path = tmp_path / "orders.csv"
    path.write_text("order_id,customer_id,ordered_at,amount,email,name,status,items\n" + rows)
    start, failures = threading.Barrier(2), []

    def run_import():
        try:
            start.wait()
            call_command("import_orders", str(path), stdout=io.StringIO(), stderr=io.StringIO())
        except Exception as exc:  # noqa: BLE001  (reported by the assertion below)
            failures.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run_import) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert failures == []
    assert Order.objects.count() == 400
    assert OrderLine.objects.count() == 800
    assert Customer.objects.count() == 40
    assert not summaries.stale().exists()
