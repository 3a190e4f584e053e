"""The core domain: customers, the catalogue, orders, memberships, enrolments, tickets.

Money is a Decimal in the business currency (setting RETENTION_CURRENCY).
Records that come from the sales platform carry its identifier in `external_id`
(unique), which is how imports and API calls find them again: sending the same
record twice updates it rather than duplicating it.
"""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower, Upper
from django.utils import timezone
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


class NightlyRun(models.Model):
    """One run of the nightly pipeline for the night after `night` (a day in the business zone)."""

    night = models.DateField()
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    outcomes = models.JSONField(default=list, help_text=_("[step, what it did] pairs."))

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["finished_at"], name="retention_nightly_finished")]

    def __str__(self) -> str:
        return f"night of {self.night} at {self.started_at:%Y-%m-%d %H:%M}"


# Email: the outbox, consent, suppression and customer links --------------------------------


class LinkRequest(models.Model):
    """A request for a fresh link, kept an hour or so to rate-limit them (retention/mail/links.py)."""

    email_hash = models.CharField(max_length=64, help_text=_("SHA-256 of the address asked for."))
    ip = models.GenericIPAddressField(null=True, blank=True)
    requested_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["email_hash", "requested_at"], name="retention_linkreq_email"),
            models.Index(fields=["ip", "requested_at"], name="retention_linkreq_ip"),
        ]


# Predicted value and customers at risk (retention/predictions.py, retention/atrisk.py) ---------


