"""What the REST API reads and writes, and the checks that make bad input a 400.

Records are named the way the sales platform names them: customers, memberships
and tickets by the platform's id (`customer_id`, `membership_id`, `ticket_id`,
the models' `external_id`), courses and bundles by their `code`, an enrolment by
(customer_id, course code). Every model CheckConstraint is checked here too, so
breaking one is a 400 with the field named, never an IntegrityError.

Orders are not written by a serializer: `OrderInput` only turns a JSON object
into the row a CSV file would carry, and `retention.sales.ingest` validates and merges
it, exactly as `import_orders` does.
"""

import copy
import json
from collections.abc import Mapping

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext as _
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import empty
from rest_framework.settings import api_settings

from retention.sales import catalogue, validation
from retention.mail import consent
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

# ---------------------------------------------------------------------------------------------
# Fields


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


# ---------------------------------------------------------------------------------------------
# Records keyed by the platform's ids


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


class CustomerSerializer(UpsertSerializer):
    """A customer, named by the platform's customer_id.

    The order summary (first_order_at … total_spent) covers paid orders and is
    kept by the order writes; it cannot be set here. An organisation needs a
    sector; an individual has none.
    """

    customer_id = serializers.CharField(
        source="external_id", max_length=64, help_text=_("The sales platform's customer id.")
    )
    referred_by = CustomerRef(
        allow_null=True,
        required=False,
        help_text=_("The customer_id of the customer who referred this one."),
    )
    consent_wording = serializers.CharField(
        write_only=True, required=False, allow_blank=True, max_length=2000,
        help_text=_("What the customer agreed to when marketing_consent was given or withdrawn; "
                    "kept as evidence (default: the RETENTION_CONSENT_WORDING setting)."),
    )

    class Meta:
        model = Customer
        natural_key = ("customer_id",)
        fields = [
            "customer_id",
            "email",
            "name",
            "customer_type",
            "organisation_name",
            "sector",
            "birth_date",
            "marketing_consent",
            "consent_wording",
            "acquisition_source",
            "referred_by",
            "signed_up_at",
            "first_order_at",
            "last_order_at",
            "order_count",
            "total_spent",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "first_order_at",
            "last_order_at",
            "order_count",
            "total_spent",
            "created_at",
            "updated_at",
        ]

    def validate(self, attrs):
        # The rule of the retention_customer_sector_matches_type constraint.
        customer_type = self.current(attrs, "customer_type", Customer.Type.INDIVIDUAL)
        sector = self.current(attrs, "sector", "")
        if customer_type == Customer.Type.ORGANISATION and not sector:
            raise serializers.ValidationError(
                {"sector": [_("An organisation needs a sector.")]}, code="sector_required"
            )
        if customer_type == Customer.Type.INDIVIDUAL and sector:
            raise serializers.ValidationError(
                {"sector": [_("An individual has no sector; leave it empty or set "
                              "customer_type to organisation.")]},
                code="sector_forbidden",
            )
        referrer = attrs.get("referred_by")
        if referrer is not None and self.instance is not None and referrer.pk == self.instance.pk:
            raise serializers.ValidationError(
                {"referred_by": [_("A customer cannot refer themselves.")]}, code="own_referrer"
            )
        self._consent_wording = attrs.pop("consent_wording", "")  # not a column
        return super().validate(attrs)

    def create(self, validated_data):
        customer = super().create(validated_data)
        consent.record_platform_consent(customer, None, wording=self._consent_wording)
        return customer

    def update(self, instance, validated_data):
        was = instance.marketing_consent
        customer = super().update(instance, validated_data)
        consent.record_platform_consent(customer, was, wording=self._consent_wording)
        return customer


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


# ---------------------------------------------------------------------------------------------
# Orders


class OrderLineSerializer(serializers.ModelSerializer):
    """A course or bundle bought, with the part of the order's amount it took."""

    code = serializers.SerializerMethodField()
    kind = serializers.SerializerMethodField()

    class Meta:
        model = OrderLine
        fields = ["code", "kind", "price"]

    def get_code(self, line) -> str:
        return line.offering.code

    @extend_schema_field(serializers.ChoiceField(choices=["course", "bundle"]))
    def get_kind(self, line) -> str:
        return "course" if line.course_id else "bundle"


class OrderSerializer(serializers.ModelSerializer):
    """An order as stored; expects `customer` selected and `lines` with offerings prefetched."""

    order_id = serializers.CharField(source="external_id", read_only=True)
    customer_id = serializers.CharField(source="customer.external_id", read_only=True)
    lines = OrderLineSerializer(many=True, read_only=True)

    class Meta:
        model = Order
        fields = ["order_id", "customer_id", "ordered_at", "status", "amount", "currency",
                  "coupon_code", "lines", "created_at", "updated_at"]
        read_only_fields = fields


class OrderWriteResultSerializer(OrderSerializer):
    """An order after a write, with what the write did (set as `order.result`)."""

    result = serializers.ChoiceField(
        choices=["created", "updated", "unchanged"], read_only=True,
        help_text=_("What this call did to the order."),
    )

    class Meta(OrderSerializer.Meta):
        fields = [*OrderSerializer.Meta.fields, "result"]
        read_only_fields = fields


