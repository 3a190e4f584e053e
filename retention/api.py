"""The REST API under /api/v1/, for the sales platform (token) and staff (session).

Every write the platform makes can be retried: POST on a list creates the record
its natural key names, or updates it (201 or 200), and PUT on a record's URL
does the same with the URL's key. Orders go through `retention.sales.ingest`, the
validation and merge of the CSV import, so an order sent by the API and the
same order in a file are checked and stored alike.

Lists are paginated (`page`, `page_size` up to 1000) and load their relations
up front, so a page costs the same few queries however many rows it holds.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.db.models import Prefetch
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils.translation import ngettext
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.settings import api_settings

from retention import filters
from retention.sales import ingest, merge, validation
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
from retention.serializers import (
    BulkOptions,
    BulkOrdersInput,
    BulkOrdersRejected,
    BulkOrdersResponse,
    BundleSerializer,
    CourseSerializer,
    CustomerSerializer,
    EnrolmentSerializer,
    MembershipSerializer,
    OrderInput,
    OrderSerializer,
    OrderWriteResultSerializer,
    PriceChangeSerializer,
    SupportTicketSerializer,
)

NON_FIELD = api_settings.NON_FIELD_ERRORS_KEY
FIELD_ERRORS = OpenApiResponse(
    response=OpenApiTypes.OBJECT,
    description="Invalid input: each field named with its messages, `{field: [message, ...]}`.",
)


def with_values(data, values: dict):
    """Return a copy of the request data with `values` set (the URL's key wins)."""
    if not isinstance(data, Mapping):
        return data  # the serializer reports it
    merged = data.copy()
    for name, value in values.items():
        merged[name] = value
    return merged


def path_key(name: str, description: str, example: str) -> OpenApiParameter:
    """A path parameter naming a record: any characters but '/'."""
    return OpenApiParameter(
        name, str, OpenApiParameter.PATH, pattern="^[^/]+$", description=description,
        examples=[OpenApiExample(example, value=example)],
    )


def upsert_schema(serializer_class, what: str, *, key: list[OpenApiParameter], example: dict):
    """Document the list, retrieve and create-or-update operations of a record ViewSet."""
    written = {200: serializer_class, 201: serializer_class, 400: FIELD_ERRORS}
    body = [OpenApiExample(f"A {what}", value=example, request_only=True)]
    return extend_schema_view(
        create=extend_schema(
            summary=f"Create or update a {what}",
            description=f"Creates the {what} the body's key names (201), or updates it (200). "
            "Sending the same body again changes nothing.",
            responses=written,
            examples=body,
        ),
        update=extend_schema(
            summary=f"Create or update the {what} at this URL",
            description="The URL's key wins over a key in the body. 201 when created, 200 "
            "when updated.",
            parameters=key,
            responses=written,
            examples=body,
        ),
        partial_update=extend_schema(
            summary=f"Change some fields of a {what}",
            parameters=key,
            responses={200: serializer_class, 400: FIELD_ERRORS},
            examples=body,
        ),
        retrieve=extend_schema(parameters=key),
    )


class PlatformViewSet(viewsets.GenericViewSet):
    """JSON in; records found by the platform's ids, which may hold any character but '/'."""

    parser_classes = [JSONParser]
    lookup_value_regex = "[^/]+"

    def get_object(self, queryset=None):
        """Return the record the URL names, from `queryset` (default: get_queryset()).

        Unlike DRF's, this ignores the list's filters: a record's URL names it alone.
        """
        key = self.url_key()
        # PostgreSQL refuses to compare text with a NUL character, and no id holds one.
        if any("\x00" in value for value in key.values()):
            raise Http404
        queryset = self.get_queryset() if queryset is None else queryset
        record = get_object_or_404(queryset, **self.key_lookup(key))
        self.check_object_permissions(self.request, record)
        return record

    def url_key(self) -> dict[str, str]:
        name = self.lookup_url_kwarg or self.lookup_field
        return {name: self.kwargs[name]}

    def key_lookup(self, key: dict[str, str]) -> dict:
        return {self.lookup_field: key[self.lookup_url_kwarg or self.lookup_field]}


class UpsertViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, PlatformViewSet):
    """Records the platform creates or updates by natural key (see the serializer's Meta).

    A write locks the row it changes until commit, because the checks of the
    model's constraints read the row's other fields (lock, check, write).
    """

    def create(self, request, *args, **kwargs):
        return self.upsert(request.data)

    def update(self, request, *args, **kwargs):
        return self.upsert(with_values(request.data, self.url_key()))

    def partial_update(self, request, *args, **kwargs):
        with transaction.atomic():
            instance = self.get_object(self.locked())
            data = with_values(request.data, self.url_key())
            serializer = self.get_serializer(instance, data=data, partial=True)
            serializer.is_valid(raise_exception=True)
            serializer.save()
        instance._prefetched_objects_cache = {}  # many-to-many fields may have changed
        return Response(serializer.data)

    def locked(self):
        return self.get_queryset().select_for_update(no_key=True, of=("self",))

    def upsert(self, data, *, retry: bool = True) -> Response:
        """Create the record `data` names by its natural key, or update it."""
        lookup = self.get_serializer(data=data).natural_lookup()
        try:
            with transaction.atomic():
                instance = self.locked().filter(**lookup).first()
                serializer = self.get_serializer(instance, data=data)
                serializer.is_valid(raise_exception=True)
                serializer.save()
        except IntegrityError:
            if not retry:
                raise
            # A concurrent call inserted the same key after our look-up. Look
            # again: this call then updates that row, or reports the clash.
            return self.upsert(data, retry=False)
        if instance is not None:
            instance._prefetched_objects_cache = {}
        created = instance is None
        return Response(
            serializer.data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


# ---------------------------------------------------------------------------------------------
# Customers and the catalogue


@upsert_schema(
    CustomerSerializer,
    "customer",
    key=[path_key("customer_id", "The sales platform's customer id.", "C-1")],
    example={
        "customer_id": "C-1", "email": "thandi@example.com", "name": "Thandi Nkosi",
        "customer_type": "individual", "marketing_consent": True, "acquisition_source": "organic",
    },
)
class CustomerViewSet(UpsertViewSet):
    """Customers by the platform's customer_id, with their cached summary of paid orders."""

    queryset = Customer.objects.select_related("referred_by")
    serializer_class = CustomerSerializer
    filterset_class = filters.CustomerFilter
    lookup_field = "external_id"
    lookup_url_kwarg = "customer_id"


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
    filterset_class = filters.CourseFilter
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
    filterset_class = filters.BundleFilter
    lookup_field = "code"


class PriceChangeViewSet(mixins.ListModelMixin, PlatformViewSet):
    """The history of list prices, newest first."""

    queryset = PriceChange.objects.select_related("course", "bundle")
    serializer_class = PriceChangeSerializer
    filterset_class = filters.PriceChangeFilter


# ---------------------------------------------------------------------------------------------
# Orders


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
    filterset_class = filters.OrderFilter
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
                "`{\"orders\": [...]}` with at most ORDERS_BULK_MAX orders (then `{field: "
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


# ---------------------------------------------------------------------------------------------
# Memberships, enrolments, support tickets


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
    filterset_class = filters.MembershipFilter
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
    filterset_class = filters.EnrolmentFilter

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
    filterset_class = filters.SupportTicketFilter
    lookup_field = "external_id"
    lookup_url_kwarg = "ticket_id"
