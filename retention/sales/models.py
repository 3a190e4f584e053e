"""The core domain: customers, the catalogue, orders, memberships, enrolments, tickets.

Money is a Decimal in the business currency (setting RETENTION_CURRENCY).
Records that come from the sales platform carry its identifier in `external_id`
(unique), which is how imports and API calls find them again: sending the same
record twice updates it rather than duplicating it.
"""

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower, Upper
from django.utils.translation import gettext_lazy as _

from retention.money import growth
from retention.sales.querysets import CustomerQuerySet, OrderQuerySet

MONEY = {"max_digits": 12, "decimal_places": 2}
NON_NEGATIVE = [MinValueValidator(Decimal("0"))]


class Customer(models.Model):
    """A person or an organisation that buys from the business.

    The `first_order_at` … `total_spent` fields cache a summary of the customer's
    counting (paid) orders; `retention.sales.summaries.refresh` keeps them in step
    with the orders table and the nightly job re-checks them.
    """

    class Type(models.TextChoices):
        INDIVIDUAL = "individual", _("Individual")
        ORGANISATION = "organisation", _("Organisation")

    class Sector(models.TextChoices):
        COMPANY = "company", _("Company")
        GOVERNMENT = "government", _("Government")
        MUNICIPALITY = "municipality", _("Municipality")
        INSTITUTION = "institution", _("Institution")

    external_id = models.CharField(
        _("customer id"), max_length=64, unique=True, help_text=_("The sales platform's id.")
    )
    email = models.EmailField(blank=True, db_index=True)
    name = models.CharField(max_length=200, blank=True)
    customer_type = models.CharField(
        _("type"), max_length=16, choices=Type.choices, default=Type.INDIVIDUAL
    )
    organisation_name = models.CharField(max_length=200, blank=True)
    sector = models.CharField(
        max_length=16,
        choices=Sector.choices,
        blank=True,
        help_text=_("Required for organisations, empty for individuals."),
    )
    birth_date = models.DateField(null=True, blank=True)
    marketing_consent = models.BooleanField(default=False)
    acquisition_source = models.CharField(
        max_length=50,
        blank=True,
        help_text=_("Where the customer came from, e.g. organic, paid_search, referral, partner."),
    )
    referred_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="referrals"
    )
    signed_up_at = models.DateTimeField(null=True, blank=True)
    # Raised by staff to revoke every link sent to the customer (retention/mail/links.py).
    # db_default too: the imports insert customers with SQL of their own.
    link_generation = models.PositiveIntegerField(
        default=0, db_default=0, editable=False,
        help_text=_("Links carry it; raising it revokes them all."))

    # Summary of counting (paid) orders, cached; see retention/sales/summaries.py.
    first_order_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_order_at = models.DateTimeField(null=True, blank=True, editable=False)
    order_count = models.PositiveIntegerField(default=0, editable=False)
    total_spent = models.DecimalField(**MONEY, default=Decimal("0"), editable=False)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CustomerQuerySet.as_manager()

    class Meta:
        ordering = ["external_id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(customer_type="individual") & Q(sector=""))
                | (Q(customer_type="organisation") & ~Q(sector="")),
                name="retention_customer_sector_matches_type",
                violation_error_message=_(
                    "An organisation needs a sector; an individual has none."
                ),
            ),
            models.CheckConstraint(
                condition=~Q(referred_by=models.F("pk")),
                name="retention_customer_not_own_referrer",
            ),
        ]
        # No indexes on the summary columns: every import rewrites them, and each
        # index would be rewritten too; the queries that read them scan all customers.
        indexes = [
            # Case-blind look-ups by address (fresh links, email-service webhooks): what
            # `email__iexact` compares on PostgreSQL.
            models.Index(Upper("email"), name="retention_customer_email_ci"),
        ]

    def __str__(self) -> str:
        return self.display_name or self.external_id

    @property
    def display_name(self) -> str:
        return self.organisation_name or self.name or self.email


# The customer types the figures split by: a type, or an organisation's sector.
CUSTOMER_TYPES = ("individual", "organisation", *Customer.Sector.values)