class OrderWriteResultSchema(OpenApiSerializerExtension):
    """Describe OrderWriteResult as an Order plus `result`, rather than a copy of Order.

    A copy would put Order's status choices in two components, which drf-spectacular
    can only name with a hash (and warns about).
    """

    target_class = OrderWriteResultSerializer

    def map_serializer(self, auto_schema, direction):
        order = auto_schema.resolve_serializer(OrderSerializer, direction)
        field = OrderWriteResultSerializer().fields["result"]
        return {
            "allOf": [
                order.ref,
                {
                    "type": "object",
                    "properties": {"result": auto_schema._map_serializer_field(field, direction)},
                    "required": ["result"],
                },
            ]
        }


def csv_text(**kwargs) -> serializers.CharField:
    """A CSV column: text, a number (written as the CSV would carry it) or null (empty)."""
    kwargs.setdefault("required", False)
    return serializers.CharField(allow_blank=True, allow_null=True, **kwargs)


REQUIRED = {"required": "required, but empty"}  # the message ingest gives an empty column


@extend_schema_field({"oneOf": [{"type": "string"}, {"type": "number"}], "nullable": True})
class AmountField(serializers.CharField):
    """The `amount` column: text, or a JSON number written as the CSV would carry it."""


@extend_schema_field(
    {
        "oneOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}],
        "nullable": True,
        "description": 'Course or bundle codes: a list, or one string separated by "|".',
    }
)
class ItemsField(serializers.Field):
    """The `items` column: a JSON list of codes, or the CSV's "A|B" string."""

    def __init__(self, **kwargs):
        super().__init__(required=False, allow_null=True, **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, list):
            return csv_text().run_validation(data) or ""
        codes = []
        for code in data:
            if not isinstance(code, str):
                raise serializers.ValidationError(
                    _("An item code is text; %(value)s is not.") % {"value": json.dumps(code)},
                    code="invalid",
                )
            if "|" in code:
                raise serializers.ValidationError(
                    _('An item code in a list cannot contain "|".'), code="invalid"
                )
            codes.append(csv_text().run_validation(code))  # no NUL or surrogate characters
        return "|".join(codes)

    def to_representation(self, value):
        return value


class OrderInput(serializers.Serializer):
    """One order, in the columns of an `import_orders` CSV file, checked as a CSV row is.

    Values may be text, numbers or null (an empty column). Only this shape is
    checked by the serializer; `row()` gives the CSV row that `retention.sales.ingest`
    validates (amount, date, status, currency, items).
    """

    order_id = csv_text(help_text=_("The platform's order id. Without one, the order is keyed "
                                    "by its content, as in a CSV import."))
    customer_id = csv_text(required=True, error_messages=REQUIRED,
                           help_text=_("The platform's customer id; an unknown one is created."))
    ordered_at = csv_text(required=True, error_messages=REQUIRED,
                          help_text=_("ISO date or date-time; without an offset it is in the "
                                      "business time zone."))
    amount = AmountField(
        required=True, error_messages=REQUIRED, allow_blank=True, allow_null=True,
        help_text=_("Net amount, text or a number: at least 0, at most 2 decimal places."),
    )
    email = csv_text()
    name = csv_text()
    status = csv_text(help_text=_("paid (the default), refunded or cancelled; case-blind."))
    items = ItemsField()
    coupon_code = csv_text()
    currency = csv_text(help_text=_("The business currency (the default); no other is accepted."))

    def row(self) -> dict[str, str]:
        """Return the validated object as the CSV row `ingest` reads: every column a string."""
        return {column: self.validated_data.get(column) or "" for column in validation.COLUMNS}


class BulkOptions(serializers.Serializer):
    skip_invalid = serializers.BooleanField(
        default=False,
        help_text=_("Import the valid orders even when some are invalid (each is still listed)."),
    )


@extend_schema_field(OrderInput(many=True))
class OrderObjectsField(serializers.ListField):
    """A list of order objects, each checked on its own so one bad order names its position."""

    child = serializers.JSONField(allow_null=True)  # a null order is reported at its position


class BulkOrdersInput(serializers.Serializer):
    orders = OrderObjectsField(
        help_text=_("The orders, each as for a single order; at most ORDERS_BULK_MAX (a "
                    "setting, 1000 by default) in one call."),
    )

    def validate_orders(self, orders):
        limit = settings.ORDERS_BULK_MAX
        if len(orders) > limit:
            raise serializers.ValidationError(
                _("%(count)s orders in one call; send at most %(limit)s.")
                % {"count": len(orders), "limit": limit},
                code="max_length",
            )
        return orders


class BulkResultSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text=_("Position in the orders list, from 0."))
    order_id = serializers.CharField(help_text=_("The order's key: its order_id, or the key "
                                                 "derived from its content (prefix 'row-')."))
    result = serializers.ChoiceField(choices=["created", "updated", "unchanged"])


class BulkErrorSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text=_("Position in the orders list, from 0."))
    field = serializers.CharField(allow_null=True)
    message = serializers.CharField()


class BulkOrdersResponse(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    invalid = serializers.IntegerField()
    results = BulkResultSerializer(many=True)
    errors = BulkErrorSerializer(many=True, help_text=_("Invalid orders, which were skipped."))


class BulkOrdersRejected(serializers.Serializer):
    """Either some orders are invalid (`detail` and `errors`), or the body is (by field)."""

    detail = serializers.CharField(required=False)
    errors = BulkErrorSerializer(many=True, required=False)
    orders = serializers.ListField(
        child=serializers.CharField(), required=False,
        help_text=_("What is wrong with the orders list itself."),
    )
