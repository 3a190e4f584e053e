"""Loyalty: the program's settings, accounts and their ledger, earning rules, tiers, rewards and
redemptions, referrals.

Points are integers and every change to a balance is an `Entry` of the ledger
(loyalty/ledger.py): entries are never edited or deleted, except that an earned lot's
`status` moves from pending to available when its refund window has passed, and its
`remaining` falls as it is spent, expired or reversed. An account's `available` and
`pending` are caches of its ledger's sums, which the reconciliation checks every night.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from retention.sales.models import Course, Customer, Order

MONEY = {"max_digits": 12, "decimal_places": 2}


class Program(models.Model):
    """The program's settings, one row (`Program.current()`), edited by staff in the admin."""

    name = models.CharField(max_length=100, default="Rewards")
    refund_days = models.PositiveSmallIntegerField(
        default=14, help_text=_("Points from an order stay pending this many days, then become "
                                "available; a refund before then cancels them."))
    expiry_days = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text=_("Points expire this many days after they become "
                                           "available. Empty: points never expire."))
    expiry_enabled_on = models.DateField(
        null=True, blank=True, editable=False,
        help_text=_("When expiry was switched on: no point expires before a full period after it."))
    expiry_warning_days = models.PositiveSmallIntegerField(
        default=30, help_text=_("Customers are warned this many days before points expire."))
    tier_basis = models.CharField(
        max_length=6, choices=[("points", _("Points earned")), ("spend", _("Money spent"))],
        default="points", help_text=_("What tiers are judged on, over the last 12 months."))
    tier_grace_days = models.PositiveSmallIntegerField(
        default=30, help_text=_("Days a customer keeps a tier after falling below it, warned."))
    point_value = models.DecimalField(
        max_digits=8, decimal_places=4, default=Decimal("0.01"),
        help_text=_("What a point costs the business when spent (for the liability)."))
    referrer_points = models.PositiveIntegerField(
        default=500, help_text=_("Earned by a referrer when the referred customer's first order "
                                 "is paid and past the refund window."))
    welcome_points = models.PositiveIntegerField(
        default=250, help_text=_("Earned by a referred customer on their first order."))
    referral_cap = models.PositiveSmallIntegerField(
        default=10, help_text=_("Referrals rewarded per referrer per calendar year."))
    holdout_percent = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(50)],
        help_text=_("A random, stable share of customers kept out of the program, to measure "
                    "what it changes. 0: nobody."))

    class Meta:
        verbose_name = _("program settings")
        verbose_name_plural = _("program settings")

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        """Record when expiry is switched on; loyalty/receivers.py then dates the lots held."""
        was = type(self).objects.filter(pk=self.pk).values_list(
            "expiry_days", flat=True).first() if self.pk else None
        if self.expiry_days and not was:
            self.expiry_enabled_on = timezone.localdate()
        elif not self.expiry_days:
            self.expiry_enabled_on = None
        self.expiry_changed = self.expiry_days != was
        super().save(*args, **kwargs)

    @classmethod
    def current(cls) -> Program:
        program, _created = cls.objects.get_or_create(pk=1)
        return program


class Tier(models.Model):
    code = models.SlugField(max_length=50, unique=True)
    title = models.CharField(max_length=100)
    threshold = models.PositiveIntegerField(
        help_text=_("Points earned (or money spent, whole units) over the last 12 months to "
                    "reach this tier."))
    multiplier = models.DecimalField(
        max_digits=4, decimal_places=2, default=Decimal("1.00"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("10"))],
        help_text=_("Points earned from orders are multiplied by this."))
    discount_percent = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(100)],
        help_text=_("A standing discount on every course."))
    early_access_days = models.PositiveSmallIntegerField(
        default=0, help_text=_("Days before launch the tier's members may buy a new course."))
    benefits = models.TextField(blank=True, help_text=_("Shown to customers, one per line."))

    class Meta:
        ordering = ["threshold"]
        constraints = [models.UniqueConstraint(fields=["threshold"], name="loyalty_tier_threshold")]

    def __str__(self):
        return self.title


