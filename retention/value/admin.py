"""Admin for predicted value and customers at risk: the fits and their health, the nightly
at-risk list with actions to act on it, follow-ups and re-engagement lists."""

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db.models import Count, OuterRef, Subquery
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from retention.admin_base import LATEST_ROWS, LatestRowsFormSet, ReadOnlyAdmin, ReadOnlyInline
from retention.money import rate
from retention.value import atrisk, followups
from retention.value.models import (
    AtRisk,
    ClvFit,
    CustomerPrediction,
    FollowUp,
    ReEngagementList,
    ReEngagementMember,
)

# The customer's admin page (registered in retention/apps.py) ---------------------------------


class LatestOneFormSet(LatestRowsFormSet):
    latest = 1


class PredictionInline(ReadOnlyInline):
    """The customer's latest nightly prediction, with the fit's method."""

    model = CustomerPrediction
    formset = LatestOneFormSet
    fields = ["as_of", "predicted_value_12m", "purchases", "expected_value_per_purchase",
              "chance_active", "value_at_risk", "method"]
    readonly_fields = fields
    verbose_name_plural = _("predicted value (latest nightly prediction)")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("fit").order_by("-as_of")

    @admin.display(description=_("expected purchases, 12 months"))
    def purchases(self, prediction: CustomerPrediction) -> str:
        return f"{prediction.expected_purchases_12m:.2f}"

    @admin.display(description=_("chance of still being active"))
    def chance_active(self, prediction: CustomerPrediction) -> str:
        return f"{rate(prediction.probability_active, 1, places=0)} %"

    @admin.display(description=_("predicted with"))
    def method(self, prediction: CustomerPrediction) -> str:
        return format_html('{} (<a href="{}">{}</a>)', prediction.fit.method_summary(),
                           reverse("value"), gettext("how predictions are made"))


class RiskInline(ReadOnlyInline):
    """The customer's latest at-risk row: why, and who follows up."""

    model = AtRisk
    formset = LatestOneFormSet
    fields = ["as_of", "why", "chance", "value_at_risk", "follow_up"]
    readonly_fields = fields
    verbose_name_plural = _("at risk (latest nightly list)")

    def get_queryset(self, request):
        follow_up = FollowUp.objects.filter(customer=OuterRef("customer_id"),
                                            status=FollowUp.Status.OPEN)
        return super().get_queryset(request).annotate(
            follow_up_with=Subquery(follow_up.values("assigned_to__username")[:1])
        ).order_by("-as_of")

    @admin.display(description=_("why"))
    def why(self, row: AtRisk) -> str:
        return format_html("<ul>{}</ul>", format_html_join(
            "", "<li>{}</li>", ((reason,) for reason in atrisk.in_words(row))))

    @admin.display(description=_("chance of no purchase in 90 days"))
    def chance(self, row: AtRisk) -> str:
        return f"{rate(row.score, 1, places=0)} %"

    @admin.display(description=_("follow-up with"))
    def follow_up(self, row: AtRisk) -> str:
        return row.follow_up_with or "–"


# Predicted value and customers at risk -------------------------------------------------------


@admin.register(ClvFit)
class ClvFitAdmin(ReadOnlyAdmin):
    """Every fit of the predicted-value models with its health, kept for the record."""

    list_display = ["as_of", "purpose", "customers", "repeat_customers", "method",
                    "bgnbd_converged", "gamma_gamma_converged", "correlation", "seconds"]
    list_filter = ["purpose", "purchases_method", "spend_method"]
    date_hierarchy = "as_of"
    readonly_fields = ["as_of", "purpose", "created_at", "customers", "repeat_customers",
                       "purchases_method", "spend_method", "fallback_reasons", "bgnbd",
                       "gamma_gamma", "monthly_discount", "holdout_weeks", "holdout", "seconds"]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # its predictions refer to it (the nightly prune deletes both)

    @admin.display(description=_("predictions made with"))
    def method(self, fit: ClvFit) -> str:
        return fit.method_summary()

    @admin.display(description=_("BG/NBD converged"), boolean=True)
    def bgnbd_converged(self, fit: ClvFit):
        return fit.bgnbd.get("converged") if fit.bgnbd else None

    @admin.display(description=_("Gamma-Gamma converged"), boolean=True)
    def gamma_gamma_converged(self, fit: ClvFit):
        return fit.gamma_gamma.get("converged") if fit.gamma_gamma else None

    @admin.display(description=_("frequency–spend correlation"))
    def correlation(self, fit: ClvFit):
        value = (fit.gamma_gamma or {}).get("frequency_spend_correlation")
        return "–" if value is None else f"{value:.3f}"


