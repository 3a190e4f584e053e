"""What every resource of the REST API under /api/v1/ shares: the viewsets that find a record
by the platform's key and create or update it, and the schema helpers that document them.

Every write the platform makes can be retried: POST on a list creates the record its
natural key names, or updates it (201 or 200), and PUT on a record's URL does the same
with the URL's key. Lists are paginated (`page`, `page_size` up to 1000) and load their
relations up front, so a page costs the same few queries however many rows it holds.
"""

from collections.abc import Mapping

from django.db import IntegrityError, transaction
from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response
from rest_framework.routers import DefaultRouter
from rest_framework.settings import api_settings

from retention.api.parsers import JSONParser

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


class PlatformRouter(DefaultRouter):
    """Routes for records named by platform ids, which may contain dots: /customers/a.json/
    is customer "a.json", not a format (the programs' APIs use it too)."""

    include_format_suffixes = False


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
