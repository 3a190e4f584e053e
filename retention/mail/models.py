"""Email to customers: the outbox, clicks, suppressed addresses, preferences and consent.

Every email is an OutboxMessage before it is sent (retention/mail/outbox.py); what a
customer may receive is their ContactPreferences and marketing consent, each change
kept as a ConsentRecord (retention/mail/consent.py).
"""

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from retention.sales.models import Customer


class Topic(models.TextChoices):
    """What a non-transactional email is about: the customer chooses per topic."""

    OFFERS = "offers", _("Offers and reminders")
    NEW_COURSES = "new_courses", _("New courses and early access")
    LOYALTY = "loyalty", _("Loyalty points and rewards")
    SURVEYS = "surveys", _("Surveys about your experience")


class OutboxMessage(models.Model):
    """One email, stored before it is sent (retention/mail/outbox.py).

    Rows move queued -> claimed -> sending -> sent, or end suppressed, expired or failed,
    each with its reason. The dedup key makes the same logical email one row however
    often it is queued.
    """

    class Kind(models.TextChoices):
        TRANSACTIONAL = "transactional", _("Transactional (codes, receipts, links)")
        SURVEY = "survey", _("Survey")
        MARKETING = "marketing", _("Marketing (offers, win-back, news)")

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        CLAIMED = "claimed", _("Claimed by a worker")
        SENDING = "sending", _("Being handed to the mail server")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")
        SUPPRESSED = "suppressed", _("Suppressed")
        EXPIRED = "expired", _("Expired")

    public_id = models.UUIDField(unique=True, editable=False,
                                 help_text=_("Names the message in links and headers."))
    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="messages")
    to_email = models.EmailField(_("to"))
    kind = models.CharField(max_length=13, choices=Kind.choices)
    topic = models.CharField(max_length=12, choices=Topic.choices, blank=True,
                             help_text=_("Empty for transactional email."))
    purpose = models.SlugField(max_length=50, help_text=_("e.g. fresh_link, winback, survey."))
    template = models.CharField(max_length=100)
    subject = models.CharField(max_length=200)
    body_text = models.TextField()
    body_html = models.TextField()
    headers = models.JSONField(default=dict, blank=True)
    dedup_key = models.CharField(max_length=200, unique=True,
                                 help_text=_("The same logical email has the same key."))
    priority = models.SmallIntegerField(default=0, help_text=_("Higher goes first."))
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    reason = models.CharField(max_length=200, blank=True,
                              help_text=_("Why it waits, was suppressed, expired or failed."))
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    not_before = models.DateTimeField(help_text=_("Not sent before this moment."))
    expires_at = models.DateTimeField(null=True, blank=True,
                                      help_text=_("Not sent after this moment."))
    claimed_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=100, blank=True)
    sending_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    clicks = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["queued", "claimed", "sending", "sent", "failed",
                                        "suppressed", "expired"]),
                name="retention_outbox_status_valid"),
            models.CheckConstraint(
                condition=Q(kind="transactional", topic="") | (~Q(kind="transactional")
                                                               & ~Q(topic="")),
                name="retention_outbox_topic_unless_transactional",
                violation_error_message=_("Non-transactional email needs a topic.")),
        ]
        indexes = [
            # The send task takes queued messages in this order (highest priority first), so
            # a batch is the head of this index, not a sort of the whole queue. Partial: a
            # message leaves it when it is claimed, and nothing else is ever added, so the
            # index stays the size of the queue however many messages were sent.
            models.Index(fields=["-priority", "not_before", "id"], condition=Q(status="queued"),
                         name="retention_outbox_due"),
            # The contact budget: a customer's recent non-transactional sends.
            models.Index(fields=["customer", "claimed_at"], name="retention_outbox_budget"),
            # Cleanup and the admin's per-day counts.
            models.Index(fields=["created_at"], name="retention_outbox_created"),
        ]

    def __str__(self) -> str:
        return f"{self.purpose} to {self.to_email} ({self.status})"


class EmailClick(models.Model):
    """A click on a link in an email, counted through the signed redirect."""

    message = models.ForeignKey(OutboxMessage, on_delete=models.CASCADE, related_name="click_log")
    url = models.URLField(max_length=1000)
    clicked_at = models.DateTimeField()

    class Meta:
        ordering = ["-clicked_at"]
        indexes = [
            # The admin's clicks per day.
            models.Index(fields=["clicked_at"], name="retention_click_day"),
        ]


class Suppression(models.Model):
    """An address no email goes to: it bounced, complained, or staff stopped it."""

    class Reason(models.TextChoices):
        BOUNCE = "bounce", _("Bounced")
        COMPLAINT = "complaint", _("Marked as spam")
        MANUAL = "manual", _("Stopped by staff")

    email = models.EmailField(unique=True, help_text=_("Kept in lower case."))
    reason = models.CharField(max_length=10, choices=Reason.choices)
    detail = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.email} ({self.get_reason_display()})"


class ContactPreferences(models.Model):
    """What a customer wants to receive: a choice per topic, and a pause.

    Marketing topics also need the customer's marketing consent (Customer.marketing_consent,
    with its evidence in ConsentRecord); surveys are sent unless turned off.
    """

    customer = models.OneToOneField(Customer, on_delete=models.CASCADE, primary_key=True,
                                    related_name="preferences")
    offers = models.BooleanField(default=True)
    new_courses = models.BooleanField(default=True)
    loyalty = models.BooleanField(default=True)
    surveys = models.BooleanField(default=True)
    paused_until = models.DateTimeField(null=True, blank=True,
                                        help_text=_("No email but transactional until then."))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = _("contact preferences")

    def __str__(self) -> str:
        return f"preferences of {self.customer_id}"

    def wants(self, topic: str) -> bool:
        return bool(getattr(self, topic))


class ConsentRecord(models.Model):
    """One change of a customer's consent or preferences, kept as evidence. Never edited."""

    class Method(models.TextChoices):
        PLATFORM = "platform", _("Sent by the sales platform")
        PREFERENCES = "preferences", _("Preferences page")
        UNSUBSCRIBE = "unsubscribe", _("Unsubscribe link")
        ONE_CLICK = "one_click", _("One-click unsubscribe (mail client)")
        STAFF = "staff", _("Staff, in the admin")
        COMPLAINT = "complaint", _("Spam complaint")

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="consents")
    subject = models.CharField(max_length=20,
                               help_text=_("marketing (the consent itself), a topic, or pause."))
    granted = models.BooleanField()
    method = models.CharField(max_length=12, choices=Method.choices)
    wording = models.TextField(blank=True, help_text=_("What the customer was shown."))
    detail = models.CharField(max_length=300, blank=True)
    recorded_at = models.DateTimeField()

    class Meta:
        ordering = ["-recorded_at", "-pk"]
        indexes = [models.Index(fields=["customer", "recorded_at"], name="retention_consent_on")]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.subject} {'granted' if self.granted else 'withdrawn'}"
