"""Admin for the core domain: customers, the catalogue, orders and what the platform sends.

Staff use these pages every day on tables of a million customers and more, so:

- every change list loads the rows it shows with their related rows in one
  query (`list_select_related`) and reads the cached order summary columns of
  Customer rather than counting orders per row;
- `show_full_result_count = False` on the big tables: the paginator's COUNT of
  the filtered rows is all a page needs, not a second COUNT of the whole table;
- filters list their choices without scanning big tables where they can
  (see `CurrencyFilter`);
- a customer's page shows only the latest orders and links to the rest.

Writes keep the domain's invariants: a course's or bundle's price goes through
`catalogue.save_offering` (price history), and an order saved or deleted here
refreshes its customers' cached summary in the same transaction.
"""

from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.options import InlineModelAdmin
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.db import transaction
from django.db.models import Case, Count, DurationField, ExpressionWrapper, F, Q, When
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from retention.account import fresh_links
from retention.admin_base import LatestRowsFormSet, ReadOnlyAdmin, ReadOnlyInline
from retention.mail import consent, links
from retention.mail.models import ConsentRecord
from retention.money import money
from retention.sales import catalogue, summaries
from retention.sales.models import (
    Bundle,
    Course,
    Customer,
    DataChange,
    Enrolment,
    Membership,
    Order,
    OrderLine,
    PriceChange,
    SupportTicket,
)

# Customers refreshed per UPDATE; keeps `pk IN (...)` under SQLite's parameter limit.
REFRESH_BATCH = 1000


def refresh_summaries(customer_ids) -> None:
    """Recompute the cached order summary of these customers (ids; None is skipped)."""
    ids = sorted({int(pk) for pk in customer_ids if pk is not None})
    for start in range(0, len(ids), REFRESH_BATCH):
        summaries.refresh(Customer.objects.filter(pk__in=ids[start : start + REFRESH_BATCH]))


# Customers ------------------------------------------------------------------------------------


class HasOrderedFilter(admin.SimpleListFilter):
    title = _("paid orders")
    parameter_name = "has_ordered"

    def lookups(self, request, model_admin):
        return [("yes", _("At least one")), ("no", _("None"))]

    def queryset(self, request, queryset):
        # The cached summary counts paid orders only, like every figure (spec "Inputs").
        if self.value() == "yes":
            return queryset.filter(order_count__gt=0)
        if self.value() == "no":
            return queryset.filter(order_count=0)
        return queryset


class AcquisitionSourceFilter(admin.AllValuesFieldListFilter):
    """The sources customers really have, with the empty one named instead of blank."""

    def choices(self, changelist):
        for choice in super().choices(changelist):
            if choice["display"] == "":
                choice["display"] = gettext("(not recorded)")
            yield choice


class LatestOrdersInline(ReadOnlyInline):
    model = Order
    formset = LatestRowsFormSet
    # Each row is headed by the order id, linked to its page (show_change_link).
    fields = ["ordered_at", "status", "amount", "currency", "coupon_code"]
    readonly_fields = fields
    show_change_link = True
    verbose_name_plural = _("latest orders")


@dataclass(frozen=True)
class CustomerInline:
    """A part of the customer's admin page another area or app adds: an inline, in its place
    after the customer's latest orders."""

    order: int
    inline: type[InlineModelAdmin]


CUSTOMER_INLINES: list[CustomerInline] = []


