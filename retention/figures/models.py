"""Figures kept: quarter targets, stored metric snapshots and report tables, each customer's
segment per snapshot date, and the alert rules with the alerts they raised."""

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from retention.figures import registry
from retention.sales.models import CUSTOMER_TYPES, Customer


class Target(models.Model):
    """A quarter's goal for one metric (spec "Targets"); `retention.figures.targets` evaluates it."""

    class Kind(models.TextChoices):
        CHANGE = "change", _("Relative change against the previous quarter (%)")
        POINTS = "points", _("Change in points against the previous quarter")
        VALUE = "value", _("The quarter's value")

    metric = models.CharField(max_length=50, help_text=_("A key of the metric spec."))
    year = models.PositiveSmallIntegerField(validators=[MinValueValidator(2000),
                                                        MaxValueValidator(2999)])
    quarter = models.PositiveSmallIntegerField(validators=[MinValueValidator(1),
                                                           MaxValueValidator(4)])
    kind = models.CharField(max_length=6, choices=Kind.choices)
    low = models.DecimalField(max_digits=12, decimal_places=2, help_text=_("Lower end of the range."))
    high = models.DecimalField(max_digits=12, decimal_places=2, help_text=_("Upper end of the range."))
    # An optional subset, as compute_metrics takes it; empty: all customers.
    source = models.CharField(max_length=50, blank=True)
    customer_type = models.CharField(max_length=16, blank=True)
    category = models.CharField(max_length=100, blank=True)
    note = models.CharField(max_length=200, blank=True, help_text=_("The plan's words, e.g. "
                                                                    "'Reduce churn by 5-7 %'."))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-year", "-quarter", "metric"]
        constraints = [
            models.CheckConstraint(condition=Q(low__lte=models.F("high")),
                                   name="retention_target_low_le_high",
                                   violation_error_message=_("The low end is above the high end.")),
            models.CheckConstraint(condition=Q(quarter__gte=1, quarter__lte=4),
                                   name="retention_target_quarter_1_4"),
            models.UniqueConstraint(
                fields=["metric", "year", "quarter", "kind", "source", "customer_type", "category"],
                name="retention_target_once",
                violation_error_message=_("This quarter already has that target."),
            ),
        ]

    def __str__(self) -> str:
        subset = ", ".join(v for v in (self.source, self.customer_type, self.category) if v)
        return (f"{self.metric} {self.kind} {self.low} to {self.high}, {self.year} Q{self.quarter}"
                + (f" ({subset})" if subset else ""))

    def clean(self):
        if self.metric not in registry.keys():
            raise ValidationError({"metric": _("Not a metric of the spec.")})
        if self.customer_type and self.customer_type not in CUSTOMER_TYPES:
            raise ValidationError({"customer_type": _("Not a customer type or sector.")})


class MetricSnapshot(models.Model):
    """The period metrics of one period and subset, as computed at `computed_at`.

    Day, month and quarter snapshots are made by the nightly job: a month's or a
    quarter's is updated each night until the period is over (its `end` moves),
    so one row per period holds the latest figures. Custom periods are saved by
    `compute_metrics --save`.
    """

    class Grain(models.TextChoices):
        DAY = "day", _("Day")
        MONTH = "month", _("Month")
        QUARTER = "quarter", _("Quarter")
        CUSTOM = "custom", _("Custom period")

    grain = models.CharField(max_length=7, choices=Grain.choices)
    start = models.DateField()
    end = models.DateField()
    subset = models.CharField(max_length=200, blank=True, help_text=_("Empty: all customers."))
    window_days = models.PositiveIntegerField()
    new_offering_window_days = models.PositiveIntegerField()
    figures = models.JSONField(help_text=_("The object compute_metrics --json prints."))
    computed_at = models.DateTimeField()

    class Meta:
        ordering = ["-start", "grain"]
        constraints = [
            models.UniqueConstraint(
                fields=["grain", "start", "subset", "window_days", "new_offering_window_days"],
                condition=~Q(grain="custom"), name="retention_snapshot_one_per_period",
            ),
            models.UniqueConstraint(
                fields=["start", "end", "subset", "window_days", "new_offering_window_days"],
                condition=Q(grain="custom"), name="retention_snapshot_custom_once",
            ),
            models.CheckConstraint(condition=Q(end__gte=models.F("start")),
                                   name="retention_snapshot_end_after_start"),
        ]
        indexes = [
            # Late orders: the snapshots whose period ends on or after a date.
            models.Index(fields=["end"], name="retention_snapshot_end"),
        ]

    def __str__(self) -> str:
        return f"{self.grain} {self.start}..{self.end}" + (f" [{self.subset}]" if self.subset else "")


