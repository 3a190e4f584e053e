"""The loyalty REST API (/api/v1/loyalty/): thin views over loyalty's modules.

Each write parses its body, calls one function of loyalty/ledger.py, redemptions.py,
referrals.py or earning.py and shapes its answer. Calls that spend or create take an
idempotency `key`: the same key again answers 200 with the first result and changes
nothing. A refusal of the program (not enough points, out of stock, an unknown referral
code…) is a 409 `{"code", "detail"}` with the module's stable code, never a 500.

Permissions are retention's (the platform's token may do everything; staff need the
model's permission), except that a POST which only ever creates (an adjustment, a
redemption, a referral) needs the model's add permission alone, and the dry run of a
rule, which writes nothing, needs only the view permission of rules.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import django_filters as filters
from django.db import DataError, IntegrityError, transaction
from django.db.models import OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import exceptions, mixins, status
from rest_framework.decorators import action
from rest_framework.generics import GenericAPIView, ListAPIView
from rest_framework.response import Response

from loyalty import earning, ledger, redemptions, referrals, tiers
from loyalty.api import serializers as s
from loyalty.models import Account, Entry, Redemption, Referral, Reward, Rule, Tier
from retention.api.base import FIELD_ERRORS, PlatformViewSet, UpsertViewSet, path_key, upsert_schema
from retention.api.predictions import ProblemSerializer
from retention.permissions import IsPlatformOrStaff, is_platform
from retention.sales.models import Customer

T = TypeVar("T")


# Refusals and permissions ---------------------------------------------------------------------


class Problem(exceptions.APIException):
    """A refused request: `{"code": stable name, "detail": for people}` with its status
    (409 by default: the request was understood, and the program says no)."""

    status_code = status.HTTP_409_CONFLICT

    def __init__(self, code: str, detail: str, *, status_code: int | None = None):
        if status_code is not None:
            self.status_code = status_code
        super().__init__(detail={"code": code, "detail": str(detail)}, code=code)


def problem(description: str, example_code: str, example_detail: str) -> OpenApiResponse:
    return OpenApiResponse(
        response=ProblemSerializer, description=description,
        examples=[OpenApiExample(example_code, value={"code": example_code,
                                                      "detail": example_detail})])


def retried(call: Callable[[], T]) -> T:
    """Run `call`; once more if a concurrent call with the same key (or for the same row)
    committed first, which the second run then finds and returns."""
    try:
        return call()
    except IntegrityError:
        return call()


def keyed(call: Callable[[], T]) -> T:
    """Run an idempotent write (`retried` on a race); a refusal of the ledger (points, stock,
    limits, an unknown code) becomes a 409 with its stable code."""
    try:
        return retried(call)
    except ledger.LedgerError as exc:
        raise Problem(exc.code, getattr(exc, "detail", str(exc))) from None


def written(data, *, created: bool) -> Response:
    """201 for a first write, 200 for the same key again (the first result, nothing changed)."""
    return Response(data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


def customer_named(customer_id: str) -> Customer:
    # PostgreSQL refuses to compare text with a NUL character, and no id holds one.
    customer = None
    if "\x00" not in customer_id:
        customer = Customer.objects.filter(external_id=customer_id).first()
    if customer is None:
        raise Problem("unknown_customer",
                      _("No customer has customer_id '%(id)s'.") % {"id": customer_id},
                      status_code=status.HTTP_404_NOT_FOUND)
    return customer


UNKNOWN_CUSTOMER = problem("`code` \"unknown_customer\": no customer has this id.",
                           "unknown_customer", "No customer has customer_id 'C-404'.")
UNKNOWN_CUSTOMER_OR_PAGE = problem(
    '`code` "unknown_customer": no customer has this id; "invalid_page": past the last page.',
    "unknown_customer", "No customer has customer_id 'C-404'.")


class LoyaltyPermission(IsPlatformOrStaff):
    """retention's rule, with the permission a POST needs named by the view (`post_needs`):
    "add" for a call that only ever creates, "view" for one that changes nothing."""

    def has_permission(self, request, view) -> bool:
        needs = getattr(view, "post_needs", None)
        if request.method != "POST" or needs is None:
            return super().has_permission(request, view)
        user = request.user
        if not (user and user.is_authenticated and user.is_active):
            return False
        if is_platform(user):
            return True
        if not user.is_staff:
            return False
        opts = view.queryset.model._meta
        allowed = [needs, "change"] if needs == "view" else [needs]  # who may change may view
        return any(user.has_perm(f"{opts.app_label}.{name}_{opts.model_name}") for name in allowed)


class LoyaltyViewSet(PlatformViewSet):
    permission_classes = [LoyaltyPermission]


# The program: rules, tiers, rewards ---------------------------------------------------------


class RuleFilter(filters.FilterSet):
    kind = filters.ChoiceFilter(choices=Rule.Kind.choices)
    active = filters.BooleanFilter()

    class Meta:
        model = Rule
        fields = []


@upsert_schema(
    s.RuleSerializer, "rule", key=[path_key("code", "The rule's code.", "spend")],
    example={"code": "spend", "title": "1 point per rand", "kind": "per_amount", "points": 1,
             "cap": None, "cap_period": "year", "use_tier_multiplier": True, "active": True},
)
@extend_schema_view(
    list=extend_schema(summary="List the earning rules"),
    retrieve=extend_schema(summary="An earning rule"),
)
class RuleViewSet(UpsertViewSet):
    """How points are earned: per currency unit spent, bonuses for a bundle, a first course in
    a new category, a completed course, a survey answer or a birthday."""

    queryset = Rule.objects.all()
    serializer_class = s.RuleSerializer
    filterset_class = RuleFilter
    permission_classes = [LoyaltyPermission]
    lookup_field = "code"
    post_needs: str | None = None  # the dry run's: "view"

    @extend_schema(
        summary="Dry-run a rule on recent orders",
        description="What the rule in the body (saved or not; its code may be a saved rule's) "
        "would have earned on the paid orders of the last `days` days (default 90), with the "
        "tiers as they are now and no cap carried over from earlier earnings. Writes nothing; "
        "needs only permission to view rules. Rules that do not earn on orders (completed "
        "course, survey, birthday) give zeros.",
        request=s.DryRunRuleSerializer,
        responses={200: s.DryRunSerializer, 400: FIELD_ERRORS},
        examples=[
            OpenApiExample("A bundle bonus", request_only=True, value={
                "code": "bundle-bonus", "title": "Bundle bonus", "kind": "bundle",
                "points": 200, "days": 30}),
            OpenApiExample("Its result", response_only=True, value={
                "days": 30, "orders": 42, "customers": 39, "points": 8400, "value": "84.00"}),
        ],
    )
    @action(detail=False, methods=["post"], url_path="dry-run", post_needs="view",
            filter_backends=[], pagination_class=None)
    def dry_run(self, request):
        body = s.DryRunRuleSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        fields = dict(body.validated_data)
        days = fields.pop("days")
        try:
            with transaction.atomic():
                result = earning.dry_run(Rule(**fields), days=days)
        except DataError:  # PostgreSQL: an integer overflow of points × amounts
            raise exceptions.ValidationError(
                {"points": [_("Too many points: the total would overflow.")]}) from None
        return Response(s.DryRunSerializer(result).data)


@upsert_schema(
    s.TierSerializer, "tier", key=[path_key("code", "The tier's code.", "gold")],
    example={"code": "gold", "title": "Gold", "threshold": 3000, "multiplier": "1.50",
             "discount_percent": 10, "early_access_days": 7,
             "benefits": "10 % off every course\nNew courses a week early"},
)
@extend_schema_view(
    list=extend_schema(summary="List the tiers", description="Lowest threshold first."),
    retrieve=extend_schema(summary="A tier"),
)
class TierViewSet(UpsertViewSet):
    """Tiers, judged every night on the points earned (or money spent) over 12 months."""

    queryset = Tier.objects.all()
    serializer_class = s.TierSerializer
    permission_classes = [LoyaltyPermission]
    lookup_field = "code"


class RewardFilter(filters.FilterSet):
    kind = filters.ChoiceFilter(choices=Reward.Kind.choices)
    active = filters.BooleanFilter()

    class Meta:
        model = Reward
        fields = []


@upsert_schema(
    s.RewardSerializer, "reward", key=[path_key("code", "The reward's code.", "ten-off")],
    example={"code": "ten-off", "title": "10 % off your next course", "kind": "percent_off",
             "value": "10.00", "points": 1000, "stock": None, "per_customer_limit": 1,
             "valid_from": "2026-01-01", "valid_until": None, "active": True},
)
@extend_schema_view(
    list=extend_schema(summary="List the rewards", description="Cheapest first."),
    retrieve=extend_schema(summary="A reward"),
)
class RewardViewSet(UpsertViewSet):
    """What customers spend points on; `stock` null means no limit."""

    queryset = Reward.objects.select_related("course")
    serializer_class = s.RewardSerializer
    filterset_class = RewardFilter
    permission_classes = [LoyaltyPermission]
    lookup_field = "code"


# Accounts and their ledger ------------------------------------------------------------------


def account_body(customer: Customer) -> dict:
    """The customer's balances, tier, what is expiring and their referral code.

    A customer without an account (no activity yet) gets zeros and no referral code, and
    nothing is written: the account is opened by the first thing that needs one (an
    order, an adjustment, a referral, the customer's page). An existing account without a
    code is given one here (referrals.code_of, once).
    """
    account = Account.objects.select_related("tier").filter(customer=customer).first()
    code = None
    if account is None:
        account = Account(customer=customer)  # never saved
    else:
        code = referrals.code_of(account)
    progress = tiers.progress_of(account, ledger.today())
    tier = progress["tier"]
    return {
        "customer": customer.external_id,
        "available": account.available,
        "pending": account.pending,
        "lifetime_earned": account.lifetime_earned,
        "tier": tier.code if tier else None,
        "tier_basis": progress["basis"],
        "tier_qualifying": progress["qualifying"],
        "next_tier": progress["next_tier"],
        "keep_tier": progress["keep_tier"],
        "expiring": ledger.expiring(account) if account.pk else [],
        "referral_code": code,
    }


CUSTOMER_KEY = path_key("customer_id", "The sales platform's customer id.", "C-1")


class AccountView(GenericAPIView):
    """A customer's place in the program."""

    queryset = Account.objects.all()
    serializer_class = s.AccountSerializer
    permission_classes = [LoyaltyPermission]
    pagination_class = None
    filter_backends = []

    @extend_schema(
        summary="A customer's points, tier and referral code",
        description="`available` can be spent; `pending` points come from orders still in the "
        "refund window. `next_tier` is the next tier up and what is still needed for it; "
        "`keep_tier` what the customer must earn by when to keep theirs. A customer with no "
        "activity gets zeros (and `referral_code` null until their account is opened), not "
        "a 404.",
        parameters=[CUSTOMER_KEY],
        responses={200: s.AccountSerializer, 404: UNKNOWN_CUSTOMER},
        examples=[OpenApiExample("A silver member", response_only=True, value={
            "customer": "C-1", "available": 1240, "pending": 180, "lifetime_earned": 2600,
            "tier": "silver", "tier_basis": "points", "tier_qualifying": 2100,
            "next_tier": {"code": "gold", "title": "Gold", "needed": 900},
            "keep_tier": {"needed": 400, "by": "2026-11-30"},
            "expiring": [{"points": 300, "on": "2026-09-01"}], "referral_code": "K7XQ2MPA"})],
    )
    def get(self, request, customer_id: str):
        return Response(s.AccountSerializer(account_body(customer_named(customer_id))).data)


class EntryFilter(filters.FilterSet):
    kind = filters.ChoiceFilter(choices=Entry.Kind.choices)
    status = filters.ChoiceFilter(choices=Entry.Status.choices)

    class Meta:
        model = Entry
        fields = []


class EntryListView(ListAPIView):
    """A customer's ledger, newest first."""

    queryset = Entry.objects.all()
    serializer_class = s.EntrySerializer
    filterset_class = EntryFilter
    permission_classes = [LoyaltyPermission]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema's look at the model
            return Entry.objects.none()
        customer = customer_named(self.kwargs["customer_id"])
        return Entry.objects.filter(account__customer=customer).order_by("-created_at", "-id")

    def paginate_queryset(self, queryset):
        # Every 404 of this URL has a code, a page past the last one too.
        try:
            return super().paginate_queryset(queryset)
        except exceptions.NotFound as exc:
            raise Problem("invalid_page", exc.detail,
                          status_code=status.HTTP_404_NOT_FOUND) from None

    @extend_schema(
        summary="A customer's ledger entries",
        description="Every change to the customer's balance, newest first: `points` is signed, "
        "`status` pending for points from an order still in the refund window. `key` is the "
        "entry's key in the ledger (an adjustment's is `adjust:` and the key sent; a "
        "redemption's `redeem:` and its key). A customer with no activity has none.",
        parameters=[CUSTOMER_KEY],
        responses={200: s.EntrySerializer(many=True), 404: UNKNOWN_CUSTOMER_OR_PAGE},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


# Adjustments ------------------------------------------------------------------------------------


class AdjustmentViewSet(LoyaltyViewSet):
    """Credits and debits by the platform or staff."""

    queryset = Entry.objects.all()
    serializer_class = s.AdjustmentSerializer
    post_needs = "add"

    @extend_schema(
        summary="Credit or debit a customer's points",
        description="A credit (points > 0) adds an available lot; a debit (points < 0) takes "
        "from the available points, oldest first, and is refused with 409 "
        "`insufficient_points` past the available balance. Answers the ledger entry: 201 "
        "when written; 200 with the first entry, and nothing changed, when the key was used "
        "before. Staff need the permission to add entries.",
        request=s.AdjustmentSerializer,
        responses={
            201: s.EntrySerializer, 200: s.EntrySerializer, 400: FIELD_ERRORS,
            409: problem('`code` "insufficient_points": a debit past the available balance.',
                         "insufficient_points", "500 points asked for, 120 available"),
        },
        examples=[OpenApiExample("Goodwill credit", request_only=True, value={
            "customer": "C-1", "points": 250, "reason": "Sorry for the broken video",
            "key": "ticket-812-goodwill"})],
    )
    def create(self, request):
        body = s.AdjustmentSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        done = keyed(lambda: ledger.adjust(
            data["customer"], data["points"], reason=data["reason"],
            key=f"adjust:{data['key']}", by=request.user.get_username()))
        return written(s.EntrySerializer(done.entry).data, created=done.created)


# Redemptions ----------------------------------------------------------------------------------


class RedemptionFilter(filters.FilterSet):
    customer = filters.CharFilter(field_name="account__customer__external_id",
                                  help_text=gettext_lazy("The customer's customer_id."))
    reward = filters.CharFilter(field_name="reward__code",
                                help_text=gettext_lazy("The reward's code."))

    class Meta:
        model = Redemption
        fields = []


def balance_after():
    """Per redemption, the available balance its debit left: what
    loyalty.redemptions.available_after reads back, as one subquery for a whole page."""
    entry = OuterRef("entry__created_at")
    then = Entry.objects.filter(account_id=OuterRef("account_id"),
                                status=Entry.Status.AVAILABLE).filter(
        Q(created_at__lt=entry) | Q(created_at=entry, pk__lte=OuterRef("entry_id")))
    return Coalesce(Subquery(then.order_by().values("account_id").annotate(
        s=Sum("points")).values("s")[:1]), 0)


REFUSED_REDEMPTION = problem(
    '`code` one of "insufficient_points" (not enough available points), "out_of_stock", '
    '"limit_reached" (the reward\'s limit per customer), "reward_unavailable" (inactive, or '
    "outside its dates).",
    "insufficient_points", "10 % off costs 1000 points; 640 are available.")


@extend_schema_view(
    list=extend_schema(summary="List redemptions", description="Newest first."),
    retrieve=extend_schema(summary="A redemption"),
)
class RedemptionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, LoyaltyViewSet):
    """Rewards redeemed: the points spent and the coupon codes issued."""

    queryset = Redemption.objects.select_related("account__customer", "reward", "entry")
    serializer_class = s.RedemptionSerializer
    filterset_class = RedemptionFilter
    post_needs = "add"
    lookup_value_regex = "[0-9]+"  # by id

    def get_queryset(self):
        return super().get_queryset().annotate(available_after=balance_after())

    @extend_schema(
        summary="Redeem a reward",
        description="Spends the reward's points and issues a single-use coupon code, emailed "
        "to the customer. 201 when redeemed; 200 with the first redemption, and nothing "
        "changed, when the key was used before; 409 when the program refuses it. Staff need "
        "the permission to add redemptions.",
        request=s.RedeemSerializer,
        responses={201: s.RedemptionSerializer, 200: s.RedemptionSerializer, 400: FIELD_ERRORS,
                   409: REFUSED_REDEMPTION},
        examples=[
            OpenApiExample("Redeem", request_only=True, value={
                "customer": "C-1", "reward": "ten-off", "key": "order-page-7f3a9c"}),
            OpenApiExample("Redeemed", response_only=True, status_codes=["201"], value={
                "id": 17, "customer": "C-1", "reward": "ten-off", "points": 1000,
                "coupon_code": "R-K7XQ-2MPA-9WDF", "expires_at": "2026-06-18T12:00:00Z",
                "available_after": 240, "created_at": "2026-03-20T12:00:00Z",
                "used_at": None}),
        ],
    )
    def create(self, request):
        body = s.RedeemSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        done = keyed(lambda: redemptions.redeem(data["customer"], data["reward"], key=data["key"]))
        return written(s.RedemptionSerializer(done.redemption).data, created=done.created)


# Referrals --------------------------------------------------------------------------------------


class ReferralFilter(filters.FilterSet):
    referrer = filters.CharFilter(field_name="referrer__customer__external_id",
                                  help_text=gettext_lazy("The referrer's customer_id."))
    referred = filters.CharFilter(field_name="referred__external_id",
                                  help_text=gettext_lazy("The referred customer's customer_id."))
    status = filters.ChoiceFilter(choices=Referral.Status.choices)

    class Meta:
        model = Referral
        fields = []


@extend_schema_view(
    list=extend_schema(summary="List referrals", description="Newest first."),
    retrieve=extend_schema(summary="A referral"),
)
class ReferralViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, LoyaltyViewSet):
    """Referrals the platform reported, with their state."""

    queryset = Referral.objects.select_related("referrer__customer", "referred")
    serializer_class = s.ReferralSerializer
    filterset_class = ReferralFilter
    post_needs = "add"
    lookup_value_regex = "[0-9]+"  # by id

    @extend_schema(
        summary="Record a referral",
        description="The customer (the referred) signed up with a referral code. 201 with the "
        "referral: pending until their first paid order is past the refund window; or "
        "`refused` with `refused_because` (the referrer themselves, a near-identical email "
        "address or the same fingerprint, referred already), which is recorded, not an "
        "error. 200 with the first referral, and nothing changed, when the key was used "
        "before; 409 `unknown_code` when no customer has the code. Staff need the "
        "permission to add referrals.",
        request=s.RecordReferralSerializer,
        responses={201: s.ReferralSerializer, 200: s.ReferralSerializer, 400: FIELD_ERRORS,
                   409: problem('`code` "unknown_code": no customer has this referral code.',
                                "unknown_code", "no customer has the referral code 'NOPE'")},
        examples=[OpenApiExample("A sign-up with a code", request_only=True, value={
            "referral_code": "K7XQ2MPA", "customer": "C-2", "fingerprint": "card-9f86d081",
            "key": "signup-C-2"})],
    )
    def create(self, request):
        body = s.RecordReferralSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        done = keyed(lambda: referrals.record(
            data["referral_code"], data["customer"], key=data["key"],
            fingerprint=data["fingerprint"]))
        referral = Referral.objects.select_related("referrer__customer", "referred").get(
            pk=done.referral.pk)
        return written(s.ReferralSerializer(referral).data, created=done.created)

