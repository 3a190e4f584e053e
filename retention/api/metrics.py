"""The figures under /api/v1/metrics/, read-only: the period metrics (the same object as
`compute_metrics --json`), cohorts (`cohorts/`, as `cohort_retention --json`), segment sizes
(`segments/`) and moves (`migration/`), and a price update's effect (`price-update/`)."""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from retention.figures import cohorts, metrics, price_update, segments
from retention.money import as_json
from retention.permissions import IsPlatformOrManager
from retention.sales.models import CUSTOMER_TYPES


class FiguresView(APIView):
    """Figures over many tables: for the platform and managers only (not any staff)."""

    permission_classes = [IsPlatformOrManager]


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
        required=False, default="", choices=["", *CUSTOMER_TYPES]
    )
    category = serializers.CharField(required=False, default="", max_length=100)
    segment = serializers.CharField(required=False, default="", max_length=50)

    def validate(self, data):
        if data["end"] < data["start"]:
            raise ValidationError({"end": _("The end is before the start.")})
        return data


class MetricsView(FiguresView):
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
                                category=data["category"], segment=data["segment"])
        try:
            figures = metrics.compute(
                data["start"], data["end"], window_days=data.get("window_days"),
                new_offering_window_days=data.get("new_offering_window_days"), subset=subset,
            )
        except metrics.InvalidPeriod as exc:
            raise ValidationError({"detail": str(exc)}) from None
        return Response(as_json(figures))



class CohortsQuery(serializers.Serializer):
    start = serializers.DateField(help_text=_("First day: cohorts are the months overlapping the range."))
    end = serializers.DateField(help_text=_("Last day and as-of date: later orders count nowhere."))

    def validate(self, data):
        if data["end"] < data["start"]:
            raise ValidationError({"end": _("The end is before the start.")})
        return data


class CohortsView(FiguresView):
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
        return Response(as_json(result))


class SegmentsQuery(serializers.Serializer):
    on = serializers.DateField(help_text=_("A snapshot date."))


class MigrationQuery(serializers.Serializer):
    first = serializers.DateField(help_text=_("The earlier snapshot date."))
    second = serializers.DateField(help_text=_("The later snapshot date."))

    def validate(self, data):
        if data["second"] < data["first"]:
            raise ValidationError({"second": _("The second date is before the first.")})
        return data


class SegmentsView(FiguresView):
    """Customers per segment on a snapshot date (`on`), in the order of the segment table."""

    @extend_schema(summary="Segment sizes", parameters=[SegmentsQuery],
                   responses={200: OpenApiTypes.OBJECT, 400: OpenApiTypes.OBJECT})
    def get(self, request):
        query = SegmentsQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        on = query.validated_data["on"]
        return Response({"on": on.isoformat(), "segments": segments.stored_sizes(on)})


class MigrationView(FiguresView):
    """Moves between two snapshot dates, with the revenue at stake in each."""

    @extend_schema(summary="Segment migration", parameters=[MigrationQuery],
                   responses={200: OpenApiTypes.OBJECT, 400: OpenApiTypes.OBJECT})
    def get(self, request):
        query = MigrationQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        first, second = query.validated_data["first"], query.validated_data["second"]
        moves = segments.stored_migration(first, second)
        return Response({"first": first.isoformat(), "second": second.isoformat(), "moves": moves})


class PriceUpdateQuery(serializers.Serializer):
    date = serializers.DateField(required=False, help_text=_("The day prices changed (default: the latest)."))
    days = serializers.IntegerField(required=False, min_value=1, max_value=3650,
                                    help_text=_("Days on each side (default: since the update)."))


class PriceUpdateView(FiguresView):
    """The main metrics before and after a price update, for all customers and the buyers of the
    repriced offerings (the object `price_update_effect --json` prints)."""

    @extend_schema(summary="Price update effect", parameters=[PriceUpdateQuery],
                   responses={200: OpenApiTypes.OBJECT, 400: OpenApiTypes.OBJECT})
    def get(self, request):
        query = PriceUpdateQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        try:
            result = price_update.compare(query.validated_data.get("date"),
                                          days=query.validated_data.get("days"))
        except price_update.NoPriceUpdate as exc:
            raise ValidationError({"date": str(exc)}) from None
        return Response(as_json(result))
