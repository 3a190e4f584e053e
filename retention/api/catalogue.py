"""The catalogue: courses and bundles by code, and the history of their list prices (a
price changed through the API is recorded in it)."""

import django_filters as filters
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema_field
from rest_framework import mixins, serializers

from retention.api.base import PlatformViewSet, UpsertViewSet, path_key, upsert_schema
from retention.api.fields import (
    CourseCodesField,
    UpsertSerializer,
    course_codes,
    date_range,
    moment_range,
)
from retention.sales import catalogue
from retention.sales.models import Bundle, Course, PriceChange


class OfferingSerializer(UpsertSerializer):
    """Courses and bundles: codes unique case-blind across both; prices saved with history."""

    code = serializers.SlugField(max_length=50)
    # The other kind of offering, whose codes this one must not take.
    other_model: type[models.Model]
    # The many-to-many field set from a list of course codes.
    courses_field: str

    def validate_code(self, code):
        same_kind = type(self).Meta.model.objects.filter(code__iexact=code)
        if self.instance is not None:
            same_kind = same_kind.exclude(pk=self.instance.pk)
        if taken := same_kind.first():
            raise serializers.ValidationError(
                _("%(code)s is already used by %(kind)s %(taken)s (codes are compared "
                  "case-blind).")
                % {"code": code, "kind": taken._meta.verbose_name, "taken": taken.code},
                code="unique",
            )
        if taken := self.other_model.objects.filter(code__iexact=code).first():
            raise serializers.ValidationError(
                _("%(code)s is already the code of %(kind)s %(taken)s; a code names one course "
                  "or one bundle.")
                % {"code": code, "kind": taken._meta.verbose_name, "taken": taken.code},
                code="unique",
            )
        return code

    def create(self, validated_data):
        courses = validated_data.pop(self.courses_field, [])
        offering = catalogue.save_offering(self.Meta.model(**validated_data))
        getattr(offering, self.courses_field).set(courses)
        return offering

    def update(self, instance, validated_data):
        courses = validated_data.pop(self.courses_field, None)
        for name, value in validated_data.items():
            setattr(instance, name, value)
        # save_offering records a PriceChange when the price moved.
        catalogue.save_offering(instance, note="Changed through the API")  # stored, not translated
        if courses is not None:
            getattr(instance, self.courses_field).set(courses)
        return instance


OFFERING_FIELDS = ["code", "title", "price", "launched_on", "is_active"]


class CourseSerializer(OfferingSerializer):
    """A course, named by its code (unique case-blind, and not a bundle's code)."""

    other_model = Bundle
    courses_field = "follow_ons"
    follow_ons = CourseCodesField(
        required=False, help_text=_("Codes of the courses that naturally follow this one.")
    )

    class Meta:
        model = Course
        natural_key = ("code",)
        fields = [*OFFERING_FIELDS, "category", "level", "follow_ons", "created_at", "updated_at"]

    def validate_follow_ons(self, courses):
        if self.instance is not None and self.instance in courses:
            raise serializers.ValidationError(
                _("A course cannot follow itself."), code="own_follow_on"
            )
        return courses


class BundleSerializer(OfferingSerializer):
    """A bundle of courses, named by its code (unique case-blind, and not a course's code)."""

    other_model = Course
    courses_field = "courses"
    courses = CourseCodesField(
        allow_empty=False, help_text=_("Codes of the courses in the bundle.")
    )

    class Meta:
        model = Bundle
        natural_key = ("code",)
        fields = [*OFFERING_FIELDS, "courses", "created_at", "updated_at"]


class PriceChangeSerializer(serializers.ModelSerializer):
    """One change of a course's or a bundle's list price."""

    kind = serializers.SerializerMethodField()
    code = serializers.SerializerMethodField()
    change_percent = serializers.DecimalField(
        max_digits=12, decimal_places=2, read_only=True, allow_null=True,
        help_text=_("The change in percent of the old price; null when that was 0."),
    )

    class Meta:
        model = PriceChange
        fields = ["id", "kind", "code", "old_price", "new_price", "change_percent", "changed_at",
                  "note"]

    @extend_schema_field(serializers.ChoiceField(choices=["course", "bundle"]))
    def get_kind(self, change) -> str:
        return "course" if change.course_id else "bundle"

    def get_code(self, change) -> str:
        return change.offering.code


class CourseFilter(filters.FilterSet):
    category = filters.CharFilter(lookup_expr="iexact", help_text=gettext_lazy("Case-blind."))
    level = filters.ChoiceFilter(choices=Course.Level.choices)
    is_active = filters.BooleanFilter()
    launched_after, launched_before = date_range("launched_on", gettext_lazy("Launched"))

    class Meta:
        model = Course
        fields = []


class BundleFilter(filters.FilterSet):
    is_active = filters.BooleanFilter()
    course = filters.CharFilter(
        method="filter_course", help_text=gettext_lazy("Bundles containing this course code.")
    )
    launched_after, launched_before = date_range("launched_on", gettext_lazy("Launched"))

    class Meta:
        model = Bundle
        fields = []

    def filter_course(self, queryset, name, value: str):
        return queryset.filter(
            pk__in=Bundle.courses.through.objects.filter(course__in=course_codes(value))
            .values("bundle_id")
        )


class PriceChangeFilter(filters.FilterSet):
    code = filters.CharFilter(
        method="filter_code", help_text=gettext_lazy("The course's or bundle's code, case-blind.")
    )
    kind = filters.ChoiceFilter(
        choices=[("course", gettext_lazy("Course")), ("bundle", gettext_lazy("Bundle"))],
        method="filter_kind",
    )
    changed_after, changed_before = moment_range("changed_at", gettext_lazy("Changed"))

    class Meta:
        model = PriceChange
        fields = []

    def filter_code(self, queryset, name, value: str):
        return queryset.filter(Q(course__code__iexact=value) | Q(bundle__code__iexact=value))

    def filter_kind(self, queryset, name, value: str):
        return queryset.filter(**{f"{value}__isnull": False})


@upsert_schema(
    CourseSerializer,
    "course",
    key=[path_key("code", "The course's code.", "py-101")],
    example={
        "code": "py-101", "title": "Python for analysts", "price": "1200.00",
        "launched_on": "2025-02-01", "category": "data", "level": "beginner", "follow_ons": [],
    },
)
class CourseViewSet(UpsertViewSet):
    """Courses by code. A price change is recorded in the price history."""

    queryset = Course.objects.prefetch_related("follow_ons")
    serializer_class = CourseSerializer
    filterset_class = CourseFilter
    lookup_field = "code"


@upsert_schema(
    BundleSerializer,
    "bundle",
    key=[path_key("code", "The bundle's code.", "data-pack")],
    example={
        "code": "data-pack", "title": "Data pack", "price": "2000.00",
        "launched_on": "2025-01-01", "courses": ["py-101"],
    },
)
class BundleViewSet(UpsertViewSet):
    """Bundles by code, with the codes of their courses. A price change is recorded."""

    queryset = Bundle.objects.prefetch_related("courses")
    serializer_class = BundleSerializer
    filterset_class = BundleFilter
    lookup_field = "code"


class PriceChangeViewSet(mixins.ListModelMixin, PlatformViewSet):
    """The history of list prices, newest first."""

    queryset = PriceChange.objects.select_related("course", "bundle")
    serializer_class = PriceChangeSerializer
    filterset_class = PriceChangeFilter