class Offering(models.Model):
    """What courses and bundles share: a code, a title, a price and a launch date."""

    code = models.SlugField(max_length=50, unique=True)
    title = models.CharField(max_length=200)
    price = models.DecimalField(**MONEY, validators=NON_NEGATIVE)
    launched_on = models.DateField(
        help_text=_("Launch date; an order before it is early access and still counts as new.")
    )
    is_active = models.BooleanField(_("on sale"), default=True, help_text=_("Still on sale."))
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} · {self.title}"


class Course(Offering):
    class Level(models.TextChoices):
        BEGINNER = "beginner", _("Beginner")
        INTERMEDIATE = "intermediate", _("Intermediate")
        ADVANCED = "advanced", _("Advanced")

    category = models.CharField(max_length=100, db_index=True)
    level = models.CharField(max_length=16, choices=Level.choices, default=Level.BEGINNER)
    follow_ons = models.ManyToManyField(
        "self",
        symmetrical=False,
        blank=True,
        related_name="prerequisite_of",
        help_text=_("Courses that naturally follow this one (used for recommendations)."),
    )

    class Meta(Offering.Meta):
        constraints = [
            models.CheckConstraint(condition=Q(price__gte=0), name="retention_course_price_gte_0"),
            # Imports match item codes case-blind, so codes must differ by more than case.
            models.UniqueConstraint(Lower("code"), name="retention_course_code_ci"),
        ]


class Bundle(Offering):
    courses = models.ManyToManyField(Course, related_name="bundles")

    class Meta(Offering.Meta):
        constraints = [
            models.CheckConstraint(condition=Q(price__gte=0), name="retention_bundle_price_gte_0"),
            # Imports match item codes case-blind, so codes must differ by more than case.
            models.UniqueConstraint(Lower("code"), name="retention_bundle_code_ci"),
        ]


class PriceChange(models.Model):
    """One change of a course's or a bundle's list price. Rows are history: never edited."""

    course = models.ForeignKey(
        Course, null=True, blank=True, on_delete=models.CASCADE, related_name="price_changes"
    )
    bundle = models.ForeignKey(
        Bundle, null=True, blank=True, on_delete=models.CASCADE, related_name="price_changes"
    )
    old_price = models.DecimalField(**MONEY)
    new_price = models.DecimalField(**MONEY)
    changed_at = models.DateTimeField(db_index=True)
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-changed_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(course__isnull=False, bundle__isnull=True)
                | Q(course__isnull=True, bundle__isnull=False),
                name="retention_pricechange_one_offering",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.offering.code}: {self.old_price} → {self.new_price}"

    @property
    def offering(self) -> Offering:
        return self.course or self.bundle

    @property
    def change_percent(self) -> Decimal | None:
        return growth(self.new_price, self.old_price)


class Order(models.Model):
    """One purchase. Only `paid` orders count in any figure (spec "Inputs")."""

    class Status(models.TextChoices):
        PAID = "paid", _("Paid")
        REFUNDED = "refunded", _("Refunded")
        CANCELLED = "cancelled", _("Cancelled")

    external_id = models.CharField(
        _("order id"),
        max_length=64,
        unique=True,
        help_text=_(
            "The sales platform's order id; for imported rows without one, a key derived "
            "from the row's content (prefix 'row-')."
        ),
    )
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="orders")
    ordered_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PAID)
    amount = models.DecimalField(**MONEY, validators=NON_NEGATIVE, help_text=_("Net amount."))
    currency = models.CharField(max_length=3)
    coupon_code = models.CharField(max_length=50, blank=True)
    # Hash of everything an import or API call sets (see retention/sales/ingest.py);
    # tells "updated" from "unchanged" without comparing each column and line.
    fingerprint = models.CharField(max_length=32, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = OrderQuerySet.as_manager()

    class Meta:
        ordering = ["-ordered_at", "-pk"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="retention_order_amount_gte_0"),
            models.CheckConstraint(
                condition=Q(status__in=["paid", "refunded", "cancelled"]),
                name="retention_order_status_valid",
            ),
        ]
        indexes = [
            # Orders dated in a range (revenue, new-offering engagement, cohorts, referrals),
            # read from the index alone on PostgreSQL: `include` holds what those read.
            models.Index(fields=["ordered_at"], include=["customer", "status", "amount", "id"],
                         name="retention_order_date_cover"),
            # The period metrics (retention.figures.counting.per_customer) stream every customer's
            # counting orders in customer order from this index alone (an index-only
            # scan on PostgreSQL, which is what `include` is for); per-customer summaries
            # and "first order ever" look-ups use it too.
            models.Index(fields=["customer", "ordered_at"], include=["status", "amount"],
                         name="retention_order_customer_cover"),
            # The nightly job: orders written since its previous run.
            models.Index(fields=["updated_at"], name="retention_order_updated"),
        ]

    def __str__(self) -> str:
        return self.external_id

    @property
    def counts(self) -> bool:
        return self.status == self.Status.PAID