class ClvFit(models.Model):
    """One fit of the predicted-value models on the orders dated on or before `as_of`.

    Every fit is kept with its health: the parameters, log-likelihood, customer counts
    and convergence of both models, the frequency–spend correlation Gamma-Gamma assumes
    to be small, and, where a model could not be used, the simple rule that replaced it
    and why. A holdout fit (`holdout_weeks`) also keeps its comparison of predicted with
    actual purchases after `as_of`.
    """

    class Purpose(models.TextChoices):
        NIGHTLY = "nightly", _("Nightly predictions")
        MANUAL = "manual", _("fit_clv")
        HOLDOUT = "holdout", _("Holdout validation")

    class Method(models.TextChoices):
        MODEL = "model", _("Model")
        FALLBACK = "fallback", _("Simple rule")

    as_of = models.DateField(help_text=_("Orders dated on or before this day were fitted."))
    purpose = models.CharField(max_length=8, choices=Purpose.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    customers = models.PositiveIntegerField(help_text=_("Customers with a paid order by as_of."))
    repeat_customers = models.PositiveIntegerField(
        help_text=_("Of them, those who bought on more than one day."))
    bgnbd = models.JSONField(_("BG/NBD"), default=dict, blank=True,
                             help_text=_("r, alpha, a, b, log_likelihood, converged, …"))
    gamma_gamma = models.JSONField(_("Gamma-Gamma"), default=dict, blank=True,
                                   help_text=_("p, q, gamma, customers, log_likelihood, …"))
    purchases_method = models.CharField(max_length=8, choices=Method.choices)
    spend_method = models.CharField(max_length=8, choices=Method.choices)
    fallback_reasons = models.JSONField(default=list, blank=True)
    monthly_discount = models.DecimalField(max_digits=6, decimal_places=4)
    holdout_weeks = models.PositiveSmallIntegerField(null=True, blank=True)
    holdout = models.JSONField(null=True, blank=True,
                               help_text=_("Predicted against actual purchases after as_of."))
    seconds = models.FloatField(default=0, help_text=_("Time to read, fit and score."))

    class Meta:
        ordering = ["-as_of", "-created_at"]
        verbose_name = _("predicted-value fit")
        indexes = [models.Index(fields=["purpose", "as_of"], name="retention_clvfit_purpose")]

    def __str__(self) -> str:
        return f"{self.get_purpose_display()} on {self.as_of}"

    @property
    def uses_models(self) -> bool:
        return self.purchases_method == self.Method.MODEL and self.spend_method == self.Method.MODEL

    def method_summary(self) -> str:
        """What the predictions were made with, in words every page and answer repeats."""
        purchases = ("BG/NBD" if self.purchases_method == self.Method.MODEL
                     else "simple rule (purchase rate so far, active within the window)")
        spend = ("Gamma-Gamma" if self.spend_method == self.Method.MODEL
                 else "simple rule (the customer's mean purchase value)")
        return f"purchases: {purchases}; spend: {spend}"


class CustomerPrediction(models.Model):
    """A customer's predicted value on a date, from one fit (written nightly)."""

    # A night writes a million of these in one COPY: no foreign-key trigger (a deferred check
    # per row cost 10 s at commit) and no index on it. The fit is written in the same
    # transaction; predictions.prune deletes a day's predictions before its fits, and fits
    # cannot be deleted in the admin.
    fit = models.ForeignKey(ClvFit, on_delete=models.DO_NOTHING, related_name="predictions",
                            db_constraint=False, db_index=False)
    as_of = models.DateField()
    # As with segments: a row per customer per night, so no trigger-backed foreign key;
    # the unique index below (customer first) serves the customer's lookups.
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="predictions",
                                 db_constraint=False, db_index=False)
    frequency = models.PositiveIntegerField(help_text=_("Repeat purchases (days) by as_of."))
    recency_weeks = models.FloatField()
    age_weeks = models.FloatField(help_text=_("T: weeks from the first purchase to as_of."))
    probability_active = models.FloatField()
    expected_purchases_12m = models.FloatField()
    expected_value_per_purchase = models.DecimalField(**MONEY)
    predicted_value_12m = models.DecimalField(**MONEY)
    value_at_risk = models.DecimalField(
        **MONEY, help_text=_("Value of the next 12 months if still active, times the chance "
                             "that they are not."))
    no_purchase_90d = models.FloatField(
        help_text=_("Probability of no purchase in the next 90 days (the at-risk score)."))

    class Meta:
        ordering = ["-as_of", "-predicted_value_12m"]
        constraints = [
            models.UniqueConstraint(fields=["customer", "as_of"],
                                    name="retention_prediction_once"),
        ]
        # The value page's distribution, top customers and CSV read a day by value.
        indexes = [models.Index(fields=["as_of", "predicted_value_12m"],
                                name="retention_prediction_value")]

    def __str__(self) -> str:
        return f"{self.customer_id} on {self.as_of}: {self.predicted_value_12m}"


