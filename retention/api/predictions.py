"""Read-only API of the nightly predictions and the at-risk list, under /api/v1/.

    GET predictions/[?as_of=&customer_id=&ordering=]     a day's predicted values, paginated
    GET predictions/fit/                              the latest fit's health and holdout check
    GET customers/{customer_id}/prediction/           a customer's latest prediction
    GET at-risk/[?as_of=&reason=&ordering=]           a day's customers at risk, paginated
    GET at-risk/backtest/                             how far the at-risk score can be trusted

Every answer that holds predictions carries `fit`, the fit that made them as
`predictions.describe` reports it, so a reader always sees whether the models or the
simple rule produced the numbers (`method` "model" or "fallback", with the reasons).
Without `as_of` a list shows the latest stored day; an `as_of` with nothing stored is
a 400 that names the nearest earlier day. Nothing here writes, except that the
back-test is computed once and cached by `atrisk.stored_backtests`, as on the page.

Lists cost the same few queries however many rows they hold: the fit, the count and
one page of rows with their customers joined.
"""

from datetime import date

import django_filters as filters
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from retention.api.base import FIELD_ERRORS, path_key
from retention.sales.models import Customer
from retention.value import atrisk, predictions
from retention.value.models import AtRisk, ClvFit, CustomerPrediction

# ---------------------------------------------------------------------------------------------
# What the answers look like (the fit's description is the dict predictions.describe makes)


METHOD_HELP = gettext_lazy('"model", or "fallback" for the simple rule.')


class FitSerializer(serializers.Serializer):
    """The fit behind the predictions, or `{"method": "none", "note": …}` when none is stored."""

    method = serializers.ChoiceField(
        choices=["model", "fallback", "none"],
        help_text=gettext_lazy("model: BG/NBD and Gamma-Gamma; fallback: the simple rule "
                               "replaced at least one of them (see fallback_reasons); none: "
                               "no predictions are stored yet."),
    )
    note = serializers.CharField(required=False, help_text=gettext_lazy("Only when none."))
    as_of = serializers.DateField(required=False,
                                  help_text=gettext_lazy("Orders up to this day were fitted."))
    customers = serializers.IntegerField(required=False)
    repeat_customers = serializers.IntegerField(required=False)
    # Plain text in the schema: one enum under three names would be three schema enums.
    purchases_method = serializers.CharField(required=False, help_text=METHOD_HELP)
    spend_method = serializers.CharField(required=False, help_text=METHOD_HELP)
    method_summary = serializers.CharField(required=False)
    fallback_reasons = serializers.ListField(child=serializers.CharField(), required=False)
    monthly_discount = serializers.FloatField(required=False)
    bgnbd = serializers.DictField(allow_null=True, required=False,
                                  help_text=gettext_lazy("r, alpha, a, b, log_likelihood, …"))
    gamma_gamma = serializers.DictField(allow_null=True, required=False,
                                        help_text=gettext_lazy("p, q, gamma, log_likelihood, …"))


class HoldoutGroupSerializer(serializers.Serializer):
    calibration_purchases = serializers.CharField()
    customers = serializers.IntegerField()
    predicted_mean = serializers.FloatField()
    actual_mean = serializers.FloatField()


class HoldoutSerializer(serializers.Serializer):
    """Predicted against actual purchases in the weeks after a calibration split."""

    weeks = serializers.IntegerField(allow_null=True)
    method = serializers.CharField(help_text=METHOD_HELP)
    fitted_at = serializers.DateTimeField()
    calibration_end = serializers.DateField()
    holdout_start = serializers.DateField()
    holdout_end = serializers.DateField()
    customers = serializers.IntegerField()
    holdout_customers_bought = serializers.IntegerField()
    predicted_purchases = serializers.FloatField()
    actual_purchases = serializers.IntegerField()
    error_percent = serializers.FloatField(allow_null=True)
    mean_absolute_error = serializers.FloatField()
    by_calibration_purchases = HoldoutGroupSerializer(many=True)


class FitHealthSerializer(FitSerializer):
    holdout = HoldoutSerializer(allow_null=True, help_text=gettext_lazy(
        "The latest holdout validation, or null when none has been run."))


