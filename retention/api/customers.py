"""Customers, by the sales platform's customer_id: created or updated by that key, with
their cached summary of paid orders, their type, sector and consent."""

import django_filters as filters
from django.db.models import Q
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework import serializers

from retention.api.base import UpsertViewSet, path_key, upsert_schema
from retention.api.fields import CustomerRef, UpsertSerializer, moment_range
from retention.mail import consent
from retention.sales.models import Customer


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
    filterset_class = CustomerFilter
    lookup_field = "external_id"
    lookup_url_kwarg = "customer_id"
