"""factory_boy factories. Defaults are minimal: a test sets every value it asserts on."""

from datetime import UTC, date, datetime
from decimal import Decimal

import factory

from retention import models


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Customer

    external_id = factory.Sequence(lambda n: f"cust-{n:05d}")
    email = factory.LazyAttribute(lambda c: f"{c.external_id}@example.com")
    name = factory.Sequence(lambda n: f"Customer {n}")


class OrganisationFactory(CustomerFactory):
    customer_type = models.Customer.Type.ORGANISATION
    sector = models.Customer.Sector.COMPANY
    organisation_name = factory.Sequence(lambda n: f"Org {n} Ltd")


class CourseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Course

    code = factory.Sequence(lambda n: f"course-{n}")
    title = factory.Sequence(lambda n: f"Course {n}")
    price = Decimal("100.00")
    launched_on = date(2024, 1, 1)
    category = "business"


class BundleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Bundle

    code = factory.Sequence(lambda n: f"bundle-{n}")
    title = factory.Sequence(lambda n: f"Bundle {n}")
    price = Decimal("250.00")
    launched_on = date(2024, 1, 1)


class OrderFactory(factory.django.DjangoModelFactory):
    """An order written straight to the table; call summaries.refresh() when a test needs them."""

    class Meta:
        model = models.Order

    external_id = factory.Sequence(lambda n: f"order-{n:06d}")
    customer = factory.SubFactory(CustomerFactory)
    ordered_at = datetime(2025, 1, 1, 12, tzinfo=UTC)
    amount = Decimal("100.00")
    currency = "ZAR"
    fingerprint = factory.Sequence(lambda n: f"{n:032x}")


class OrderLineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.OrderLine

    order = factory.SubFactory(OrderFactory)
    position = factory.Sequence(lambda n: n + 1)
    course = factory.SubFactory(CourseFactory)
    price = Decimal("100.00")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Membership

    external_id = factory.Sequence(lambda n: f"mem-{n:05d}")
    customer = factory.SubFactory(CustomerFactory)
    plan = "All-access"
    interval = models.Membership.Interval.MONTH
    price = Decimal("199.00")
    started_on = date(2025, 1, 1)


class EnrolmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Enrolment

    customer = factory.SubFactory(CustomerFactory)
    course = factory.SubFactory(CourseFactory)
    started_on = date(2025, 1, 1)


class SupportTicketFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.SupportTicket

    external_id = factory.Sequence(lambda n: f"tick-{n:05d}")
    customer = factory.SubFactory(CustomerFactory)
    opened_at = datetime(2025, 1, 1, 9, tzinfo=UTC)
