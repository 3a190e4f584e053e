"""GET /api/v1/metrics/: the same object as `compute_metrics --json`."""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from retention import cohorts, metrics
from retention.management.commands.cohort_retention import as_json as cohorts_json


class MetricsQuery(serializers.Serializer):
    start = serializers.DateField(help_text=_("First day of the period (YYYY-MM-DD)."))
    end = serializers.DateField(help_text=_("Last day of the period, included."))
    window_days = serializers.IntegerField(
        required=False, min_value=1, max_value=3660,
        help_text=_("Activity window W in days (default: the RETENTION_ACTIVITY_WINDOW_DAYS setting)."),
    )
    new_offering_window_days = serializers.IntegerField(required=False, min_value=0, max_value=3660)
    source = serializers.CharField(required=False, default="", max_length=50)
    customer_type = serializers.ChoiceField(
        required=False, default="", choices=["", *metrics.CUSTOMER_TYPES]
    )
    category = serializers.CharField(required=False, default="", max_length=100)
    segment = serializers.CharField(required=False, default="", max_length=50)

    def validate_segment(self, value):
        if value:
            raise ValidationError(_("Segments are not computed yet."))
        return value

    def validate(self, data):
        if data["end"] < data["start"]:
            raise ValidationError({"end": _("The end is before the start.")})
        return data


class MetricsView(APIView):
    """Every period metric of the metric spec for [start, end], for all customers or a subset."""

    @extend_schema(
        summary="Period metrics",
        parameters=[MetricsQuery],
        responses={200: OpenApiTypes.OBJECT, 400: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        query = MetricsQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        subset = metrics.Subset(source=data["source"], customer_type=data["customer_type"],
                                category=data["category"])
        try:
            figures = metrics.compute(
                data["start"], data["end"], window_days=data.get("window_days"),
                new_offering_window_days=data.get("new_offering_window_days"), subset=subset,
            )
        except metrics.InvalidPeriod as exc:
            raise ValidationError({"detail": str(exc)}) from None
        return Response(metrics.as_json(figures))



class CohortsQuery(serializers.Serializer):
    start = serializers.DateField(help_text=_("First day: cohorts are the months overlapping the range."))
    end = serializers.DateField(help_text=_("Last day and as-of date: later orders count nowhere."))

    def validate(self, data):
        if data["end"] < data["start"]:
            raise ValidationError({"end": _("The end is before the start.")})
        return data


class CohortsView(APIView):
    """Monthly cohort retention and revenue: the object `cohort_retention --json` prints."""

    @extend_schema(
        summary="Cohort retention",
        parameters=[CohortsQuery],
        responses={200: OpenApiTypes.OBJECT, 400: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        query = CohortsQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        try:
            result = cohorts.table(query.validated_data["start"], query.validated_data["end"])
        except metrics.InvalidPeriod as exc:
            raise ValidationError({"detail": str(exc)}) from None
        return Response(cohorts_json(result))
