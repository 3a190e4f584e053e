"""The fields the API's resources share: references to records by the platform's keys,
date-times read in the business zone, and the date and moment ranges of list filters.

Date ranges on date-times take a date or an ISO 8601 date-time. A date means that day in
the business time zone (setting TIME_ZONE), the zone an order's date is read in:
`ordered_after=2025-03-01` starts at midnight there, and `ordered_before=2025-03-31` takes
in all of the 31st. Both ends are inclusive. A bad value is a 400 naming the parameter.
Every model CheckConstraint is checked by the serializers too, so breaking one is a 400
with the field named, never an IntegrityError.
"""

import copy
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import django_filters as filters
from django import forms
from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils.text import format_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework import serializers
from rest_framework.fields import empty
from rest_framework.settings import api_settings

from retention.sales import validation
from retention.sales.models import Course, Customer


class PlatformDateTimeField(serializers.DateTimeField):
    """An ISO 8601 date-time; without an offset it is in the business time zone.

    Years are limited as for imported orders: anything else is a typing mistake,
    and would overflow time zone arithmetic at the ends of the calendar.
    """

    def to_internal_value(self, value):
        moment = super().to_internal_value(value)
        if not validation.MIN_YEAR <= moment.year <= validation.MAX_YEAR:
            raise serializers.ValidationError(
                _("Use a year from %(min)s to %(max)s.")
                % {"min": validation.MIN_YEAR, "max": validation.MAX_YEAR},
                code="out_of_range",
            )
        return moment


class ReferenceField(serializers.CharField):
    """A related row named by its platform id or code; an unknown one is a 400.

    Subclasses set `queryset` and `lookup` (the model field holding the id), and
    give the message for an unknown id by overriding `unknown` or `find`. The
    value is validated as text first (length, no NUL or surrogate characters),
    then looked up.
    """

    queryset: models.QuerySet
    lookup: str
    unknown: str

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", self.queryset.model._meta.get_field(self.lookup).max_length)
        super().__init__(**kwargs)

    def run_validation(self, data=empty):
        value = super().run_validation(data)
        if value in (None, ""):
            return None
        return self.find(value)

    def find(self, value: str):
        try:
            return self.queryset.get(**{self.lookup: value})
        except self.queryset.model.DoesNotExist:
            raise serializers.ValidationError(
                self.unknown % {"value": value}, code="unknown"
            ) from None

    def to_representation(self, value):
        return getattr(value, self.lookup)


class CustomerRef(ReferenceField):
    queryset = Customer.objects.all()
    lookup = "external_id"

    @property
    def unknown(self) -> str:
        return _("unknown customer_id '%(value)s'")


def unknown_course(code: str) -> str:
    return _("unknown course code '%(value)s'") % {"value": code}


class CourseRef(ReferenceField):
    """A course by its code, matched case-blind as the order import matches item codes."""

    queryset = Course.objects.all()
    lookup = "code"

    def find(self, value: str):
        # Lower(code) has a unique index, so this finds at most one course.
        course = Course.objects.alias(code_ci=Lower("code")).filter(code_ci=value.lower()).first()
        if course is None:
            raise serializers.ValidationError(unknown_course(value), code="unknown")
        return course


class CourseCodesField(serializers.ListField):
    """A list of course codes in, the courses out (one query); codes out on reading."""

    child = serializers.SlugField(max_length=50)

    def run_validation(self, data=empty):
        codes = super().run_validation(data)
        wanted = {code.lower(): code for code in codes}
        found = {
            course.code.lower(): course
            for course in Course.objects.alias(code_ci=Lower("code")).filter(code_ci__in=wanted)
        }
        if missing := [code for key, code in wanted.items() if key not in found]:
            raise serializers.ValidationError(
                [unknown_course(code) for code in missing],
                code="unknown",
            )
        return [found[key] for key in wanted]

    def to_representation(self, manager):
        return [course.code for course in manager.all()]


