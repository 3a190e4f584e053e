"""What customers do besides buying: memberships (by the platform's membership_id), their
place in courses with their progress (an enrolment, by customer and course), and support
tickets (by ticket_id)."""

from datetime import date

import django_filters as filters
from django.db.models import Q
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework import serializers

from retention.api.base import UpsertViewSet, path_key, upsert_schema
from retention.api.fields import (
    CourseRef,
    CustomerRef,
    UpsertSerializer,
    course_codes,
    customer_filter,
    date_range,
    moment_range,
)
from retention.sales.models import Enrolment, Membership, SupportTicket


class MembershipSerializer(UpsertSerializer):
    """A customer's subscription plan, named by the platform's membership_id."""

    membership_id = serializers.CharField(
        source="external_id", max_length=64, help_text=_("The sales platform's membership id.")
    )
    customer_id = CustomerRef(source="customer", help_text=_("The sales platform's customer id."))
    mrr = serializers.DecimalField(
        max_digits=14, decimal_places=4, read_only=True,
        help_text=_("Monthly recurring revenue: the price divided by the months in the interval."),
    )

    class Meta:
        model = Membership
        natural_key = ("membership_id",)
        fields = ["membership_id", "customer_id", "plan", "interval", "price", "mrr", "started_on",
                  "ended_on", "auto_renew", "cancelled_at", "created_at", "updated_at"]

    def validate(self, attrs):
        started_on = self.current(attrs, "started_on")
        ended_on = self.current(attrs, "ended_on")
        if started_on and ended_on and ended_on < started_on:
            raise serializers.ValidationError(
                {"ended_on": [_("A membership cannot end (%(ended)s) before it starts "
                                "(%(started)s).") % {"ended": ended_on, "started": started_on}]},
                code="ends_before_start",
            )
        if self.current(attrs, "cancelled_at") and self.current(attrs, "auto_renew", True):
            raise serializers.ValidationError(
                {"auto_renew": [_("A cancelled membership does not renew: with cancelled_at "
                                  "set, auto_renew must be false.")]},
                code="cancelled_renewing",
            )
        return super().validate(attrs)


class EnrolmentSerializer(UpsertSerializer):
    """A customer's place in a course, named by (customer_id, course); progress in percent."""

    customer_id = CustomerRef(source="customer", help_text=_("The sales platform's customer id."))
    course = CourseRef(help_text=_("The course's code."))

    class Meta:
        model = Enrolment
        natural_key = ("customer_id", "course")
        fields = ["customer_id", "course", "source", "started_on", "last_activity_at",
                  "progress_percent", "completed_on", "completed", "created_at", "updated_at"]

    def validate(self, attrs):
        completed_on = self.current(attrs, "completed_on")
        progress = self.current(attrs, "progress_percent", 0)
        started_on = self.current(attrs, "started_on")
        if completed_on is not None and progress != 100:
            raise serializers.ValidationError(
                {"completed_on": [_("A completed enrolment has 100 %% progress; this one has "
                                    "%(progress)s %%.") % {"progress": progress}]},
                code="completed_below_100",
            )
        if completed_on is not None and started_on and completed_on < started_on:
            raise serializers.ValidationError(
                {"completed_on": [_("An enrolment cannot be completed (%(completed)s) before it "
                                    "starts (%(started)s).")
                                  % {"completed": completed_on, "started": started_on}]},
                code="completed_before_start",
            )
        return super().validate(attrs)


class SupportTicketSerializer(UpsertSerializer):
    """A support request, named by the platform's ticket_id."""

    ticket_id = serializers.CharField(
        source="external_id", max_length=64, help_text=_("The sales platform's ticket id.")
    )
    customer_id = CustomerRef(source="customer", help_text=_("The sales platform's customer id."))

    class Meta:
        model = SupportTicket
        natural_key = ("ticket_id",)
        fields = ["ticket_id", "customer_id", "opened_at", "category", "status", "subject",
                  "is_complaint", "first_response_at", "resolved_at", "first_response_hours",
                  "resolution_hours", "created_at", "updated_at"]

    def validate(self, attrs):
        opened_at = self.current(attrs, "opened_at")
        errors = {}
        for name, message in (
            ("first_response_at", _("The first response cannot come before the ticket was "
                                    "opened (%(opened)s).")),
            ("resolved_at", _("A ticket cannot be resolved before it was opened (%(opened)s).")),
        ):
            moment = self.current(attrs, name)
            if opened_at and moment and moment < opened_at:
                errors[name] = [message % {"opened": opened_at.isoformat()}]
        if errors:
            raise serializers.ValidationError(errors, code="before_opened")
        return super().validate(attrs)


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


@upsert_schema(
    MembershipSerializer,
    "membership",
    key=[path_key("membership_id", "The sales platform's membership id.", "M-1")],
    example={
        "membership_id": "M-1", "customer_id": "C-1", "plan": "All-access", "interval": "year",
        "price": "1800.00", "started_on": "2025-01-01", "auto_renew": True,
    },
)
class MembershipViewSet(UpsertViewSet):
    queryset = Membership.objects.select_related("customer")
    serializer_class = MembershipSerializer
    filterset_class = MembershipFilter
    lookup_field = "external_id"
    lookup_url_kwarg = "membership_id"


@upsert_schema(
    EnrolmentSerializer,
    "enrolment",
    key=[
        path_key("customer_id", "The sales platform's customer id.", "C-1"),
        path_key("course", "The course's code (case-blind).", "py-101"),
    ],
    example={
        "customer_id": "C-1", "course": "py-101", "source": "purchase",
        "started_on": "2025-02-01", "progress_percent": 40,
    },
)
class EnrolmentViewSet(UpsertViewSet):
    """Enrolments, one per customer and course: /enrolments/{customer_id}/{course}/."""

    queryset = Enrolment.objects.select_related("customer", "course")
    serializer_class = EnrolmentSerializer
    filterset_class = EnrolmentFilter

    def url_key(self) -> dict[str, str]:
        return {"customer_id": self.kwargs["customer_id"], "course": self.kwargs["course"]}

    def key_lookup(self, key: dict[str, str]) -> dict:
        return {"customer__external_id": key["customer_id"], "course__code__iexact": key["course"]}


@upsert_schema(
    SupportTicketSerializer,
    "support ticket",
    key=[path_key("ticket_id", "The sales platform's ticket id.", "T-1")],
    example={
        "ticket_id": "T-1", "customer_id": "C-1", "opened_at": "2025-03-01T09:00:00+02:00",
        "category": "billing", "status": "open", "subject": "Charged twice",
        "is_complaint": True,
    },
)
class SupportTicketViewSet(UpsertViewSet):
    queryset = SupportTicket.objects.select_related("customer")
    serializer_class = SupportTicketSerializer
    filterset_class = SupportTicketFilter
    lookup_field = "external_id"
    lookup_url_kwarg = "ticket_id"
