"""Admin for loyalty: the program's settings, rules (with a dry run), tiers and rewards staff
edit; accounts, entries, redemptions and referrals they read. A balance is never edited:
staff adjust it through the ledger (the account's "Adjust points" form), which writes an
entry with their name."""

from __future__ import annotations

import uuid

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from loyalty import earning, ledger
from loyalty.models import Account, Entry, Program, Redemption, Referral, Reward, Rule, Tier
from retention.admin_base import LATEST_ROWS, LatestRowsFormSet, ReadOnlyAdmin, ReadOnlyInline
from retention.sales.admin import CustomerInline


@admin.register(Program)
class ProgramAdmin(admin.ModelAdmin):
    list_display = ["name", "refund_days", "expiry_days", "expiry_enabled_on", "tier_basis",
                    "holdout_percent"]
    readonly_fields = ["expiry_enabled_on"]

    def has_add_permission(self, request) -> bool:
        return False  # one row, made when first needed: the list opens it

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        return redirect("admin:loyalty_program_change", Program.current().pk)


class RuleForm(forms.ModelForm):
    dry_run_days = forms.IntegerField(
        min_value=1, max_value=730, initial=90, required=False, label=_("Dry run over the last"),
        help_text=_("days. 'Save and dry run' shows what this rule would have given, without "
                    "saving it."))

    class Meta:
        model = Rule
        fields = "__all__"


@admin.register(Rule)
class RuleAdmin(admin.ModelAdmin):
    form = RuleForm
    list_display = ["code", "title", "kind", "points", "valid_from", "valid_until", "cap",
                    "active"]
    list_filter = ["kind", "active"]
    search_fields = ["code", "title"]
    change_form_template = "admin/loyalty/rule/change_form.html"

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if request.method == "POST" and "_dry_run" in request.POST:
            return self._dry_run(request, object_id)
        return super().changeform_view(request, object_id, form_url, extra_context)

    def _dry_run(self, request, object_id):
        instance = self.get_object(request, object_id) if object_id else None
        if not (self.has_change_permission(request, instance) if instance
                else self.has_add_permission(request)):
            raise PermissionDenied
        form = RuleForm(request.POST, instance=instance)
        result = None
        if form.is_valid():
            rule = form.save(commit=False)  # never saved: the dry run only reads
            result = earning.dry_run(rule, days=form.cleaned_data.get("dry_run_days") or 90)
            if instance is not None:
                rule.pk = instance.pk
        context = {**self.admin_site.each_context(request), "opts": Rule._meta, "form": form,
                   "result": result, "title": _("Dry run of a rule"), "original": instance}
        return TemplateResponse(request, "admin/loyalty/rule/dry_run.html", context)


@admin.register(Tier)
class TierAdmin(admin.ModelAdmin):
    list_display = ["title", "code", "threshold", "multiplier", "discount_percent",
                    "early_access_days", "members"]

    def get_queryset(self, request):
        from django.db.models import Count

        return super().get_queryset(request).annotate(member_count=Count("accounts"))

    @admin.display(description=_("members"), ordering="member_count")
    def members(self, tier) -> int:
        return tier.member_count


@admin.register(Reward)
class RewardAdmin(admin.ModelAdmin):
    list_display = ["title", "code", "kind", "points", "stock", "per_customer_limit",
                    "valid_from", "valid_until", "active"]
    list_filter = ["kind", "active"]
    search_fields = ["code", "title"]
    autocomplete_fields = ["course"]


class LatestEntries(LatestRowsFormSet):
    latest = LATEST_ROWS


class EntryInline(ReadOnlyInline):
    model = Entry
    formset = LatestEntries
    fk_name = "account"
    fields = ["created_at", "kind", "points", "status", "reason", "remaining", "expires_on",
              "key"]
    readonly_fields = fields
    verbose_name_plural = _("ledger (latest entries)")

    def get_queryset(self, request):
        return super().get_queryset(request).order_by("-created_at", "-id")


