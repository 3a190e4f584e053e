"""Every list costs the same few queries however many rows it returns."""

from decimal import Decimal

import pytest

from retention.sales import catalogue
from tests.factories import (
    BundleFactory,
    CourseFactory,
    CustomerFactory,
    EnrolmentFactory,
    MembershipFactory,
    OrderFactory,
    OrderLineFactory,
    SupportTicketFactory,
)

pytestmark = pytest.mark.django_db

# Every request: the token with its user, then the Platform group check.
AUTH = 2


def customers(n):
    referrer = CustomerFactory()
    CustomerFactory.create_batch(n - 1, referred_by=referrer)
    return n


def courses(n):
    follow_ons = CourseFactory.create_batch(2)
    for course in CourseFactory.create_batch(n - 2 if n > 2 else 0):
        course.follow_ons.set(follow_ons)
    return max(n, 2)


def bundles(n):
    included = CourseFactory.create_batch(2)
    for bundle in BundleFactory.create_batch(n):
        bundle.courses.set(included)
    return n


def price_changes(n):
    for index in range(n):
        offering = CourseFactory() if index % 2 else BundleFactory()
        offering.price += Decimal("1.00")
        catalogue.save_offering(offering)
    return n


def orders(n):
    bundle = BundleFactory()
    for order in OrderFactory.create_batch(n):
        OrderLineFactory(order=order)
        OrderLineFactory(order=order, course=None, bundle=bundle)
    return n


def memberships(n):
    MembershipFactory.create_batch(n)
    return n


def enrolments(n):
    EnrolmentFactory.create_batch(n)
    return n


def tickets(n):
    SupportTicketFactory.create_batch(n)
    return n


@pytest.mark.parametrize("n", [1, 25])
@pytest.mark.parametrize(
    ("url", "make", "queries"),
    [
        # count, customers joined with their referrer
        ("/api/v1/customers/", customers, AUTH + 2),
        # count, courses, their follow-ons
        ("/api/v1/courses/", courses, AUTH + 3),
        # count, bundles, their courses
        ("/api/v1/bundles/", bundles, AUTH + 3),
        # count, price changes joined with their course and bundle
        ("/api/v1/price-changes/", price_changes, AUTH + 2),
        # count, orders joined with their customer, lines joined with their course and bundle
        ("/api/v1/orders/", orders, AUTH + 3),
        # count, memberships joined with their customer
        ("/api/v1/memberships/", memberships, AUTH + 2),
        # count, enrolments joined with their customer and course
        ("/api/v1/enrolments/", enrolments, AUTH + 2),
        # count, tickets joined with their customer
        ("/api/v1/tickets/", tickets, AUTH + 2),
    ],
)
def test_list_queries_do_not_grow_with_rows(api_client, django_assert_max_num_queries, url, make,
                                            queries, n):
    rows = make(n)

    with django_assert_max_num_queries(queries):
        r = api_client.get(url, {"page_size": 1000})

    assert r.status_code == 200
    assert r.json()["count"] == rows
    assert len(r.json()["results"]) == rows
