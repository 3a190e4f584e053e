"""Query filters of the REST API's lists (django-filter FilterSets).

Date ranges on date-times take a date or an ISO 8601 date-time. A date means
that day in the business time zone (setting TIME_ZONE), the zone an order's
date is read in: `ordered_after=2025-03-01` starts at midnight there, and
`ordered_before=2025-03-31` takes in all of the 31st. Both ends are inclusive.
A bad value is a 400 naming the parameter.
"""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import django_filters as filters
from django import forms
from django.conf import settings
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils.text import format_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from retention.sales import validation
from retention.sales.models import (
    Bundle,
    Course,
    Customer,
    Enrolment,
    Membership,
    Order,
    OrderLine,
    PriceChange,
    SupportTicket,
)


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


class CustomerFilter(filters.FilterSet):
    customer_type = filters.ChoiceFilter(choices=Customer.Type.choices)
    sector = filters.ChoiceFilter(choices=Customer.Sector.choices)
    acquisition_source = filters.CharFilter()
    email = filters.CharFilter(lookup_expr="iexact", help_text=gettext_lazy("Case-blind."))
    marketing_consent = filters.BooleanFilter()
    has_orders = filters.BooleanFilter(
        method="filter_has_orders", help_text=gettext_lazy("Has at least one paid order.")
    )
    created_after, created_before = moment_range("created_at", gettext_lazy("Added"))
    first_order_after, first_order_before = moment_range(
        "first_order_at", gettext_lazy("First paid order")
    )
    last_order_after, last_order_before = moment_range(
        "last_order_at", gettext_lazy("Last paid order")
    )
    search = filters.CharFilter(
        method="filter_search",
        help_text=gettext_lazy("Part of the name, organisation name or email, case-blind."),
    )

    class Meta:
        model = Customer
        fields = []

    def filter_has_orders(self, queryset, name, value: bool):
        buyers = Q(order_count__gt=0)  # the cached summary of paid orders
        return queryset.filter(buyers) if value else queryset.exclude(buyers)

    def filter_search(self, queryset, name, value: str):
        return queryset.filter(
            Q(name__icontains=value)
            | Q(organisation_name__icontains=value)
            | Q(email__icontains=value)
        )


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


class OrderFilter(filters.FilterSet):
    ordered_after, ordered_before = moment_range("ordered_at", gettext_lazy("Ordered"))
    status = filters.ChoiceFilter(choices=Order.Status.choices)
    customer_id = customer_filter()
    course = filters.CharFilter(
        method="filter_course",
        help_text=gettext_lazy("Orders with a line for this course code, or for a bundle that "
                               "contains it."),
    )
    coupon_code = filters.CharFilter(lookup_expr="iexact", help_text=gettext_lazy("Case-blind."))

    class Meta:
        model = Order
        fields = []

    def filter_course(self, queryset, name, value: str):
        # A subquery rather than a join, so an order with several matching lines comes once.
        courses = course_codes(value)
        lines = OrderLine.objects.filter(Q(course__in=courses) | Q(bundle__courses__in=courses))
        return queryset.filter(pk__in=lines.values("order_id"))


class MembershipFilter(filters.FilterSet):
    customer_id = customer_filter()
    plan = filters.CharFilter(lookup_expr="iexact", help_text=gettext_lazy("Case-blind."))
    interval = filters.ChoiceFilter(choices=Membership.Interval.choices)
    auto_renew = filters.BooleanFilter()
    active_on = filters.DateFilter(
        method="filter_active_on",
        help_text=gettext_lazy("Memberships that give access on this date."),
    )
    started_after, started_before = date_range("started_on", gettext_lazy("Started"))
    ended_after, ended_before = date_range("ended_on", gettext_lazy("Ended"))

    class Meta:
        model = Membership
        fields = []

    def filter_active_on(self, queryset, name, value: date):
        return queryset.filter(
            Q(started_on__lte=value) & (Q(ended_on__isnull=True) | Q(ended_on__gte=value))
        )


class EnrolmentFilter(filters.FilterSet):
    customer_id = customer_filter()
    course = filters.CharFilter(
        method="filter_course", help_text=gettext_lazy("The course's code, case-blind.")
    )
    source = filters.ChoiceFilter(choices=Enrolment.Source.choices)
    completed = filters.BooleanFilter(
        field_name="completed_on", lookup_expr="isnull", exclude=True,
        help_text=gettext_lazy("Completed (has a completion date), or not."),
    )
    started_after, started_before = date_range("started_on", gettext_lazy("Started"))
    completed_after, completed_before = date_range("completed_on", gettext_lazy("Completed"))
    last_activity_after, last_activity_before = moment_range(
        "last_activity_at", gettext_lazy("Last active")
    )

    class Meta:
        model = Enrolment
        fields = []

    def filter_course(self, queryset, name, value: str):
        return queryset.filter(course__in=course_codes(value))


class SupportTicketFilter(filters.FilterSet):
    customer_id = customer_filter()
    status = filters.ChoiceFilter(choices=SupportTicket.Status.choices)
    category = filters.ChoiceFilter(choices=SupportTicket.Category.choices)
    is_complaint = filters.BooleanFilter()
    opened_after, opened_before = moment_range("opened_at", gettext_lazy("Opened"))
    resolved_after, resolved_before = moment_range("resolved_at", gettext_lazy("Resolved"))

    class Meta:
        model = SupportTicket
        fields = []