class PredictionSerializer(serializers.ModelSerializer):
    """A customer's predictions on a day; expects `customer` selected."""

    customer_id = serializers.CharField(source="customer.external_id", read_only=True,
                                     help_text=gettext_lazy("The customer's customer_id."))

    class Meta:
        model = CustomerPrediction
        fields = ["customer_id", "as_of", "probability_active", "expected_purchases_12m",
                  "expected_value_per_purchase", "predicted_value_12m", "value_at_risk",
                  "no_purchase_90d", "frequency", "recency_weeks", "age_weeks"]
        read_only_fields = fields


class CustomerPredictionSerializer(PredictionSerializer):
    """A customer's latest prediction with its fit; expects `customer` and `fit` selected."""

    fit = serializers.SerializerMethodField()

    class Meta(PredictionSerializer.Meta):
        fields = [*PredictionSerializer.Meta.fields, "fit"]
        read_only_fields = fields

    @extend_schema_field(FitSerializer)
    def get_fit(self, prediction) -> dict:
        return predictions.describe(prediction.fit)


class AtRiskSerializer(serializers.ModelSerializer):
    """A customer at risk on a day, with the reasons; expects `customer` selected."""

    customer_id = serializers.CharField(source="customer.external_id", read_only=True,
                                     help_text=gettext_lazy("The customer's customer_id."))
    name = serializers.CharField(source="customer.display_name", read_only=True)
    email = serializers.EmailField(source="customer.email", read_only=True)
    reasons = serializers.SerializerMethodField(help_text=gettext_lazy(
        "The reasons in words, most telling first."))
    reason_codes = serializers.SerializerMethodField()

    class Meta:
        model = AtRisk
        fields = ["customer_id", "name", "email", "as_of", "score", "value_at_risk",
                  "predicted_value_12m", "probability_active", "days_since_last",
                  "usual_gap_days", "reasons", "reason_codes"]
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_reasons(self, row: AtRisk) -> list[str]:
        return [str(reason) for reason in atrisk.in_words(row)]

    @extend_schema_field(serializers.ListField(
        child=serializers.ChoiceField(choices=[r.code for r in atrisk.reasons()])))
    def get_reason_codes(self, row: AtRisk) -> list[str]:
        return atrisk.codes_of(row)


def page_of(rows: type[serializers.Serializer], name: str) -> type[serializers.Serializer]:
    """The paginated answer of a list of `rows`, with the fit beside the page's rows."""

    @extend_schema_serializer(many=False, component_name=name)
    class Page(serializers.Serializer):
        count = serializers.IntegerField()
        next = serializers.URLField(allow_null=True)
        previous = serializers.URLField(allow_null=True)
        fit = FitSerializer()
        results = rows(many=True)

    Page.__name__ = Page.__qualname__ = name
    return Page


PredictionPage = page_of(PredictionSerializer, "PaginatedPredictionList")
AtRiskPage = page_of(AtRiskSerializer, "PaginatedAtRiskList")


class BacktestQualitySerializer(serializers.Serializer):
    precision_at_100 = serializers.FloatField(allow_null=True)
    precision_at_1000 = serializers.FloatField(allow_null=True)
    auc = serializers.FloatField(allow_null=True)


class BacktestSerializer(serializers.Serializer):
    as_of = serializers.DateField(help_text=gettext_lazy("The month-end ranked."))
    until = serializers.DateField(help_text=gettext_lazy("The end of the 90 days checked."))
    customers = serializers.IntegerField(help_text=gettext_lazy("Active on as_of."))
    did_not_buy = serializers.IntegerField()
    base_rate = serializers.FloatField(allow_null=True, help_text=gettext_lazy("Percent."))
    method = serializers.CharField(help_text=METHOD_HELP)
    score = BacktestQualitySerializer()
    recency_baseline = BacktestQualitySerializer(
        help_text=gettext_lazy("The same check, ranking by days since the last order."))


class BacktestsSerializer(serializers.Serializer):
    today = serializers.DateField()
    backtests = BacktestSerializer(many=True, help_text=gettext_lazy(
        "The last month-ends whose following 90 days are over, newest first (empty before "
        "there are orders)."))


class ProblemSerializer(serializers.Serializer):
    code = serializers.CharField(help_text=gettext_lazy("Stable, for programs."))
    detail = serializers.CharField(help_text=gettext_lazy("For people."))


NOT_FOUND = OpenApiResponse(
    response=ProblemSerializer,
    description='`code` "unknown_customer": no customer has this id; "no_prediction": the '
    "customer has none stored yet.",
)