class Account(models.Model):
    """A customer's place in the program: cached balances (sums of the ledger), tier, code."""

    customer = models.OneToOneField(Customer, on_delete=models.CASCADE,
                                    related_name="loyalty_account")
    available = models.IntegerField(default=0, editable=False)
    pending = models.IntegerField(default=0, editable=False)
    lifetime_earned = models.PositiveIntegerField(default=0, editable=False)
    tier = models.ForeignKey(Tier, null=True, blank=True, on_delete=models.PROTECT,
                             related_name="accounts")
    tier_since = models.DateField(null=True, blank=True, editable=False)
    tier_qualifying = models.PositiveIntegerField(default=0, editable=False)
    grace_until = models.DateField(
        null=True, blank=True, editable=False,
        help_text=_("Below the tier's threshold: keeps the tier until then, warned."))
    # Given when first shown (loyalty.referrals.code_of), so that accounts can be opened in bulk.
    referral_code = models.CharField(max_length=16, unique=True, null=True, blank=True)
    held_out = models.BooleanField(
        default=False, editable=False,
        help_text=_("In the holdout: earns nothing, so the program's effect can be measured."))
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(available__gte=0), name="loyalty_available_ge_0"),
        ]

    def __str__(self):
        return f"{self.customer} ({self.available} points)"


class Entry(models.Model):
    """One line of the ledger. Earned points (and credits by staff) are lots that later debits
    draw on, oldest first (`Draw`)."""

    class Kind(models.TextChoices):
        EARN = "earn", _("Earned")
        REDEEM = "redeem", _("Redeemed")
        EXPIRE = "expire", _("Expired")
        REVERSE = "reverse", _("Reversed")
        ADJUST = "adjust", _("Adjusted by staff")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        AVAILABLE = "available", _("Available")

    class Source(models.TextChoices):
        ORDER = "order", _("Order")
        ENROLMENT = "enrolment", _("Completed course")
        REFERRAL = "referral", _("Referral")
        SURVEY = "survey", _("Survey answer")
        BIRTHDAY = "birthday", _("Birthday")
        STAFF = "staff", _("Staff")
        REWARD = "reward", _("Reward")
        PROGRAM = "program", _("Program")

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="entries")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    points = models.IntegerField(help_text=_("Positive for a credit, negative for a debit."))
    status = models.CharField(max_length=9, choices=Status.choices, default=Status.AVAILABLE)
    reason = models.CharField(max_length=200)
    source = models.CharField(max_length=10, choices=Source.choices)
    source_ref = models.CharField(max_length=100, blank=True,
                                  help_text=_("The order id, rule code, staff user…"))
    rule = models.ForeignKey("Rule", null=True, blank=True, on_delete=models.PROTECT,
                             related_name="entries")
    key = models.CharField(max_length=150, unique=True,
                           help_text=_("Idempotency key: the same event never counts twice."))
    created_at = models.DateTimeField()
    earned_on = models.DateField(
        help_text=_("The day of what earned or spent it (an order's day): caps and tiers count by it."))
    # Lots (credits) only:
    available_on = models.DateField(null=True, blank=True)
    expires_on = models.DateField(null=True, blank=True)
    remaining = models.IntegerField(default=0, help_text=_("Of a lot: points not yet drawn."))
    # Reversals only: points already spent that could not be taken back.
    shortfall = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name_plural = _("entries")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["account", "created_at"], name="loyalty_entry_account"),
            models.Index(fields=["status", "available_on"], name="loyalty_entry_pending",
                         condition=Q(status="pending", remaining__gt=0)),
            models.Index(fields=["expires_on"], name="loyalty_entry_expiring",
                         condition=Q(remaining__gt=0, expires_on__isnull=False)),
            models.Index(fields=["source", "source_ref"], name="loyalty_entry_source"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(remaining__gte=0), name="loyalty_lot_not_negative"),
            # A reversal of points all spent already takes nothing and records the shortfall.
            models.CheckConstraint(condition=~Q(points=0) | Q(shortfall__gt=0),
                                   name="loyalty_entry_not_zero"),
        ]

    def __str__(self):
        return f"{self.points:+d} {self.get_kind_display().lower()}: {self.reason}"

    @property
    def is_lot(self) -> bool:
        return self.points > 0 and self.kind in (self.Kind.EARN, self.Kind.ADJUST)


class Draw(models.Model):
    """How many points a debit took from which lot."""

    debit = models.ForeignKey(Entry, on_delete=models.CASCADE, related_name="draws")
    lot = models.ForeignKey(Entry, on_delete=models.CASCADE, related_name="drawn_by")
    points = models.PositiveIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["debit", "lot"], name="loyalty_draw_once")]