class LatestDayFilter(admin.SimpleListFilter):
    """The at-risk list of one night; the latest by default (older nights are history)."""

    title = _("night")
    parameter_name = "day"

    def lookups(self, request, model_admin):
        days = (AtRisk.objects.order_by("-as_of").values_list("as_of", flat=True)
                .distinct()[:40])
        return [(day.isoformat(), day.isoformat()) for day in days]

    def value(self):
        return super().value() or next(iter(self.lookup_choices), (None,))[0]

    def choices(self, changelist):
        for lookup, title in self.lookup_choices:
            yield {"selected": self.value() == lookup, "display": title,
                   "query_string": changelist.get_query_string({self.parameter_name: lookup})}

    def queryset(self, request, queryset):
        return queryset.filter(as_of=self.value()) if self.value() else queryset


class ReasonFilter(admin.SimpleListFilter):
    title = _("reason")
    parameter_name = "reason"

    def lookups(self, request, model_admin):
        return [(r.code, r.label) for r in atrisk.reasons()]

    def queryset(self, request, queryset):
        if chosen := atrisk.reason(self.value() or ""):
            return queryset.filter(chosen.condition())
        return queryset


class AtRiskActionForm(admin.helpers.ActionForm):
    """The action bar's extra fields: who follows up, and which list to add to."""

    assignee = forms.ModelChoiceField(
        queryset=get_user_model().objects.filter(is_active=True, is_staff=True),
        required=False, label=_("follow-up with"))
    list_name = forms.CharField(required=False, max_length=100, label=_("list"),
                                help_text=_("An existing list's name, or a new one."))


@admin.register(AtRisk)
class AtRiskAdmin(ReadOnlyAdmin):
    """The nightly at-risk list, by value at risk, with actions to act on it."""

    list_display = ["customer", "as_of", "value_at_risk", "predicted_value_12m", "chance",
                    "why", "follow_up"]
    list_filter = [LatestDayFilter, ReasonFilter, "customer__customer_type"]
    list_select_related = ["customer"]
    search_fields = ["customer__external_id", "customer__email", "customer__name",
                     "customer__organisation_name"]
    ordering = ["-value_at_risk", "customer_id"]
    action_form = AtRiskActionForm
    actions = ["assign_follow_up", "add_to_list"]
    show_full_result_count = False
    readonly_fields = [field.name for field in AtRisk._meta.fields]

    def get_queryset(self, request):
        follow_up = FollowUp.objects.filter(customer=OuterRef("customer_id"),
                                            status=FollowUp.Status.OPEN)
        return super().get_queryset(request).annotate(
            follow_up_with=Subquery(follow_up.values("assigned_to__username")[:1]))

    @admin.display(description=_("chance of no purchase in 90 days"), ordering="score")
    def chance(self, row: AtRisk) -> str:
        return f"{rate(row.score, 1, places=0)} %"

    @admin.display(description=_("why"))
    def why(self, row: AtRisk) -> str:
        return format_html("<ul>{}</ul>", format_html_join(
            "", "<li>{}</li>", ((reason,) for reason in atrisk.in_words(row))))

    @admin.display(description=_("follow-up with"))
    def follow_up(self, row: AtRisk) -> str:
        return row.follow_up_with or "–"

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not request.user.has_perms(["retention.add_followup", "retention.change_followup"]):
            actions.pop("assign_follow_up", None)  # it may reassign an open one: add and change
        if not request.user.has_perm("retention.add_reengagementmember"):
            actions.pop("add_to_list", None)
        return actions

    @admin.action(description=_("Assign a follow-up (to the person chosen, or to me)"))
    def assign_follow_up(self, request, queryset):
        chosen = request.POST.get("assignee")
        assignee = (get_user_model().objects.filter(pk=chosen, is_active=True).first()
                    if chosen else request.user)
        if assignee is None:
            self.message_user(request, gettext("Choose an active staff user to follow up."),
                              level="error")
            return
        done = followups.assign(queryset.values_list("customer_id", flat=True), to=assignee,
                                by=request.user)
        self.message_user(request, f"{done} " + gettext("Assigned to %(user)s.")
                          % {"user": assignee.get_username()})

    @admin.action(description=_("Add to the re-engagement list named below"))
    def add_to_list(self, request, queryset):
        try:
            chosen, added = followups.add_to_list(
                queryset.values_list("customer_id", flat=True),
                list_name=request.POST.get("list_name", ""), by=request.user,
                may_create=request.user.has_perm("retention.add_reengagementlist"))
        except (followups.ListNameMissing, followups.ListNotAllowed) as exc:
            self.message_user(request, str(exc), level="error")
            return
        self.message_user(request, ngettext("%(added)s customer added to “%(list)s”.",
                                            "%(added)s customers added to “%(list)s”.", added)
                          % {"added": added, "list": chosen.name})


