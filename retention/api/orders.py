"""Orders from the sales platform: one at a time (create or update by order_id) or in
bulk, each checked and merged by the same ingest as `import_orders` (retention.sales.ingest),
so an order sent here and the same order in a CSV file are stored alike."""

import json
from dataclasses import dataclass, field

import django_filters as filters
from django.conf import settings
from django.db.models import Prefetch, Q
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from retention.api.base import FIELD_ERRORS, NON_FIELD, PlatformViewSet, path_key, with_values
from retention.api.fields import course_codes, customer_filter, moment_range
from retention.sales import ingest, merge, validation
from retention.sales.models import Order, OrderLine


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
    checked by the serializer; `row()` gives the CSV row that the import validates
    (amount, date, status, currency, items).
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
        help_text=_("The orders, each as for a single order; at most RETENTION_ORDERS_BULK_MAX (a "
                    "setting, 1000 by default) in one call."),
    )

    def validate_orders(self, orders):
        limit = settings.RETENTION_ORDERS_BULK_MAX
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


@dataclass
class OrdersImported:
    """What an import of API orders did, in the shape of the bulk response."""

    result: merge.MergeResult
    results: list[dict] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "created": self.result.created,
            "updated": self.result.updated,
            "unchanged": self.result.unchanged,
            "invalid": self.result.invalid,
            "results": self.results,
            "errors": self.errors,
        }


Rows = list[tuple[int, dict[str, str] | validation.RowError]]


def order_rows(objects: list) -> tuple[Rows, list[validation.RowError]]:
    """Turn API order objects into (position, CSV row) pairs for `ingest.import_rows`.

    An object that is not shaped like a row (not an object, or a value that is
    neither text nor a number) takes the place of its row as a RowError, as a
    line the CSV reader cannot split does, so all-or-nothing and skip_invalid
    treat it alike. Returns the pairs and any further problems of such objects.
    """
    rows, more_errors = [], []
    for index, obj in enumerate(objects):
        order_input = OrderInput(data=obj)
        if order_input.is_valid():
            rows.append((index, order_input.row()))
            continue
        errors = [
            validation.RowError(index, None if name == NON_FIELD else name, str(message))
            for name, messages in order_input.errors.items()
            for message in messages
        ]
        rows.append((index, errors[0]))
        more_errors.extend(errors[1:])
    return rows, more_errors


def import_orders(rows, *, skip_invalid: bool, more_errors=()) -> OrdersImported:
    """Validate and merge order rows as `import_orders` does; a row's position is its "line"."""
    row_errors: list[validation.RowError] = []
    result = ingest.import_rows(
        rows, skip_invalid=skip_invalid, on_error=row_errors.append, outcomes=True
    )
    # By position; a stable sort keeps each row's problems in column order.
    row_errors = sorted([*row_errors, *more_errors], key=lambda error: error.line)
    imported = OrdersImported(
        result,
        errors=[{"index": e.line, "field": e.column, "message": e.message} for e in row_errors],
    )
    if result.written:
        invalid_lines = {error.line for error in row_errors}
        seen: set[str] = set()
        for index, key in sorted(result.keys.items()):
            if index in invalid_lines:  # repeats an earlier order_id with other values
                continue
            # A later exact repeat of an order in the same call changes nothing.
            outcome = "unchanged" if key in seen else result.outcomes[key]
            seen.add(key)
            imported.results.append({"index": index, "order_id": key, "result": outcome})
    return imported


ORDER_KEY = [path_key("order_id", "The sales platform's order id, or the key derived from an "
                                "order without one (prefix 'row-').", "A-1")]


ORDER_EXAMPLE = {
    "order_id": "A-1", "customer_id": "C-1", "ordered_at": "2025-03-01T10:00:00+02:00",
    "amount": "1200.00", "email": "thandi@example.com", "name": "Thandi Nkosi", "status": "paid",
    "items": ["py-101"], "coupon_code": "", "currency": "ZAR",
}


ORDER_EXAMPLES = [OpenApiExample("An order", value=ORDER_EXAMPLE, request_only=True)]