# ---------------------------------------------------------------------------------------------
# Queries


class DayQuery(serializers.Serializer):
    as_of = serializers.DateField(
        required=False,
        help_text=gettext_lazy("The day of the stored rows (default: the latest)."),
    )


class CustomerOrdering(filters.OrderingFilter):
    """`?ordering=` with the customer as the last key, so pages neither overlap nor skip."""

    def filter(self, qs, value):
        qs = super().filter(qs, value)
        return qs.order_by(*qs.query.order_by, "customer_id") if value else qs


class PredictionFilter(filters.FilterSet):
    customer_id = filters.CharFilter(field_name="customer__external_id",
                                  help_text=gettext_lazy("The customer's customer_id."))
    ordering = CustomerOrdering(
        fields=["predicted_value_12m", "value_at_risk", "probability_active",
                "expected_purchases_12m"],
        help_text=gettext_lazy("Sort key; '-' in front for descending "
                               "(default: -predicted_value_12m)."),
    )

    class Meta:
        model = CustomerPrediction
        fields = []


class AtRiskFilter(filters.FilterSet):
    customer_type = filters.ChoiceFilter(
        field_name="customer__customer_type", choices=Customer.Type.choices,
        help_text=gettext_lazy("Only customers of this type."))
    reason = filters.ChoiceFilter(
        choices=[(r.code, r.label) for r in atrisk.reasons()], method="filter_reason",
        help_text=gettext_lazy("Only the customers showing this reason."),
    )
    ordering = CustomerOrdering(
        fields=["value_at_risk", "score", "days_since_last", "predicted_value_12m"],
        help_text=gettext_lazy("Sort key; '-' in front for descending "
                               "(default: -value_at_risk)."),
    )

    class Meta:
        model = AtRisk
        fields = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The reasons registered now (the schema lists those registered when it was built);
        # the field, made from them once and copied with the filter, is made again.
        reason = self.filters["reason"]
        reason.extra["choices"] = [(r.code, r.label) for r in atrisk.reasons()]
        reason.__dict__.pop("_field", None)

    def filter_reason(self, queryset, name, value: str):
        return queryset.filter(atrisk.reason(value).condition())


def nothing_stored(day: date, earlier: date | None) -> ValidationError:
    """The 400 for an `as_of` without a nightly run's predictions, naming the nearest
    earlier day."""
    if earlier is None:
        message = _("Nothing is stored for %(day)s: no predictions were made on or before it.")
    else:
        message = _("Nothing is stored for %(day)s: no predictions were made for that day. "
                    "The nearest earlier day with them is %(earlier)s.")
    return ValidationError(
        {"as_of": [message % {"day": day.isoformat(), "earlier": earlier and earlier.isoformat()}]},
        code="not_stored",
    )


# ---------------------------------------------------------------------------------------------
# Views


class DayListViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """A list of one day's stored rows, with the fit that made them beside the page."""

    def default_day(self) -> date | None:
        """The day shown without `as_of`; None: the latest nightly fit's."""
        return None

    def day_and_fit(self, as_of: date | None) -> tuple[date | None, ClvFit | None]:
        """The day to list and the nightly fit whose predictions it holds (or was scored
        from); a 400 when `as_of` has none stored."""
        day = as_of or self.default_day()
        fit = predictions.latest_fit(on_or_before=day)
        if as_of is not None and (fit is None or fit.as_of != as_of):
            raise nothing_stored(as_of, fit and fit.as_of)
        return (day or (fit.as_of if fit else None)), fit

    def list(self, request, *args, **kwargs):
        query = DayQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        day, fit = self.day_and_fit(query.validated_data.get("as_of"))
        rows = self.get_queryset()
        rows = rows.filter(as_of=day) if day is not None else rows.none()
        page = self.paginate_queryset(self.filter_queryset(rows))
        response = self.get_paginated_response(self.get_serializer(page, many=True).data)
        data = response.data
        response.data = {"count": data["count"], "next": data["next"],
                         "previous": data["previous"], "fit": predictions.describe(fit),
                         "results": data["results"]}
        return response