class AdjustForm(forms.Form):
    points = forms.IntegerField(help_text=_("Positive to credit, negative to debit."))
    reason = forms.CharField(max_length=200)
    key = forms.CharField(widget=forms.HiddenInput)

    def clean_points(self):
        if self.cleaned_data["points"] == 0:
            raise forms.ValidationError(_("An adjustment of 0 points changes nothing."))
        return self.cleaned_data["points"]


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ["customer", "available", "pending", "lifetime_earned", "tier",
                    "tier_qualifying", "grace_until", "held_out"]
    list_filter = ["tier", "held_out"]
    list_select_related = ["customer", "tier"]
    search_fields = ["customer__external_id", "customer__email", "customer__name",
                     "referral_code"]
    readonly_fields = ["customer", "available", "pending", "lifetime_earned", "tier",
                       "tier_since", "tier_qualifying", "grace_until", "referral_code",
                       "held_out", "created_at", "adjust_link"]
    inlines = [EntryInline]

    def get_urls(self):
        return [path("<int:pk>/adjust/", self.admin_site.admin_view(self.adjust),
                     name="loyalty_account_adjust"), *super().get_urls()]

    @admin.display(description=_("adjust"))
    def adjust_link(self, account) -> str:
        return format_html('<a href="{}">{}</a>', reverse("admin:loyalty_account_adjust",
                                                          args=[account.pk]),
                           _("Adjust points (writes a ledger entry)"))

    def adjust(self, request, pk):
        """Credit or debit an account through the ledger; needs the add-entry permission."""
        account = get_object_or_404(Account.objects.select_related("customer"), pk=pk)
        if not request.user.has_perm("loyalty.add_entry"):
            raise PermissionDenied
        form = AdjustForm(request.POST or None, initial={"key": uuid.uuid4().hex})
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                done = ledger.adjust(account.customer, data["points"], reason=data["reason"],
                                     key=f"admin:{data['key']}", by=request.user.get_username())
            except ledger.InsufficientPoints as refused:
                form.add_error("points", str(refused))
            else:
                if done.created:
                    self.message_user(request, _("%(points)+d points: %(reason)s") % {
                        "points": data["points"], "reason": data["reason"]}, messages.SUCCESS)
                return redirect("admin:loyalty_account_change", account.pk)
        context = {**self.admin_site.each_context(request), "opts": Account._meta,
                   "account": account, "form": form, "title": _("Adjust points")}
        return TemplateResponse(request, "admin/loyalty/account/adjust.html", context)


@admin.register(Entry)
class EntryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "account", "kind", "points", "status", "reason", "remaining",
                    "expires_on"]
    list_filter = ["kind", "status", "source"]
    list_select_related = ["account__customer"]
    search_fields = ["key", "source_ref", "account__customer__external_id"]
    date_hierarchy = "created_at"


@admin.register(Redemption)
class RedemptionAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "account", "reward", "points", "coupon_code", "expires_at",
                    "used_at"]
    list_filter = ["reward", ("used_at", admin.EmptyFieldListFilter)]
    list_select_related = ["account__customer", "reward"]
    search_fields = ["coupon_code", "account__customer__external_id"]


@admin.register(Referral)
class ReferralAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "referrer", "referred", "status", "refused_because",
                    "rewarded_at"]
    list_filter = ["status"]
    list_select_related = ["referrer__customer", "referred"]
    search_fields = ["code", "referred__external_id", "referrer__customer__external_id"]


# The customer's admin page (registered in loyalty/apps.py) ------------------------------------


class AccountInline(ReadOnlyInline):
    model = Account
    fields = ["available", "pending", "lifetime_earned", "tier", "tier_qualifying",
              "grace_until", "referral_code", "held_out", "open_account"]
    readonly_fields = fields
    verbose_name_plural = _("loyalty")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("tier")

    @admin.display(description=_("ledger"))
    def open_account(self, account) -> str:
        return format_html('<a href="{}">{}</a>', reverse("admin:loyalty_account_change",
                                                          args=[account.pk]),
                           _("Ledger and adjustments"))


CUSTOMER_INLINE = CustomerInline(order=25, inline=AccountInline)