class UpsertSerializer(serializers.ModelSerializer):
    """A model serializer for records the platform creates or updates by a natural key.

    `Meta.natural_key` names the serializer fields that identify the row; the
    view calls `natural_lookup` to find the row before validating the rest
    against it. Updates write only the fields that were sent.
    """

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.DateTimeField: PlatformDateTimeField,
    }

    def natural_lookup(self) -> dict:
        """Validate the natural-key fields of the input; return the ORM filter for the row."""
        data = self.initial_data
        if not isinstance(data, Mapping):
            raise serializers.ValidationError(
                {api_settings.NON_FIELD_ERRORS_KEY: [_("Send a JSON object.")]}, code="invalid"
            )
        errors, lookup = {}, {}
        for name in self.Meta.natural_key:
            field = self.fields[name]
            try:
                lookup[field.source] = field.run_validation(field.get_value(data))
            except serializers.ValidationError as exc:
                errors[name] = exc.detail
        if errors:
            raise serializers.ValidationError(errors)
        return lookup

    def current(self, attrs: dict, name: str, default=None):
        """The value a field will have after this write: sent, or kept from the row."""
        if name in attrs:
            return attrs[name]
        if self.instance is not None:
            return getattr(self.instance, name)
        return default

    def validate(self, attrs):
        """Check every model constraint on the row as it would be saved.

        Subclasses check the rules they know first, each with a message naming
        its field, then call this: a constraint added to the model later is
        still a 400 (with its violation message), never an IntegrityError.
        Costs a query per constraint.
        """
        model = self.Meta.model
        row = copy.copy(self.instance) if self.instance is not None else model()
        for name, value in attrs.items():
            if not model._meta.get_field(name).many_to_many:
                setattr(row, name, value)
        try:
            row.validate_constraints()
        except DjangoValidationError as exc:
            raise serializers.ValidationError({
                api_settings.NON_FIELD_ERRORS_KEY if name == NON_FIELD_ERRORS else name: messages
                for name, messages in exc.message_dict.items()
            }) from None
        return attrs

    def update(self, instance, validated_data):
        for name, value in validated_data.items():
            setattr(instance, name, value)
        instance.save(update_fields=[*validated_data, "updated_at"])
        return instance


class MomentField(forms.CharField):
    """A date (YYYY-MM-DD) or an ISO 8601 date-time, in a year orders may have."""

    def to_python(self, value):
        text = super().to_python(value)
        if not text:
            return None
        try:
            moment = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
        except ValueError:
            moment = None
        if moment is None or not validation.MIN_YEAR <= moment.year <= validation.MAX_YEAR:
            raise forms.ValidationError(
                _("Enter a date (YYYY-MM-DD) or an ISO 8601 date-time, years %(min)s to %(max)s "
                  "(URL-encode the + of an offset)."),
                code="invalid",
                params={"min": validation.MIN_YEAR, "max": validation.MAX_YEAR},
            )
        return moment


class MomentFilter(filters.CharFilter):
    """One end of a date-time range; see the module docstring for what a date means.

    A CharFilter underneath, so the schema shows a string that takes both forms.
    """

    field_class = MomentField

    def __init__(self, *, end: str, **kwargs):
        assert end in ("after", "before")
        self.end = end
        super().__init__(**kwargs)

    def filter(self, qs, value):
        if value is None:
            return qs
        zone = ZoneInfo(settings.TIME_ZONE)
        if isinstance(value, datetime):
            moment = value if value.tzinfo else value.replace(tzinfo=zone)
            lookup = "gte" if self.end == "after" else "lte"
        else:
            # The day runs from its midnight to the next one, in the business zone.
            day = value if self.end == "after" else value + timedelta(days=1)
            moment = datetime.combine(day, time(), tzinfo=zone)
            lookup = "gte" if self.end == "after" else "lt"
        return qs.filter(**{f"{self.field_name}__{lookup}": moment})


def moment_range(field_name: str, what: str) -> tuple[MomentFilter, MomentFilter]:
    """Return the (after, before) filters of a date-time field."""
    return (
        MomentFilter(
            field_name=field_name,
            end="after",
            help_text=format_lazy(gettext_lazy("{what} on or after this date or date-time."),
                                  what=what),
        ),
        MomentFilter(
            field_name=field_name,
            end="before",
            help_text=format_lazy(
                gettext_lazy("{what} on or before this date (the whole day) or date-time."),
                what=what,
            ),
        ),
    )


def date_range(field_name: str, what: str) -> tuple[filters.DateFilter, filters.DateFilter]:
    """Return the (after, before) filters of a date field, both inclusive."""
    return (
        filters.DateFilter(
            field_name=field_name,
            lookup_expr="gte",
            help_text=format_lazy(gettext_lazy("{what} on or after this date."), what=what),
        ),
        filters.DateFilter(
            field_name=field_name,
            lookup_expr="lte",
            help_text=format_lazy(gettext_lazy("{what} on or before this date."), what=what),
        ),
    )


def customer_filter() -> filters.CharFilter:
    return filters.CharFilter(
        field_name="customer__external_id",
        help_text=gettext_lazy("The customer's customer_id."),
    )


def course_codes(code: str):
    """Courses whose code is `code`, compared case-blind (as order items are)."""
    return Course.objects.alias(code_ci=Lower("code")).filter(code_ci=code.lower())