@extend_schema(
    summary="Predicted customer values of a day",
    description="The predictions the nightly run stored for `as_of` (default: the latest), "
    "highest predicted 12-month value first. `fit` says what made them: the models or the "
    "simple rule, and why. Money is in the business currency.",
    parameters=[DayQuery],
    responses={200: PredictionPage, 400: FIELD_ERRORS},
)
class PredictionViewSet(DayListViewSet):
    queryset = CustomerPrediction.objects.select_related("customer").order_by(
        "-predicted_value_12m", "customer_id")
    serializer_class = PredictionSerializer
    filterset_class = PredictionFilter


@extend_schema(
    summary="Customers at risk on a day",
    description="The customers still counted active on `as_of` (default: the latest scored "
    "day) who show a sign of slipping away, with the reasons, the highest value at risk "
    "first. `fit` is the fit whose predictions they were scored from.",
    parameters=[DayQuery],
    responses={200: AtRiskPage, 400: FIELD_ERRORS},
)
class AtRiskViewSet(DayListViewSet):
    queryset = AtRisk.objects.select_related("customer").order_by(
        "-value_at_risk", "-score", "customer_id")
    serializer_class = AtRiskSerializer
    filterset_class = AtRiskFilter

    def default_day(self):
        # A day's list is scored from that day's predictions (and pruned with them).
        return atrisk.latest_day()


# The views below set `queryset` for IsPlatformOrStaff: staff need its model's view permission.


class FitView(GenericAPIView):
    """The health of the latest nightly fit and the latest holdout validation."""

    queryset = ClvFit.objects.all()
    pagination_class = None
    filter_backends = []

    @extend_schema(
        summary="Health of the predicted-value models",
        description="The latest nightly fit as `predictions.describe` reports it (parameters, "
        "customers, model or simple rule and why), and the latest holdout validation: "
        "predicted against actual purchases after a split. `method` is \"none\" before the "
        "first nightly run.",
        responses={200: FitHealthSerializer},
    )
    def get(self, request):
        check = predictions.latest_holdout()
        holdout = None
        if check is not None and check.holdout:
            holdout = {
                "weeks": check.holdout_weeks,
                "method": "model" if check.purchases_method == ClvFit.Method.MODEL
                else "fallback",
                "fitted_at": serializers.DateTimeField().to_representation(check.created_at),
                **check.holdout,
            }
        return Response({**predictions.describe(predictions.latest_fit()), "holdout": holdout})


class CustomerPredictionView(GenericAPIView):
    """A customer's latest stored prediction, with the fit that made it."""

    queryset = CustomerPrediction.objects.select_related("customer", "fit")
    serializer_class = CustomerPredictionSerializer
    pagination_class = None
    filter_backends = []

    @extend_schema(
        summary="A customer's latest prediction",
        parameters=[path_key("customer_id", "The sales platform's customer id.", "C-1")],
        responses={200: CustomerPredictionSerializer, 404: NOT_FOUND},
    )
    def get(self, request, customer_id: str):
        # PostgreSQL refuses to compare text with a NUL character, and no id holds one.
        known = "\x00" not in customer_id
        found = known and (self.get_queryset().filter(customer__external_id=customer_id)
                           .order_by("-as_of").first())
        if found:
            return Response(self.get_serializer(found).data)
        if not (known and Customer.objects.filter(external_id=customer_id).exists()):
            return Response({"code": "unknown_customer",
                             "detail": _("No customer has customer_id '%(id)s'.")
                             % {"id": customer_id}}, status=status.HTTP_404_NOT_FOUND)
        return Response({"code": "no_prediction",
                         "detail": _("No prediction is stored for customer '%(id)s' yet: the "
                                     "nightly run predicts for customers with a paid order.")
                         % {"id": customer_id}}, status=status.HTTP_404_NOT_FOUND)


class BacktestView(GenericAPIView):
    """Whether the at-risk score ranks well the customers who then did not buy."""

    queryset = AtRisk.objects.all()
    pagination_class = None
    filter_backends = []

    @extend_schema(
        summary="Back-test of the at-risk score",
        description="For the last month-ends whose following 90 days are over: of the customers "
        "active then, how many did not buy in those 90 days, and how well the score ranked "
        "them (precision among the top 100 and 1,000, ROC AUC) against ranking by days since "
        "the last order. Each is computed once and kept until orders up to its end change.",
        responses={200: BacktestsSerializer},
    )
    def get(self, request):
        today = timezone.localdate()
        return Response({"today": today.isoformat(),
                         "backtests": atrisk.stored_backtests(today)})