class StoredReport(models.Model):
    """A computed table the managers' pages show (cohorts, segment moves, a price update),
    kept until data dated on or before `depends_until` changes (retention/figures/reports.py)."""

    kind = models.CharField(max_length=30)
    key = models.CharField(max_length=200, help_text=_("The parameters, as text."))
    depends_until = models.DateField(help_text=_("The last day of data the report reads."))
    data = models.JSONField()
    computed_at = models.DateTimeField(help_text=_("When the computation began."))

    class Meta:
        ordering = ["kind", "key"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "key"], name="retention_report_once"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.key}"


class CustomerSegment(models.Model):
    """A customer's RFM scores and named segment on a snapshot date (retention/figures/segments.py)."""

    snapshot_on = models.DateField(help_text=_("The snapshot (as-of) date."))
    # A snapshot writes a row per customer (1M rows a night for 1M customers). Without a
    # database foreign key each row skips a deferred trigger (a third of the insert's time);
    # Django still deletes a customer's rows with the customer, through the unique index
    # below, which starts with the customer and so serves as the customer's index too.
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="segments",
                                 db_constraint=False, db_index=False)
    segment = models.CharField(max_length=20)
    recency_score = models.PositiveSmallIntegerField(null=True)
    frequency_score = models.PositiveSmallIntegerField(null=True)
    monetary_score = models.PositiveSmallIntegerField(null=True)
    recency_days = models.PositiveIntegerField(null=True, help_text=_("Days since the last order."))
    frequency = models.PositiveIntegerField(help_text=_("Paid orders in the lookback."))
    monetary = models.DecimalField(max_digits=14, decimal_places=2,
                                   help_text=_("Revenue in the lookback."))

    class Meta:
        ordering = ["-snapshot_on", "customer"]
        constraints = [
            models.UniqueConstraint(fields=["customer", "snapshot_on"],
                                    name="retention_segment_customer_once"),
        ]
        indexes = [
            # Segment sizes and the migration matrix group one date's rows by segment.
            models.Index(fields=["snapshot_on", "segment"], name="retention_segment_on"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.segment} on {self.snapshot_on}"


class AlertRule(models.Model):
    """Email managers when a metric's month to date moves beyond a threshold against its
    trailing average (retention/figures/alerts.py; checked nightly)."""

    class Direction(models.TextChoices):
        UP = "up", _("Rises")
        DOWN = "down", _("Falls")
        EITHER = "either", _("Rises or falls")

    metric = models.CharField(max_length=50, help_text=_("A key of the metric spec."))
    direction = models.CharField(max_length=6, choices=Direction.choices, default=Direction.EITHER)
    threshold_percent = models.DecimalField(
        max_digits=7, decimal_places=2, validators=[MinValueValidator(Decimal("0.01"))],
        help_text=_("Alert when the month to date differs from the trailing average by at "
                    "least this much, relative (%)."),
    )
    trailing_months = models.PositiveSmallIntegerField(
        default=3, validators=[MinValueValidator(1), MaxValueValidator(24)],
        help_text=_("Complete months before this one that make the average."),
    )
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["metric"]
        constraints = [
            models.CheckConstraint(condition=Q(threshold_percent__gt=0),
                                   name="retention_alertrule_threshold_gt_0"),
        ]

    def __str__(self) -> str:
        return f"{self.metric} {self.get_direction_display().lower()} by {self.threshold_percent} %"

    def clean(self):
        if self.metric not in registry.keys():
            raise ValidationError({"metric": _("Not a metric of the spec.")})


class Alert(models.Model):
    """One alert raised by a rule for one month: raised once, emailed once."""

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="alerts")
    month = models.DateField(help_text=_("First day of the month it is about."))
    value = models.DecimalField(max_digits=16, decimal_places=2)
    trailing_average = models.DecimalField(max_digits=16, decimal_places=2)
    change_percent = models.DecimalField(max_digits=12, decimal_places=2)
    raised_at = models.DateTimeField()
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-raised_at"]
        constraints = [
            models.UniqueConstraint(fields=["rule", "month"], name="retention_alert_once"),
        ]

    def __str__(self) -> str:
        return f"{self.rule.metric} {self.change_percent:+} % in {self.month:%Y-%m}"