def register_customer_inline(part: CustomerInline) -> None:
    """Show an inline on every customer's admin page (apps call this in AppConfig.ready).

    Registering the same part again changes nothing; the same inline in another place is
    refused. Keep the inline read-only unless staff
    are meant to edit those rows there, and load what it shows in its queryset: the page
    is read for one customer at a time, but each inline is one query at least.
    """
    if part in CUSTOMER_INLINES:
        return
    if any(other.inline is part.inline for other in CUSTOMER_INLINES):
        raise ImproperlyConfigured(f"{part.inline.__name__} is on the customer's page already")
    CUSTOMER_INLINES.append(part)
    CUSTOMER_INLINES.sort(key=lambda p: p.order)


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = [
        "external_id",
        "display_name",
        "email",
        "customer_type",
        "sector",
        "orders",
        "spent",
        "first_order",
        "last_order",
    ]
    search_fields = ["email", "name", "organisation_name", "external_id"]
    search_help_text = _("Search by email, name, organisation name or customer id.")
    list_filter = [
        "customer_type",
        "sector",
        ("acquisition_source", AcquisitionSourceFilter),
        "marketing_consent",
        HasOrderedFilter,
    ]
    raw_id_fields = ["referred_by"]
    readonly_fields = [
        "order_count",
        "total_spent",
        "first_order_at",
        "last_order_at",
        "all_orders",
        "page_link",
        "created_at",
        "updated_at",
    ]
    fieldsets = [
        (None, {"fields": ["external_id", "customer_type", "name", "email",
                           "organisation_name", "sector"]}),
        (_("Marketing"), {"fields": ["acquisition_source", "referred_by", "marketing_consent",
                                     "signed_up_at", "birth_date", "page_link"]}),
        (_("Paid orders"), {
            "description": _("Kept up to date from the orders; paid orders only."),
            "fields": ["order_count", "total_spent", "first_order_at", "last_order_at",
                       "all_orders"],
        }),
        (_("Record"), {"fields": ["created_at", "updated_at"], "classes": ["collapse"]}),
    ]
    # The latest orders, then what the other areas and apps register (CUSTOMER_INLINES).
    inlines = [LatestOrdersInline]
    actions = ["email_page_link", "revoke_links"]
    # The paginator counts the filtered rows; a second COUNT over every customer
    # for "N total" would double the cost of each page on a million rows.
    show_full_result_count = False
    # Facet counts cost a full scan per filter on a million rows.
    show_facets = admin.ShowFacets.NEVER

    def get_inlines(self, request, obj):
        return [*self.inlines, *(part.inline for part in CUSTOMER_INLINES)]

    @admin.display(description=_("name"))
    def display_name(self, customer: Customer) -> str:
        return customer.display_name

    # Short headings, and dates rather than date-times, keep the nine columns
    # readable on a laptop screen.
    @admin.display(description=_("orders"), ordering="order_count")
    def orders(self, customer: Customer) -> int:
        return customer.order_count

    @admin.display(description=_("spent"), ordering="total_spent")
    def spent(self, customer: Customer) -> Decimal:
        return customer.total_spent

    @admin.display(description=_("first order"), ordering="first_order_at")
    def first_order(self, customer: Customer):
        return customer.first_order_at and timezone.localdate(customer.first_order_at)

    @admin.display(description=_("last order"), ordering="last_order_at")
    def last_order(self, customer: Customer):
        return customer.last_order_at and timezone.localdate(customer.last_order_at)

    @admin.display(description=_("customer's page"))
    def page_link(self, customer: Customer) -> str:
        # A preview for staff, not the customer's own signed link: holding that, staff could
        # save choices the customer never made, recorded as the customer's own.
        if customer.pk is None:
            return "–"
        return format_html(
            '<a href="{}">{}</a><div class="help">{}</div>',
            reverse("admin:retention_customer_page", args=[customer.pk]),
            gettext("See the page as the customer sees it"),
            gettext("To give customers their page, use the action “Email a fresh link to their "
                    "page”; “Withdraw every link” stops the links sent so far."))

    def get_urls(self):
        from django.urls import path

        return [path("<path:object_id>/page/", self.admin_site.admin_view(self.page_view),
                     name="retention_customer_page"), *super().get_urls()]

    def page_view(self, request, object_id):
        from django.http import Http404

        from retention.views.account import staff_preview

        customer = self.get_object(request, object_id)
        if customer is None:
            raise Http404
        if not self.has_view_permission(request, customer):
            raise PermissionDenied
        return staff_preview(request, customer)

    @admin.display(description=_("all orders"))
    def all_orders(self, customer: Customer) -> str:
        if customer.pk is None:
            return "–"
        url = reverse("admin:retention_order_changelist")
        query = urlencode({"customer__id__exact": customer.pk})
        # All statuses, so not order_count; one COUNT on (customer, ordered_at).
        text = gettext("All %(count)s orders of this customer, any status") % {
            "count": customer.orders.count()
        }
        return format_html('<a href="{}?{}">{}</a>', url, query, text)

    def save_model(self, request, obj, form, change):
        consent_changed = "marketing_consent" in form.changed_data
        if consent_changed:  # through the consent module, which records the evidence
            granted = obj.marketing_consent
            obj.marketing_consent = form.initial.get("marketing_consent", False)
        if change:
            # Write only the fields on the form: an import may refresh the cached
            # order summary between this page's load and its save, and a full
            # save would put the stale summary back.
            names = {field.name for field in obj._meta.concrete_fields} - {"marketing_consent"}
            obj.save(update_fields=[*(n for n in form.changed_data if n in names), "updated_at"])
        else:
            obj.save()
        if consent_changed:
            consent.set_marketing_consent(
                obj, granted, method=ConsentRecord.Method.STAFF, wording="",
                detail=gettext("changed in the admin by %(user)s") % {"user": request.user})

    @admin.action(description=_("Withdraw every link sent to the selected customers"),
                  permissions=["change"])
    def revoke_links(self, request, queryset):
        for customer in queryset:
            links.revoke(customer)
        self.message_user(request, gettext("Links withdrawn for %(n)s customers; the next email "
                                           "carries new ones.") % {"n": queryset.count()})

    @admin.action(description=_("Email a fresh link to their page to the selected customers"),
                  permissions=["change"])
    def email_page_link(self, request, queryset):
        with transaction.atomic():
            for customer in queryset:
                fresh_links.send_fresh_link(customer)
        self.message_user(request, gettext("A fresh link is on its way to %(n)s customers.")
                          % {"n": queryset.count()})


