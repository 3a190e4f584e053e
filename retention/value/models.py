"""Predicted value and customers at risk: each fit of the models with its health, every
customer's nightly prediction, the nightly at-risk list, and what staff do about it
(follow-ups, re-engagement lists)."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from retention.sales.models import MONEY, Customer


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

    Written nightly by retention/value/atrisk.py in one INSERT ... SELECT. Retention's own
    reasons keep their facts in columns (so the list filters and sorts on them in the
    database); the reasons other apps register keep theirs in `details`, under the
    reason's code, so no app needs a column here. `atrisk.in_words(row)` reads them out.
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
    details = models.JSONField(
        default=dict, blank=True,
        help_text=_("The facts of the reasons other apps contribute, by reason code."))
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
