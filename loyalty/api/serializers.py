"""What the loyalty API reads and writes: the program's rules, tiers and rewards (created or
updated by `code`), a customer's account and ledger entries, adjustments, redemptions and
referrals. Customers are named by the platform's customer_id, rewards by their code;
points are integers, money a string with 2 decimals."""

from django.utils.text import format_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.extensions import OpenApiSerializerExtension, OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import ResolvedComponent
from rest_framework import serializers

from loyalty.models import Entry, Redemption, Referral, Reward, Rule, Tier
from retention.api.fields import CourseRef, CustomerRef, ReferenceField, UpsertSerializer

# An idempotency key (DESIGN, "Interfaces of the programs"): the same key again returns the
# first result and changes nothing.
KEY_LENGTH = {"min_length": 8, "max_length": 100}
# Entry.points and the cached balances are 32-bit integers in the database: a bound well
# inside them keeps a typing mistake from overflowing a balance (a 500 on PostgreSQL).
MAX_ADJUSTMENT = 10_000_000
MAX_RULE_POINTS = 1_000_000
# Dry runs look back at most this many days.
MAX_DRY_RUN_DAYS = 3650


def key_field(what: str) -> serializers.CharField:
    return serializers.CharField(
        **KEY_LENGTH, write_only=True,
        help_text=format_lazy(gettext_lazy(
            "Idempotency key, 8–100 characters: the same key again returns the first {what} "
            "with status 200 and changes nothing."), what=what))


class NamedChoiceField(serializers.ChoiceField):
    """A choice field whose choices are one enum component of the schema, named here.

    drf-spectacular names an enum after its field ("KindEnum") while only one set of
    choices has that field name, and warns once several do; the programs have many `kind`s
    (entries, rules, rewards…), so each of these names its own.
    """

    def __init__(self, choices, *, enum_name: str, **kwargs):
        self.enum_name = enum_name
        super().__init__(choices, **kwargs)


class NamedChoiceFieldSchema(OpenApiSerializerFieldExtension):
    target_class = NamedChoiceField

    def map_serializer_field(self, auto_schema, direction):
        field = self.target
        component = ResolvedComponent(
            name=field.enum_name, type=ResolvedComponent.SCHEMA, object=field.enum_name,
            schema={"enum": list(field.choices), "type": "string", "description": "\n".join(
                f"* `{value}` - {label}" for value, label in field.choices.items())})
        auto_schema.registry.register_on_missing(component)
        return component.ref


class RewardRef(ReferenceField):
    queryset = Reward.objects.all()
    lookup = "code"

    @property
    def unknown(self) -> str:
        return _("unknown reward code '%(value)s'")


def check_dates(serializer: UpsertSerializer, attrs: dict) -> None:
    start = serializer.current(attrs, "valid_from")
    end = serializer.current(attrs, "valid_until")
    if start and end and end < start:
        raise serializers.ValidationError(
            {"valid_until": [_("The last day cannot be before valid_from.")]},
            code="dates_reversed")


def natural_code() -> serializers.SlugField:
    # Declared, not generated: a generated one would refuse a code already taken, and the
    # upsert looks the row up by it (a new code is created, a known one updated).
    return serializers.SlugField(max_length=50, help_text=gettext_lazy(
        "Names it: letters, digits, - and _."))


def refuse_route_names(code: str) -> str:
    # rules/dry-run/ is an action: a rule of that code could never be read at its URL.
    if code == "dry-run":
        raise serializers.ValidationError(_("'dry-run' is reserved; choose another code."),
                                          code="reserved")
    return code


# The program: rules, tiers, rewards ---------------------------------------------------------


RULE_FIELDS = ["code", "title", "kind", "points", "valid_from", "valid_until", "cap",
               "cap_period", "use_tier_multiplier", "active"]


def rule_points() -> serializers.IntegerField:
    return serializers.IntegerField(
        min_value=0, max_value=MAX_RULE_POINTS,
        help_text=gettext_lazy("Per currency unit spent for a per_amount rule; otherwise the "
                               "bonus."))


def rule_cap() -> serializers.IntegerField:
    return serializers.IntegerField(
        min_value=1, max_value=2_000_000_000, allow_null=True, required=False,
        help_text=gettext_lazy("At most this many points per customer per cap_period; null: "
                               "no cap."))


