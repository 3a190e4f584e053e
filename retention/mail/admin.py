"""Admin for email: the outbox (with its per-day counts, templates and test sends),
suppressed addresses, consent history, and the customer page's email inlines."""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from retention.admin_base import LatestRowsFormSet, ReadOnlyAdmin, ReadOnlyInline
from retention.mail import links, outbox, previews
from retention.mail.models import ConsentRecord, ContactPreferences, OutboxMessage, Suppression


class MessagesInline(ReadOnlyInline):
    model = OutboxMessage
    formset = LatestRowsFormSet
    fields = ["created_at", "purpose", "kind", "status", "reason", "sent_at", "clicks"]
    readonly_fields = fields
    show_change_link = True
    verbose_name_plural = _("latest emails")


class ConsentInline(ReadOnlyInline):
    model = ConsentRecord
    formset = LatestRowsFormSet
    fields = ["recorded_at", "subject", "granted", "method", "wording", "detail"]
    readonly_fields = fields
    verbose_name_plural = _("consent history (latest changes)")


class PreferencesInline(ReadOnlyInline):
    model = ContactPreferences
    fields = ["offers", "new_courses", "loyalty", "surveys", "paused_until", "updated_at"]
    readonly_fields = fields
    verbose_name_plural = _("email preferences (the customer sets them on their page)")


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdmin):
    """Every email, before and after it is sent; the workers write these rows."""

    change_list_template = "admin/retention/outbox_change_list.html"
    list_display = ["created_at", "to_email", "purpose", "kind", "status", "reason", "attempts",
                    "sent_at", "clicks"]
    list_filter = ["status", "kind", "topic", "purpose"]
    date_hierarchy = "created_at"
    search_fields = ["to_email", "purpose", "dedup_key", "customer__external_id"]
    raw_id_fields = ["customer"]
    list_select_related = ["customer"]
    actions = ["resend"]
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    readonly_fields = ["public_id", "customer", "to_email", "kind", "topic", "purpose", "template",
                       "subject", "text_part", "html_preview", "headers_shown", "dedup_key",
                       "priority",
                       "status", "reason", "attempts", "last_error", "not_before", "expires_at",
                       "claimed_at", "claimed_by", "sending_at", "sent_at", "clicks", "created_at",
                       "updated_at"]
    exclude = ["body_html", "body_text", "headers"]

    # The parts as staff see them: the customer's signed links are hidden (links.redact),
    # so reading a message in the admin never hands over a way to act as the customer.
    @admin.display(description=_("HTML part"))
    def html_preview(self, message: OutboxMessage) -> str:
        return format_html('<iframe title="{}" sandbox srcdoc="{}" style="width:100%;height:480px;'
                           'border:1px solid #ccc"></iframe>', gettext("HTML part"),
                           links.redact(message.body_html))

    @admin.display(description=_("text part"))
    def text_part(self, message: OutboxMessage) -> str:
        return format_html('<pre style="white-space:pre-wrap">{}</pre>',
                           links.redact(message.body_text))

    @admin.display(description=_("headers"))
    def headers_shown(self, message: OutboxMessage) -> str:
        return format_html_join("", "<div><code>{}: {}</code></div>", (
            (name, links.redact(str(value))) for name, value in message.headers.items()))

    def has_resend_permission(self, request) -> bool:
        # Rows are never edited by hand, but staff who may change them may resend.
        return request.user.has_perm("retention.change_outboxmessage")

    @admin.action(description=_("Send the selected failed messages again"),
                  permissions=["resend"])
    def resend(self, request, queryset):
        again = sum(outbox.resend(message) for message in queryset)
        self.message_user(request, gettext("%(n)s failed messages queued again; the others were "
                                           "not failed and were left alone.") % {"n": again})

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # history; RETENTION_OUTBOX_KEEP_DAYS removes old rows

    def get_urls(self):
        from django.urls import path

        wrap = self.admin_site.admin_view
        return [
            path("daily/", wrap(self.daily_view), name="retention_outboxmessage_daily"),
            path("templates/", wrap(self.templates_view), name="retention_outboxmessage_templates"),
            *super().get_urls(),
        ]

    def daily_view(self, request):
        from django.template.response import TemplateResponse

        if not self.has_view_permission(request):
            raise PermissionDenied
        return TemplateResponse(request, "admin/retention/outbox_daily.html", {
            **self.admin_site.each_context(request), "title": gettext("Email per day"),
            "days": outbox.daily_counts(30), "opts": self.model._meta})

    def has_test_send_permission(self, request) -> bool:
        # A test send is an email leaving the system: not for those who may only view.
        return request.user.has_perm("retention.change_outboxmessage")

    def templates_view(self, request):
        from django.contrib import messages
        from django.shortcuts import redirect
        from django.template.response import TemplateResponse

        if not self.has_view_permission(request):
            raise PermissionDenied
        if request.method == "POST" and not self.has_test_send_permission(request):
            raise PermissionDenied
        chosen = request.POST.get("template") or request.GET.get("template") or \
            previews.PREVIEWS[0].template
        if previews.by_template(chosen) is None:
            chosen = previews.PREVIEWS[0].template
        if request.method == "POST":
            if not request.user.email:
                messages.error(request, gettext("Your user has no email address to send to."))
            else:
                previews.test_send(chosen, request.user.email)
                messages.success(request, gettext("A test of %(t)s is on its way to %(to)s.")
                                 % {"t": chosen, "to": request.user.email})
            return redirect(f"{request.path}?template={chosen}")
        return TemplateResponse(request, "admin/retention/outbox_templates.html", {
            **self.admin_site.each_context(request), "title": gettext("Email templates"),
            "previews": previews.PREVIEWS, "chosen": previews.by_template(chosen),
            "message": previews.render(chosen), "opts": self.model._meta,
            "can_send": self.has_test_send_permission(request)})


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    """Addresses no email goes to; staff may add one (reason "Stopped by staff") or remove one."""

    list_display = ["email", "reason", "detail", "created_at"]
    list_filter = ["reason"]
    search_fields = ["email"]

    def save_model(self, request, obj, form, change):
        obj.email = obj.email.strip().lower()
        super().save_model(request, obj, form, change)


@admin.register(ConsentRecord)
class ConsentRecordAdmin(ReadOnlyAdmin):
    """The evidence of every consent and preference change; never edited."""

    list_display = ["recorded_at", "customer", "subject", "granted", "method"]
    list_filter = ["subject", "granted", "method"]
    search_fields = ["customer__external_id", "customer__email"]
    raw_id_fields = ["customer"]
    list_select_related = ["customer"]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