# Catalogue ------------------------------------------------------------------------------------


def format_change_percent(change: PriceChange) -> str:
    percent = change.change_percent
    return "–" if percent is None else f"{percent:+} %"


class PriceHistoryInline(ReadOnlyInline):
    """A course's or bundle's price changes, newest first (PriceChange has one FK to each)."""

    model = PriceChange
    fields = ["changed_at", "old_price", "new_price", "change", "note"]
    readonly_fields = fields
    verbose_name_plural = _("price history")

    @admin.display(description=_("change"))
    def change(self, obj: PriceChange) -> str:
        return format_change_percent(obj)


class OfferingAdmin(admin.ModelAdmin):
    search_fields = ["code", "title"]
    readonly_fields = ["created_at", "updated_at"]
    inlines = [PriceHistoryInline]

    def save_model(self, request, obj, form, change):
        # Every price change is recorded: save_offering writes the PriceChange row
        # in the same transaction when the price differs from the stored one.
        catalogue.save_offering(
            obj, note=gettext("admin: %(user)s") % {"user": request.user.get_username()}
        )


@admin.register(Course)
class CourseAdmin(OfferingAdmin):
    list_display = ["code", "title", "price", "category", "level", "launched_on", "is_active"]
    list_filter = ["is_active", "level", "category", "launched_on"]
    filter_horizontal = ["follow_ons"]
    fields = ["code", "title", "price", "category", "level", "launched_on", "is_active",
              "follow_ons", "created_at", "updated_at"]


@admin.register(Bundle)
class BundleAdmin(OfferingAdmin):
    list_display = ["code", "title", "price", "course_count", "launched_on", "is_active"]
    list_filter = ["is_active", "launched_on"]
    filter_horizontal = ["courses"]
    fields = ["code", "title", "price", "launched_on", "is_active", "courses",
              "created_at", "updated_at"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(course_count=Count("courses"))

    @admin.display(description=_("courses"), ordering="course_count")
    def course_count(self, bundle: Bundle) -> int:
        return bundle.course_count


@admin.register(PriceChange)
class PriceChangeAdmin(ReadOnlyAdmin):
    """Price history is written by `catalogue.save_offering` only; here it is read."""

    list_display = ["offering", "old_price", "new_price", "change", "changed_at", "note"]
    list_select_related = ["course", "bundle"]
    date_hierarchy = "changed_at"
    search_fields = ["course__code", "course__title", "bundle__code", "bundle__title"]


    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description=_("course or bundle"))
    def offering(self, obj: PriceChange) -> str:
        return str(obj.offering)

    @admin.display(description=_("change"))
    def change(self, obj: PriceChange) -> str:
        return format_change_percent(obj)