class OrderLine(models.Model):
    """A course or a bundle bought by an order, with the part of the amount it took."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveSmallIntegerField()
    course = models.ForeignKey(
        Course, null=True, blank=True, on_delete=models.PROTECT, related_name="order_lines"
    )
    bundle = models.ForeignKey(
        Bundle, null=True, blank=True, on_delete=models.PROTECT, related_name="order_lines"
    )
    price = models.DecimalField(**MONEY, validators=NON_NEGATIVE, help_text=_("Price paid."))

    class Meta:
        ordering = ["order", "position"]
        constraints = [
            models.UniqueConstraint(fields=["order", "position"], name="retention_line_position"),
            models.CheckConstraint(
                condition=Q(course__isnull=False, bundle__isnull=True)
                | Q(course__isnull=True, bundle__isnull=False),
                name="retention_line_one_offering",
            ),
            models.CheckConstraint(condition=Q(price__gte=0), name="retention_line_price_gte_0"),
        ]

    def __str__(self) -> str:
        return self.offering.code if self.offering else "?"

    @property
    def offering(self) -> Offering | None:
        return self.course or self.bundle


class Membership(models.Model):
    """A subscription plan held by a customer; renewals are billed as orders."""

    class Interval(models.TextChoices):
        MONTH = "month", _("Monthly")
        YEAR = "year", _("Yearly")

    external_id = models.CharField(_("membership id"), max_length=64, unique=True)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="memberships")
    plan = models.CharField(max_length=100, help_text=_("Plan name, e.g. All-access."))
    interval = models.CharField(max_length=5, choices=Interval.choices)
    price = models.DecimalField(**MONEY, validators=NON_NEGATIVE, help_text=_("Per interval."))
    started_on = models.DateField()
    ended_on = models.DateField(null=True, blank=True, help_text=_("Last day of access."))
    auto_renew = models.BooleanField(default=True)
    cancelled_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When the customer turned renewal off.")
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-started_on", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ended_on__isnull=True) | Q(ended_on__gte=models.F("started_on")),
                name="retention_membership_ends_after_start",
                violation_error_message=_("A membership cannot end before it starts."),
            ),
            models.CheckConstraint(
                condition=Q(price__gte=0), name="retention_membership_price_gte_0"
            ),
            models.CheckConstraint(
                condition=Q(cancelled_at__isnull=True) | Q(auto_renew=False),
                name="retention_membership_cancelled_not_renewing",
                violation_error_message=_("A cancelled membership does not renew."),
            ),
        ]
        indexes = [
            # MRR at a date: memberships whose range covers it.
            models.Index(fields=["started_on", "ended_on"], name="retention_membership_range"),
        ]

    def __str__(self) -> str:
        return f"{self.plan} ({self.get_interval_display()}) · {self.customer_id}"

    @property
    def mrr(self) -> Decimal:
        """Monthly recurring revenue: the price divided by the months in the interval."""
        months = 12 if self.interval == self.Interval.YEAR else 1
        return self.price / months


class Enrolment(models.Model):
    """A customer's place in a course, with their progress. One per customer and course."""

    class Source(models.TextChoices):
        PURCHASE = "purchase", _("Purchase")
        BUNDLE = "bundle", _("Bundle")
        MEMBERSHIP = "membership", _("Membership")
        FREE = "free", _("Free access")

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="enrolments")
    course = models.ForeignKey(Course, on_delete=models.PROTECT, related_name="enrolments")
    source = models.CharField(max_length=12, choices=Source.choices, default=Source.PURCHASE)
    started_on = models.DateField()
    last_activity_at = models.DateTimeField(null=True, blank=True)
    progress_percent = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(100)]
    )
    completed_on = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-started_on", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["customer", "course"], name="retention_enrolment_once"),
            models.CheckConstraint(
                condition=Q(progress_percent__lte=100), name="retention_enrolment_progress_le_100"
            ),
            models.CheckConstraint(
                condition=Q(completed_on__isnull=True) | Q(progress_percent=100),
                name="retention_enrolment_completed_at_100",
                violation_error_message=_("A completed enrolment has 100 % progress."),
            ),
            models.CheckConstraint(
                condition=Q(completed_on__isnull=True) | Q(completed_on__gte=models.F("started_on")),
                name="retention_enrolment_completed_after_start",
                violation_error_message=_("An enrolment cannot be completed before it starts."),
            ),
        ]
        indexes = [
            # New-offering engagement: enrolments started in a period, by course.
            models.Index(fields=["course", "started_on"], name="retention_enrolment_started"),
            # Abandoned courses: unfinished, no activity since a date.
            models.Index(fields=["last_activity_at"], name="retention_enrolment_activity"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} in {self.course_id}"

    @property
    def completed(self) -> bool:
        return self.completed_on is not None


class SupportTicket(models.Model):
    """A support request; complaints and slow answers feed at-risk scoring."""

    class Category(models.TextChoices):
        PRICING = "pricing", _("Pricing")
        COURSE_CONTENT = "course_content", _("Course content")
        ACCESS = "access", _("Access")
        BILLING = "billing", _("Billing")
        OTHER = "other", _("Other")

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        PENDING = "pending", _("Waiting on customer")
        RESOLVED = "resolved", _("Resolved")
        CLOSED = "closed", _("Closed")

    external_id = models.CharField(_("ticket id"), max_length=64, unique=True)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="tickets")
    opened_at = models.DateTimeField()
    category = models.CharField(max_length=16, choices=Category.choices, default=Category.OTHER)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    subject = models.CharField(max_length=200, blank=True)
    is_complaint = models.BooleanField(_("complaint"), default=False)
    first_response_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-opened_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(first_response_at__isnull=True)
                | Q(first_response_at__gte=models.F("opened_at")),
                name="retention_ticket_response_after_open",
                violation_error_message=_("The first response cannot come before the ticket."),
            ),
            models.CheckConstraint(
                condition=Q(resolved_at__isnull=True) | Q(resolved_at__gte=models.F("opened_at")),
                name="retention_ticket_resolved_after_open",
                violation_error_message=_("A ticket cannot be resolved before it was opened."),
            ),
        ]
        indexes = [
            # At-risk scoring: a customer's open tickets.
            models.Index(fields=["customer", "status"], name="retention_ticket_customer"),
            models.Index(fields=["opened_at"], name="retention_ticket_opened"),
        ]

    def __str__(self) -> str:
        return self.subject or self.external_id

    @property
    def first_response_hours(self) -> float | None:
        if self.first_response_at is None:
            return None
        return round((self.first_response_at - self.opened_at).total_seconds() / 3600, 1)

    @property
    def resolution_hours(self) -> float | None:
        if self.resolved_at is None:
            return None
        return round((self.resolved_at - self.opened_at).total_seconds() / 3600, 1)


class DataChange(models.Model):
    """A write touched data dated `first_day` or later (retention/sales/changes.py): the log that
    tells stored figures when they are out of date. Pruned after a few days."""

    first_day = models.DateField()
    source = models.CharField(max_length=30, help_text=_("What was written, e.g. import."))
    recorded_at = models.DateTimeField()

    class Meta:
        ordering = ["-recorded_at"]
        indexes = [
            # Readers of stored figures: the changes recorded since a moment.
            models.Index(fields=["recorded_at"], name="retention_change_recorded"),
        ]

    def __str__(self) -> str:
        return f"{self.source} from {self.first_day} at {self.recorded_at:%Y-%m-%d %H:%M:%S}"