@extend_schema_view(
    retrieve=extend_schema(summary="An order with its lines", parameters=ORDER_KEY),
)
class OrderViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, PlatformViewSet):
    """Orders with their lines. Writes take the columns of the `import_orders` CSV."""

    queryset = Order.objects.select_related("customer").prefetch_related(
        Prefetch("lines", queryset=OrderLine.objects.select_related("course", "bundle"))
    )
    serializer_class = OrderSerializer
    filterset_class = OrderFilter
    lookup_field = "external_id"
    lookup_url_kwarg = "order_id"

    @extend_schema(
        summary="Create or update an order",
        description="The body has the columns of an `import_orders` CSV file and is checked "
        "and merged as a CSV row is. Keyed by order_id, or by a key derived from the content "
        "when there is none. 201 when created; 200 when updated or unchanged (see `result`).",
        request=OrderInput,
        responses={201: OrderWriteResultSerializer, 200: OrderWriteResultSerializer,
                   400: FIELD_ERRORS},
        examples=ORDER_EXAMPLES,
    )
    def create(self, request, *args, **kwargs):
        return self.write(request.data)

    @extend_schema(
        summary="Create or update the order at this URL",
        description="As POST on the list; the URL's order_id wins over one in the body.",
        request=OrderInput,
        parameters=ORDER_KEY,
        responses={201: OrderWriteResultSerializer, 200: OrderWriteResultSerializer,
                   400: FIELD_ERRORS},
        examples=ORDER_EXAMPLES,
    )
    def update(self, request, *args, order_id, **kwargs):
        return self.write(with_values(request.data, {"order_id": order_id}))

    def write(self, data) -> Response:
        order_input = OrderInput(data=data)
        order_input.is_valid(raise_exception=True)
        imported = import_orders([(0, order_input.row())], skip_invalid=False)
        if imported.errors:
            problems: dict[str, list[str]] = {}
            for error in imported.errors:
                problems.setdefault(error["field"] or NON_FIELD, []).append(error["message"])
            raise serializers.ValidationError(problems)
        (written,) = imported.results
        order = self.get_queryset().get(external_id=written["order_id"])
        order.result = written["result"]
        return Response(
            OrderWriteResultSerializer(order).data,
            status=status.HTTP_201_CREATED if order.result == "created" else status.HTTP_200_OK,
        )

    @extend_schema(
        summary="Create or update many orders",
        description="All or nothing by default: when any order is invalid, nothing is saved "
        "and each problem is listed by position. With `skip_invalid=true`, the valid orders "
        "are saved and the invalid ones listed. Sending the same call again changes nothing.",
        parameters=[BulkOptions],
        request=BulkOrdersInput,
        examples=[OpenApiExample("Two orders", request_only=True, value={"orders": [
            ORDER_EXAMPLE,
            {"order_id": "A-2", "customer_id": "C-2", "ordered_at": "2025-03-02", "amount": 2000,
             "items": "data-pack"},
        ]})],
        responses={
            200: BulkOrdersResponse,
            400: OpenApiResponse(
                response=BulkOrdersRejected,
                description="Some orders are invalid and nothing was saved; or the body is not "
                "`{\"orders\": [...]}` with at most RETENTION_ORDERS_BULK_MAX orders (then `{field: "
                "[message, ...]}`).",
            ),
        },
    )
    @action(detail=False, methods=["post"])
    def bulk(self, request):
        options = BulkOptions(data=request.query_params)
        options.is_valid(raise_exception=True)
        body = BulkOrdersInput(data=request.data)
        body.is_valid(raise_exception=True)
        skip_invalid = options.validated_data["skip_invalid"]
        rows, more_errors = order_rows(body.validated_data["orders"])
        imported = import_orders(rows, skip_invalid=skip_invalid, more_errors=more_errors)
        if imported.errors and not skip_invalid:
            invalid = imported.result.invalid
            detail = ngettext(
                "%(count)d order is invalid; nothing was saved.",
                "%(count)d orders are invalid; nothing was saved.",
                invalid,
            ) % {"count": invalid}
            return Response({"detail": detail, "errors": imported.errors},
                            status=status.HTTP_400_BAD_REQUEST)
        return Response(imported.as_dict())