# Orders ---------------------------------------------------------------------------------------


class CurrencyFilter(admin.SimpleListFilter):
    """The business currency or any other, without a DISTINCT over every order.

    Imports accept only the business currency, so "other" finds rows that came
    in some other way.
    """

    title = _("currency")
    parameter_name = "currency"

    def lookups(self, request, model_admin):
        return [(settings.RETENTION_CURRENCY, settings.RETENTION_CURRENCY),
                ("other", _("Other currencies"))]

    def queryset(self, request, queryset):
        if self.value() == "other":
            return queryset.exclude(currency=settings.RETENTION_CURRENCY)
        if self.value():
            return queryset.filter(currency=self.value())
        return queryset


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    fields = ["position", "course", "bundle", "price"]
    autocomplete_fields = ["course", "bundle"]
    extra = 0


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["external_id", "customer", "ordered_at", "status", "amount", "currency",
                    "coupon_code"]
    list_select_related = ["customer"]
    # No date_hierarchy: its first level is a DISTINCT over every order's date,
    # about a second per page on millions of orders; this filter costs nothing.
    list_filter = ["status", ("ordered_at", admin.DateFieldListFilter), CurrencyFilter]
    search_fields = ["external_id", "customer__external_id", "customer__email"]
    search_help_text = _("Search by order id, customer id or customer email.")
    raw_id_fields = ["customer"]
    readonly_fields = ["created_at", "updated_at"]
    fieldsets = [
        (None, {
            "description": _(
                "The sales platform is the source of truth: the next import of this order "
                "from the platform replaces what you change here."
            ),
            "fields": ["external_id", "customer", "ordered_at", "status", "amount", "currency",
                       "coupon_code"],
        }),
        (_("Record"), {"fields": ["created_at", "updated_at"], "classes": ["collapse"]}),
    ]
    inlines = [OrderLineInline]
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

    def save_model(self, request, obj, form, change):
        # The sales platform is the source of truth for orders. A blank fingerprint
        # matches no imported row, so the next import of this order counts it as
        # changed and writes the platform's version over this edit (an unchanged
        # fingerprint would leave the edit in place for good). Always blanked,
        # since the lines may have changed even when the order's fields did not.
        obj.fingerprint = ""
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # Both customers when the order moved: form.initial holds the customer it
        # had when the page was loaded. The admin view's transaction covers this,
        # so the cache changes together with the order.
        previous = form.initial.get("customer") if change else None
        refresh_summaries([form.instance.customer_id, previous])

    def delete_model(self, request, obj):
        customer_id = obj.customer_id
        with transaction.atomic():
            super().delete_model(request, obj)
            refresh_summaries([customer_id])

    def delete_queryset(self, request, queryset):
        # The "delete selected" action runs outside the admin view's transaction.
        with transaction.atomic():
            customer_ids = list(
                queryset.order_by().values_list("customer_id", flat=True).distinct()
            )
            super().delete_queryset(request, queryset)
            refresh_summaries(customer_ids)


# Memberships, enrolments, tickets -------------------------------------------------------------