class AtRisk(models.Model):
    """A customer still counted active who shows at least one sign of slipping away.

    Written nightly by retention/atrisk.py in one INSERT ... SELECT; each reason is a
    column (so the list filters and sorts on them in the database) and `reasons()` puts
    them into words.
    """

    as_of = models.DateField()
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="risks",
                                 db_constraint=False, db_index=False)
    score = models.FloatField(help_text=_("Probability of no purchase in the next 90 days."))
    value_at_risk = models.DecimalField(**MONEY)
    predicted_value_12m = models.DecimalField(**MONEY)
    probability_active = models.FloatField()
    low_active = models.BooleanField(_("unlikely to be active"), default=False)
    days_since_last = models.PositiveIntegerField()
    usual_gap_days = models.PositiveIntegerField(null=True, blank=True)
    overdue = models.BooleanField(default=False)
    abandoned_course = models.CharField(max_length=200, blank=True)
    abandoned_progress = models.PositiveSmallIntegerField(null=True, blank=True)
    abandoned_since = models.DateField(null=True, blank=True,
                                       help_text=_("Last activity, or the start if none."))
    complaint_subject = models.CharField(max_length=200, blank=True)
    complaint_opened_at = models.DateTimeField(null=True, blank=True)
    membership_plan = models.CharField(max_length=100, blank=True)
    membership_ends_on = models.DateField(null=True, blank=True)
    detractor_score = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text=_("Their latest NPS answer, when 0 to 6."))
    reason_count = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["-as_of", "-value_at_risk"]
        verbose_name = _("customer at risk")
        verbose_name_plural = _("customers at risk")
        constraints = [
            models.UniqueConstraint(fields=["customer", "as_of"], name="retention_atrisk_once"),
        ]
        indexes = [models.Index(fields=["as_of", "value_at_risk"], name="retention_atrisk_value")]

    def __str__(self) -> str:
        # The admin's title of the row (one query): the platform's id, not the table's.
        return f"{self.customer.external_id} at risk on {self.as_of}"

    def reasons(self) -> list[str]:
        """The reasons in words, most telling first."""
        out = []
        if self.low_active:
            out.append(_("Unlikely to be still buying: %(chance)s %% chance of being active")
                       % {"chance": round(self.probability_active * 100)})
        if self.overdue:
            out.append(_("Overdue: %(days)s days since the last order; usually every %(gap)s "
                         "days") % {"days": self.days_since_last, "gap": self.usual_gap_days})
        if self.complaint_subject or self.complaint_opened_at:
            out.append(_("Open complaint since %(day)s: %(subject)s") % {
                "day": timezone.localtime(self.complaint_opened_at).date().isoformat(),
                "subject": self.complaint_subject or _("(no subject)")})
        if self.detractor_score is not None:
            out.append(_("Detractor: answered %(score)s out of 10") % {"score": self.detractor_score})
        if self.abandoned_course:
            out.append(_("Left “%(course)s” unfinished at %(progress)s %%, no activity since "
                         "%(day)s") % {"course": self.abandoned_course,
                                       "progress": self.abandoned_progress or 0,
                                       "day": self.abandoned_since.isoformat()})
        if self.membership_plan:
            out.append(_("Membership “%(plan)s” set not to renew%(ends)s") % {
                "plan": self.membership_plan,
                "ends": f" (ends {self.membership_ends_on.isoformat()})"
                if self.membership_ends_on else ""})
        return out


class FollowUp(models.Model):
    """A person asked to get in touch with a customer (from the at-risk list or the admin)."""

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        DONE = "done", _("Done")

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="follow_ups")
    assigned_to = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                    related_name="follow_ups")
    reason = models.CharField(max_length=500, blank=True)
    due_on = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=4, choices=Status.choices, default=Status.OPEN)
    note = models.TextField(blank=True, help_text=_("What happened."))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["status", "due_on", "-created_at"]
        verbose_name = _("follow-up")
        constraints = [
            # One open follow-up per customer: assigning again reassigns it.
            models.UniqueConstraint(fields=["customer"], condition=Q(status="open"),
                                    name="retention_followup_one_open"),
        ]

    def __str__(self) -> str:
        return f"{self.customer} → {self.assigned_to} ({self.get_status_display()})"


class ReEngagementList(models.Model):
    """Customers put aside for a win-back campaign (campaigns read `members`)."""

    name = models.CharField(max_length=100, unique=True)
    description = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    customers = models.ManyToManyField(Customer, through="ReEngagementMember",
                                       related_name="re_engagement_lists")

    class Meta:
        ordering = ["name"]
        verbose_name = _("re-engagement list")

    def __str__(self) -> str:
        return self.name


class ReEngagementMember(models.Model):
    list = models.ForeignKey(ReEngagementList, on_delete=models.CASCADE, related_name="members")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE,
                                 related_name="re_engagement_memberships")
    reasons = models.CharField(max_length=500, blank=True,
                               help_text=_("Why they were at risk when added."))
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                 null=True, blank=True, related_name="+")
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-added_at"]
        constraints = [
            models.UniqueConstraint(fields=["list", "customer"], name="retention_reengage_once"),
        ]

    def __str__(self) -> str:
        return f"{self.customer.external_id} in {self.list.name}"