class Rule(models.Model):
    """How points are earned; staff configure these (admin and API)."""

    class Kind(models.TextChoices):
        PER_AMOUNT = "per_amount", _("Points per currency unit spent")
        BUNDLE = "bundle", _("Bonus for an order with a bundle")
        FIRST_IN_CATEGORY = "first_in_category", _("Bonus for a first course in a new category")
        COURSE_COMPLETED = "course_completed", _("Bonus for completing a course")
        SURVEY_ANSWERED = "survey_answered", _("Bonus for answering a survey")
        BIRTHDAY = "birthday", _("Birthday bonus")

    class Period(models.TextChoices):
        MONTH = "month", _("Calendar month")
        YEAR = "year", _("Calendar year")

    ORDER_KINDS = (Kind.PER_AMOUNT, Kind.BUNDLE, Kind.FIRST_IN_CATEGORY)

    code = models.SlugField(max_length=50, unique=True)
    title = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    points = models.PositiveIntegerField(
        help_text=_("Per currency unit for 'points per currency unit'; otherwise the bonus."))
    valid_from = models.DateField(null=True, blank=True)
    valid_until = models.DateField(null=True, blank=True, help_text=_("Last day it applies."))
    cap = models.PositiveIntegerField(
        null=True, blank=True, help_text=_("At most this many points per customer per period."))
    cap_period = models.CharField(max_length=5, choices=Period.choices, default=Period.YEAR)
    use_tier_multiplier = models.BooleanField(default=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code"]

    def __str__(self):
        return self.title


class Reward(models.Model):
    class Kind(models.TextChoices):
        PERCENT_OFF = "percent_off", _("Percent off the next course")
        AMOUNT_OFF = "amount_off", _("Amount off the next course")
        FREE_COURSE = "free_course", _("A free course")
        BUNDLE_DISCOUNT = "bundle_discount", _("Discount on a bundle")
        CONTENT = "content", _("Exclusive content")

    code = models.SlugField(max_length=50, unique=True)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=15, choices=Kind.choices)
    value = models.DecimalField(**MONEY, default=Decimal("0"),
                                help_text=_("Percent, or amount off, as the kind says."))
    course = models.ForeignKey(Course, null=True, blank=True, on_delete=models.PROTECT,
                               help_text=_("The free course, when the kind is a free course."))
    points = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    stock = models.PositiveIntegerField(null=True, blank=True,
                                        help_text=_("Units left. Empty: no limit."))
    per_customer_limit = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text=_("Redemptions per customer. Empty: no limit."))
    valid_from = models.DateField(null=True, blank=True)
    valid_until = models.DateField(null=True, blank=True)
    code_valid_days = models.PositiveSmallIntegerField(
        default=90, help_text=_("Days the coupon code works after redeeming."))
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["points", "code"]

    def __str__(self):
        return self.title


class Redemption(models.Model):
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="redemptions")
    reward = models.ForeignKey(Reward, on_delete=models.PROTECT, related_name="redemptions")
    points = models.PositiveIntegerField()
    entry = models.OneToOneField(Entry, on_delete=models.CASCADE, related_name="redemption")
    coupon_code = models.CharField(max_length=32, unique=True)
    key = models.CharField(max_length=150, unique=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    used_order = models.ForeignKey(Order, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.reward} for {self.account.customer}"


class Referral(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for a first order")
        REWARDED = "rewarded", _("Rewarded")
        CAPPED = "capped", _("Not rewarded: over the referrer's limit for the year")
        REFUSED = "refused", _("Refused")

    referrer = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="referrals")
    referred = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="referrals_in")
    code = models.CharField(max_length=16)
    fingerprint = models.CharField(max_length=128, blank=True,
                                   help_text=_("The platform's payment or device fingerprint."))
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    refused_because = models.CharField(max_length=200, blank=True)
    key = models.CharField(max_length=150, unique=True)
    created_at = models.DateTimeField()
    rewarded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["fingerprint"], name="loyalty_referral_fingerprint")]
        constraints = [
            # A customer is referred once; refused attempts are kept beside it.
            models.UniqueConstraint(fields=["referred"], condition=~Q(status="refused"),
                                    name="loyalty_referred_once"),
        ]

    def __str__(self):
        return f"{self.referrer.customer} → {self.referred}"
