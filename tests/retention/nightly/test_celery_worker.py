"""A task travels through the real broker to a real worker process and changes the database.

Runs when CELERY_BROKER_URL names a broker (CI's PostgreSQL pass sets it) and the
test database is one a second process can open (PostgreSQL; the SQLite test
database lives in memory). The worker listens on a queue of its own, so no
other worker on the machine can take the task.
"""

import os
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from retention import tasks
from retention.celery import app
from tests.factories import CustomerFactory, OrderFactory

ROOT = Path(__file__).resolve().parents[3]

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not os.environ.get("CELERY_BROKER_URL"),
        reason="set CELERY_BROKER_URL (e.g. redis://127.0.0.1:6379/15) to run the real-worker test",
    ),
]


@pytest.fixture
def worker(monkeypatch):
    """Start `celery worker` on a private queue against the test database; stop it after."""
    if connection.vendor != "postgresql":
        pytest.skip("the worker needs a database it can share: run with DATABASE_URL=postgres://…")
    db = connection.settings_dict
    queue = f"test-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "retention", "worker", "--pool=solo",
         "--queues", queue, "--without-gossip", "--without-mingle", "--loglevel=INFO"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    # The test process sends through the broker rather than running tasks in-process.
    monkeypatch.setitem(app.conf, "task_always_eager", False)
    yield queue
    process.terminate()
    try:
        output, _ = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    print(output[-4000:])  # shown by pytest when the test fails


def wait_for(condition, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def test_a_task_sent_through_the_broker_is_run_by_the_worker(worker):
    assert settings.CELERY_BROKER_URL
    customer = CustomerFactory()
    OrderFactory(customer=customer, amount=Decimal("120.00"))
    OrderFactory(customer=customer, amount=Decimal("30.00"))
    assert customer.order_count == 0  # the cached summary has not been computed yet

    tasks.refresh_summaries.apply_async(args=[[customer.pk]], queue=worker)

    assert wait_for(lambda: type(customer).objects.get(pk=customer.pk).order_count == 2)
    customer.refresh_from_db()
    assert customer.total_spent == Decimal("150.00")