class OverdueFilter(admin.SimpleListFilter):
    """Open follow-ups past their due date (the metrics page's "Needs attention" links here)."""

    title = _("due")
    parameter_name = "overdue"

    def lookups(self, request, model_admin):
        return [("yes", _("Open and past their due date"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(status=FollowUp.Status.OPEN,
                                   due_on__lt=timezone.localdate())
        return queryset


@admin.register(FollowUp)
class FollowUpAdmin(admin.ModelAdmin):
    list_display = ["customer", "assigned_to", "status", "due_on", "reason", "created_at"]
    list_filter = [OverdueFilter, "status", "assigned_to"]
    list_select_related = ["customer", "assigned_to"]
    search_fields = ["customer__external_id", "customer__email", "customer__name"]
    raw_id_fields = ["customer"]
    readonly_fields = ["created_by", "created_at", "done_at"]
    actions = ["mark_done"]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        if "status" in form.changed_data:
            obj.done_at = timezone.now() if obj.status == FollowUp.Status.DONE else None
        super().save_model(request, obj, form, change)

    @admin.action(description=_("Mark the selected follow-ups done"), permissions=["change"])
    def mark_done(self, request, queryset):
        done = followups.complete(queryset)
        self.message_user(request, ngettext("%(n)s follow-up marked done.",
                                            "%(n)s follow-ups marked done.", done) % {"n": done})


class MembersFormSet(LatestRowsFormSet):
    def get_queryset(self):
        # Each row is labelled with its customer's id and list's name: join them.
        if not hasattr(self, "_latest"):
            self._latest = (super(LatestRowsFormSet, self).get_queryset()
                            .select_related("customer", "list", "added_by")[:LATEST_ROWS])
        return self._latest


class MembersInline(ReadOnlyInline):
    model = ReEngagementMember
    formset = MembersFormSet
    fields = ["customer", "reasons", "added_by", "added_at"]
    readonly_fields = fields
    verbose_name_plural = _("latest members")


@admin.register(ReEngagementList)
class ReEngagementListAdmin(admin.ModelAdmin):
    """Customers put aside for a win-back campaign; campaigns read the members."""

    list_display = ["name", "description", "member_count", "created_at"]
    search_fields = ["name"]
    readonly_fields = ["created_at"]
    inlines = [MembersInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(member_count=Count("members"))

    @admin.display(description=_("customers"), ordering="member_count")
    def member_count(self, chosen: ReEngagementList) -> int:
        return chosen.member_count
