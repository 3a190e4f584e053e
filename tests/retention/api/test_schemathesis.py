"""Property-based tests of the REST API against its own OpenAPI schema (schemathesis).

Every operation of /api/schema/ is called with generated requests, valid and
invalid, as the sales platform. No response may be a server error, and every
documented response must match its schema. Runs are bounded and derandomized
so they take the same (short) time and find the same cases on every run.
"""

from decimal import Decimal

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from retention.sales import catalogue
from tests.factories import (
    BundleFactory,
    CourseFactory,
    CustomerFactory,
    EnrolmentFactory,
    MembershipFactory,
    OrderLineFactory,
    SupportTicketFactory,
)


@pytest.fixture(autouse=True)
def keep_the_test_connection():
    """Call the WSGI app inside the test's transaction without losing the connection.

    Django closes "old" database connections when a request starts and ends;
    inside a test's transaction that would drop it. Django's test client
    turns this off in the same way.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


# Loaded at collection, through the app: serving the schema needs no database.
schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())


@pytest.fixture
def token(platform_user):
    """The platform's token, with the records the schema's examples name (C-1, py-101, …).

    The examples are the requests that pass validation and write, so the
    success paths and their responses are checked as well as the refusals.
    """
    customer = CustomerFactory(external_id="C-1")
    course = CourseFactory(code="py-101", price=Decimal("1200.00"))
    BundleFactory(code="data-pack").courses.add(course)
    OrderLineFactory(order__external_id="A-1", order__customer=customer, course=course)
    MembershipFactory(external_id="M-1", customer=customer)
    EnrolmentFactory(customer=customer, course=course)
    SupportTicketFactory(external_id="T-1", customer=customer)
    course.price = Decimal("1100.00")
    catalogue.save_offering(course)
    return Token.objects.create(user=platform_user).key


@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
@pytest.mark.django_db
def test_api_never_fails_and_answers_as_documented(case, token):
    case.call_and_validate(
        headers={"Authorization": f"Token {token}"},
        checks=[not_a_server_error, response_schema_conformance],
    )