class RuleSerializer(UpsertSerializer):
    """An earning rule, named by its code."""

    code = natural_code()
    kind = NamedChoiceField(Rule.Kind.choices, enum_name="RuleKindEnum")
    points = rule_points()
    cap = rule_cap()

    class Meta:
        model = Rule
        natural_key = ("code",)
        fields = [*RULE_FIELDS, "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]

    def validate_code(self, code):
        return refuse_route_names(code)

    def validate(self, attrs):
        check_dates(self, attrs)
        return super().validate(attrs)


class DryRunRuleSerializer(serializers.ModelSerializer):
    """A rule as for rules/, saved or not (its code may be taken: nothing is written), and
    the days of orders to run it on."""

    # Not checked for uniqueness: the body may be a change to a saved rule.
    code = serializers.SlugField(max_length=50, required=False, default="dry-run")
    title = serializers.CharField(max_length=200, required=False, default="Dry run")
    points = rule_points()
    cap = rule_cap()
    kind = NamedChoiceField(Rule.Kind.choices, enum_name="RuleKindEnum")
    days = serializers.IntegerField(
        min_value=1, max_value=MAX_DRY_RUN_DAYS, default=90, write_only=True,
        help_text=gettext_lazy("Run on the orders of the last this many days (default 90)."))

    class Meta:
        model = Rule
        fields = [*RULE_FIELDS, "days"]

    def validate(self, attrs):
        start, end = attrs.get("valid_from"), attrs.get("valid_until")
        if start and end and end < start:
            raise serializers.ValidationError(
                {"valid_until": [_("The last day cannot be before valid_from.")]},
                code="dates_reversed")
        return attrs


class DryRunRuleSchema(OpenApiSerializerExtension):
    """Document the dry run's body as a rule's (RuleRequest) plus `days`, rather than a copy
    of it: a copy would put the rule kinds in two components, which drf-spectacular can
    only name with a hash (and warns about)."""

    target_class = DryRunRuleSerializer

    def map_serializer(self, auto_schema, direction):
        rule = auto_schema.resolve_serializer(RuleSerializer, direction)
        days = DryRunRuleSerializer().fields["days"]
        return {"allOf": [rule.ref, {
            "type": "object",
            "properties": {"days": auto_schema._map_serializer_field(days, direction)},
        }]}


class DryRunSerializer(serializers.Serializer):
    days = serializers.IntegerField()
    orders = serializers.IntegerField(help_text=gettext_lazy("Orders that would earn."))
    customers = serializers.IntegerField(help_text=gettext_lazy("Customers who would earn."))
    points = serializers.IntegerField(help_text=gettext_lazy("Points that would be earned."))
    value = serializers.DecimalField(
        max_digits=14, decimal_places=2,
        help_text=gettext_lazy("What those points cost the business, at the program's value of "
                               "a point."))


class TierSerializer(UpsertSerializer):
    """A tier, named by its code; customers reach it by `threshold` (points earned, or money
    spent in whole units, over the last 12 months)."""

    code = natural_code()

    class Meta:
        model = Tier
        natural_key = ("code",)
        fields = ["code", "title", "threshold", "multiplier", "discount_percent",
                  "early_access_days", "benefits"]
        # Bounds that hold on every database (SQLite's integers are wider than PostgreSQL's).
        extra_kwargs = {"threshold": {"max_value": 2_000_000_000},
                        "early_access_days": {"max_value": 365}}

    def update(self, instance, validated_data):
        # A tier has no updated_at (UpsertSerializer.update writes one).
        for name, value in validated_data.items():
            setattr(instance, name, value)
        instance.save(update_fields=list(validated_data))
        return instance


class RewardSerializer(UpsertSerializer):
    """A reward customers spend points on, named by its code."""

    value = serializers.DecimalField(
        max_digits=12, decimal_places=2, min_value=0, required=False,
        help_text=gettext_lazy("Percent, or amount off, as the kind says."))
    code = natural_code()
    kind = NamedChoiceField(Reward.Kind.choices, enum_name="RewardKindEnum")
    course = CourseRef(allow_null=True, required=False,
                       help_text=gettext_lazy("The free course's code (kind free_course)."))

    class Meta:
        model = Reward
        natural_key = ("code",)
        fields = ["code", "title", "kind", "value", "points", "stock", "per_customer_limit",
                  "valid_from", "valid_until", "active", "description", "course",
                  "code_valid_days", "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]
        # Bounds that hold on every database (SQLite's integers are wider than PostgreSQL's,
        # and a coupon valid for a million days would overflow its date).
        extra_kwargs = {"points": {"max_value": 1_000_000_000},
                        "stock": {"max_value": 2_000_000_000},
                        "per_customer_limit": {"max_value": 32767},
                        "code_valid_days": {"min_value": 1, "max_value": 3650}}

    def validate(self, attrs):
        check_dates(self, attrs)
        kind = self.current(attrs, "kind")
        value = self.current(attrs, "value")
        if kind == Reward.Kind.PERCENT_OFF and value is not None and value > 100:
            raise serializers.ValidationError(
                {"value": [_("A percent off is at most 100.")]}, code="max_value")
        if kind == Reward.Kind.FREE_COURSE and self.current(attrs, "course") is None:
            raise serializers.ValidationError(
                {"course": [_("A free course reward names its course.")]}, code="required")
        return super().validate(attrs)


# Accounts and their ledger ------------------------------------------------------------------


class EntrySerializer(serializers.ModelSerializer):
    """One line of a customer's ledger; `points` is signed (a debit is negative)."""

    kind = NamedChoiceField(Entry.Kind.choices, enum_name="EntryKindEnum", read_only=True)

    class Meta:
        model = Entry
        fields = ["id", "kind", "points", "status", "reason", "source", "created_at", "key"]
        read_only_fields = fields


class NextTierSerializer(serializers.Serializer):
    code = serializers.CharField()
    title = serializers.CharField()
    needed = serializers.IntegerField(help_text=gettext_lazy(
        "Still to earn (points, or money spent in whole units) to reach it."))


class KeepTierSerializer(serializers.Serializer):
    needed = serializers.IntegerField(help_text=gettext_lazy("To earn by then to keep the tier."))
    by = serializers.DateField()


class ExpiringSerializer(serializers.Serializer):
    points = serializers.IntegerField()
    on = serializers.DateField()


class AccountSerializer(serializers.Serializer):
    """A customer's balances, tier and referral code (built by views.account_body)."""

    customer = serializers.CharField(help_text=gettext_lazy("The customer's customer_id."))
    available = serializers.IntegerField(help_text=gettext_lazy("Points that can be spent."))
    pending = serializers.IntegerField(help_text=gettext_lazy(
        "Points earned from orders still within the refund window."))
    lifetime_earned = serializers.IntegerField()
    tier = serializers.CharField(allow_null=True, help_text=gettext_lazy("The tier's code."))
    tier_basis = serializers.ChoiceField(
        choices=["points", "spend"],
        help_text=gettext_lazy("What tiers are judged on: points earned, or money spent."))
    tier_qualifying = serializers.IntegerField(help_text=gettext_lazy(
        "The points earned (or money spent, whole units) over the last 12 months, as of the "
        "last nightly evaluation."))
    next_tier = NextTierSerializer(allow_null=True)
    keep_tier = KeepTierSerializer(allow_null=True)
    expiring = ExpiringSerializer(many=True, help_text=gettext_lazy("Soonest first."))
    referral_code = serializers.CharField(
        allow_null=True, help_text=gettext_lazy(
            "The code the customer shares; null until the customer has an account (opened "
            "with their first order, adjustment or referral)."))


class AdjustmentSerializer(serializers.Serializer):
    """A credit (points > 0) or debit (points < 0) by the platform or staff."""

    customer = CustomerRef(help_text=gettext_lazy("The customer's customer_id."))
    points = serializers.IntegerField(
        min_value=-MAX_ADJUSTMENT, max_value=MAX_ADJUSTMENT,
        help_text=gettext_lazy("Signed: positive credits, negative debits; not 0."))
    reason = serializers.CharField(max_length=200)
    key = key_field("entry")

    def validate_points(self, points):
        if points == 0:
            raise serializers.ValidationError(_("An adjustment of 0 points changes nothing."),
                                              code="zero")
        return points


# Redemptions --------------------------------------------------------------------------------


class RedemptionSerializer(serializers.ModelSerializer):
    """A reward redeemed: the points spent and the single-use coupon code issued."""

    customer = serializers.CharField(source="account.customer.external_id", read_only=True,
                                     help_text=gettext_lazy("The customer's customer_id."))
    reward = serializers.CharField(source="reward.code", read_only=True,
                                   help_text=gettext_lazy("The reward's code."))
    available_after = serializers.IntegerField(
        read_only=True, help_text=gettext_lazy("The available balance the redemption left."))

    class Meta:
        model = Redemption
        fields = ["id", "customer", "reward", "points", "coupon_code", "expires_at",
                  "available_after", "created_at", "used_at"]
        read_only_fields = fields

    def to_representation(self, redemption):
        from loyalty import redemptions

        data = super().to_representation(redemption)
        data["available_after"] = redemptions.available_after(redemption)
        return data


class RedeemSerializer(serializers.Serializer):
    customer = CustomerRef(help_text=gettext_lazy("The customer's customer_id."))
    reward = RewardRef(help_text=gettext_lazy("The reward's code."))
    key = key_field("redemption")


# Referrals ----------------------------------------------------------------------------------


class ReferralSerializer(serializers.ModelSerializer):
    """A referral the platform reported: pending until the referred customer's first paid
    order is past the refund window, then rewarded (or capped); or refused, with why."""

    referrer = serializers.CharField(source="referrer.customer.external_id", read_only=True,
                                     help_text=gettext_lazy("The referrer's customer_id."))
    referred = serializers.CharField(source="referred.external_id", read_only=True,
                                     help_text=gettext_lazy("The referred customer's "
                                                            "customer_id."))

    class Meta:
        model = Referral
        fields = ["id", "referrer", "referred", "status", "refused_because", "created_at",
                  "rewarded_at"]
        read_only_fields = fields


class RecordReferralSerializer(serializers.Serializer):
    referral_code = serializers.CharField(
        max_length=16, help_text=gettext_lazy("The code the customer came with (case-blind)."))
    customer = CustomerRef(help_text=gettext_lazy("The referred customer's customer_id."))
    fingerprint = serializers.CharField(
        max_length=128, required=False, allow_blank=True, default="",
        help_text=gettext_lazy("The platform's payment or device fingerprint, if it has one."))
    key = key_field("referral")
