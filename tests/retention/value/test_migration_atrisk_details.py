"""The three-step migration that moved a detractor's answer out of its AtRisk column into the
details that every contributed reason uses: nothing is lost either way."""

from datetime import date
from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("retention", "0016_predicted_value_and_at_risk")]
AFTER = [("retention", "0019_atrisk_details_required")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def row(apps, customer, **fields):
    return apps.get_model("retention", "AtRisk").objects.create(
        as_of=date(2025, 6, 30), customer_id=customer.pk, score=0.8,
        value_at_risk=Decimal("10.00"), predicted_value_12m=Decimal("20.00"),
        probability_active=0.4, days_since_last=40, reason_count=1, **fields)


@pytest.fixture
def latest_schema_after():
    """Whatever the test leaves, the database ends at the latest migrations for the others."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_a_detractor_answer_moves_into_details_and_back(latest_schema_after):
    old = migrate(BEFORE)
    Customer = old.get_model("retention", "Customer")
    grumpy = Customer.objects.create(external_id="grumpy")
    quiet = Customer.objects.create(external_id="quiet")
    row(old, grumpy, detractor_score=3)
    row(old, quiet, overdue=True)

    new = migrate(AFTER)
    AtRisk = new.get_model("retention", "AtRisk")
    assert dict(AtRisk.objects.values_list("customer__external_id", "details")) == {
        "grumpy": {"detractor": {"score": 3}}, "quiet": {}}

    back = migrate(BEFORE)
    assert dict(back.get_model("retention", "AtRisk").objects.values_list(
        "customer__external_id", "detractor_score")) == {"grumpy": 3, "quiet": None}