class ActiveMembershipFilter(admin.SimpleListFilter):
    title = _("active today")
    parameter_name = "active"

    def lookups(self, request, model_admin):
        return [("yes", _("Yes")), ("no", _("No"))]

    def queryset(self, request, queryset):
        today = timezone.localdate()
        active = Q(started_on__lte=today) & (Q(ended_on__isnull=True) | Q(ended_on__gte=today))
        if self.value() == "yes":
            return queryset.filter(active)
        if self.value() == "no":
            return queryset.exclude(active)
        return queryset


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["external_id", "customer", "plan", "interval", "price", "monthly_revenue",
                    "started_on", "ended_on", "auto_renew", "cancelled_at"]
    list_select_related = ["customer"]
    list_filter = [ActiveMembershipFilter, "interval", "auto_renew", "plan"]
    date_hierarchy = "started_on"
    search_fields = ["external_id", "plan", "customer__external_id", "customer__email"]
    raw_id_fields = ["customer"]
    readonly_fields = ["created_at", "updated_at"]
    show_full_result_count = False

    @admin.display(
        description=_("MRR"),
        ordering=Case(When(interval=Membership.Interval.YEAR, then=F("price") / 12),
                      default=F("price")),
    )
    def monthly_revenue(self, membership: Membership) -> Decimal:
        # Shown to the cent; Membership.mrr keeps full precision for sums.
        return money(membership.mrr)


class CompletedFilter(admin.SimpleListFilter):
    title = _("completed")
    parameter_name = "completed"

    def lookups(self, request, model_admin):
        return [("yes", _("Yes")), ("no", _("No"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(completed_on__isnull=False)
        if self.value() == "no":
            return queryset.filter(completed_on__isnull=True)
        return queryset


@admin.register(Enrolment)
class EnrolmentAdmin(admin.ModelAdmin):
    list_display = ["customer", "course", "source", "started_on", "progress", "completed",
                    "last_activity_at"]
    list_select_related = ["customer", "course"]
    # "course" lists the whole catalogue (one small query), not the courses in use.
    list_filter = ["source", CompletedFilter, "course"]
    date_hierarchy = "started_on"
    search_fields = ["customer__external_id", "customer__email", "course__code",
                     "course__title"]
    raw_id_fields = ["customer", "course"]
    readonly_fields = ["created_at", "updated_at"]
    show_full_result_count = False

    @admin.display(description=_("progress"), ordering="progress_percent")
    def progress(self, enrolment: Enrolment) -> str:
        return f"{enrolment.progress_percent} %"

    @admin.display(description=_("completed"), boolean=True, ordering="completed_on")
    def completed(self, enrolment: Enrolment) -> bool:
        return enrolment.completed


def _duration(start: str, end: str):
    """Sort key for a column of hours: the time from one date-time field to another."""
    return ExpressionWrapper(F(end) - F(start), output_field=DurationField())


@admin.register(SupportTicket)
class SupportTicketAdmin(admin.ModelAdmin):
    list_display = ["external_id", "subject", "customer", "category", "status", "complaint",
                    "opened_at", "first_response_hours", "resolution_hours"]
    list_select_related = ["customer"]
    list_filter = ["status", "category", "is_complaint"]
    date_hierarchy = "opened_at"
    search_fields = ["external_id", "subject", "customer__external_id", "customer__email"]
    raw_id_fields = ["customer"]
    readonly_fields = ["first_response_hours", "resolution_hours", "created_at", "updated_at"]
    show_full_result_count = False

    # Short headings keep the nine columns on a laptop screen.
    @admin.display(description=_("complaint"), boolean=True, ordering="is_complaint")
    def complaint(self, ticket: SupportTicket) -> bool:
        return ticket.is_complaint

    @admin.display(
        description=_("response (h)"),
        ordering=_duration("opened_at", "first_response_at"),
    )
    def first_response_hours(self, ticket: SupportTicket) -> float | None:
        return ticket.first_response_hours

    @admin.display(
        description=_("resolved in (h)"),
        ordering=_duration("opened_at", "resolved_at"),
    )
    def resolution_hours(self, ticket: SupportTicket) -> float | None:
        return ticket.resolution_hours


# The change log --------------------------------------------------------------------------------


@admin.register(DataChange)
class DataChangeAdmin(ReadOnlyAdmin):
    """The change log: writes and the earliest business day each touched (sales/changes.py)."""

    list_display = ["recorded_at", "source", "first_day"]
    list_filter = ["source"]


# Predicted value and customers at risk -------------------------------------------------------


