"""Admin for figures: quarter targets with their status, stored snapshots and reports,
segment rows, and alert rules with the alerts they raised."""

import threading

from django.contrib import admin
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from retention.admin_base import ReadOnlyAdmin
from retention.figures import targets
from retention.figures.models import (
    Alert,
    AlertRule,
    CustomerSegment,
    MetricSnapshot,
    StoredReport,
    Target,
)

# Figures computed while one change list renders, keyed by subset and period: the six
# targets of a quarter share two periods. Thread-local and cleared per request.
_figures = threading.local()


@admin.register(Target)
class TargetAdmin(admin.ModelAdmin):
    list_display = ["metric", "period_label", "kind", "low", "high", "subset_label", "status",
                    "result"]
    list_filter = ["year", "quarter", "kind", "metric"]
    search_fields = ["metric", "note"]
    fieldsets = [
        (None, {"fields": ["metric", "year", "quarter", "kind", "low", "high", "note"]}),
        (_("Subset (optional)"), {
            "fields": ["source", "customer_type", "category"],
            "description": _("Leave empty for all customers. Customer type: individual, "
                             "organisation, or a sector (company, government, municipality, "
                             "institution)."),
        }),
    ]

    def changelist_view(self, request, extra_context=None):
        _figures.cache = {}
        return super().changelist_view(request, extra_context)

    def _evaluation(self, obj: Target) -> targets.Evaluation:
        cache = getattr(_figures, "cache", None)
        if cache is None:
            cache = _figures.cache = {}
        return targets.evaluate(obj, today=timezone.localdate(),
                                figures=targets.cached_figures(obj, cache))

    @admin.display(description=_("quarter"), ordering="year")
    def period_label(self, obj: Target) -> str:
        return f"{obj.year} Q{obj.quarter}"

    @admin.display(description=_("subset"))
    def subset_label(self, obj: Target) -> str:
        return ", ".join(v for v in (obj.source, obj.customer_type, obj.category) if v) or "—"

    @admin.display(description=_("status"))
    def status(self, obj: Target) -> str:
        evaluation = self._evaluation(obj)
        # A word, not a colour: the status reads the same to everyone.
        return evaluation.status + ("" if evaluation.final or evaluation.status in (
            targets.Status.NOT_STARTED, targets.Status.NO_DATA) else gettext(" (to date)"))

    @admin.display(description=_("result"))
    def result(self, obj: Target) -> str:
        evaluation = self._evaluation(obj)
        if evaluation.result is None:
            return "—"
        unit = {"change": " %", "points": " pts"}.get(obj.kind, "")
        return f"{evaluation.result:+}{unit}" if obj.kind != "value" else f"{evaluation.result}"


@admin.register(MetricSnapshot)
class MetricSnapshotAdmin(ReadOnlyAdmin):
    """Read-only: snapshots are made by the nightly job and `compute_metrics --save`."""

    list_display = ["grain", "start", "end", "subset", "window_days", "computed_at"]
    list_filter = ["grain", "subset"]
    date_hierarchy = "start"


@admin.register(StoredReport)
class StoredReportAdmin(ReadOnlyAdmin):
    """Stored tables of the managers' pages; deleting one makes the next view compute it."""

    list_display = ["kind", "key", "depends_until", "computed_at"]
    list_filter = ["kind"]
    search_fields = ["key"]
    exclude = ["data"]  # can be large; the pages show it


@admin.register(CustomerSegment)
class CustomerSegmentAdmin(ReadOnlyAdmin):
    """Read-only: segments are stored by the nightly job, one row per customer and date."""

    list_display = ["snapshot_on", "customer", "segment", "recency_score", "frequency_score",
                    "monetary_score", "recency_days", "frequency", "monetary"]
    list_filter = ["segment", "snapshot_on"]
    list_select_related = ["customer"]
    search_fields = ["customer__external_id", "customer__email"]
    raw_id_fields = ["customer"]
    show_full_result_count = False


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    list_display = ["metric", "direction", "threshold_percent", "trailing_months", "enabled"]
    list_filter = ["enabled", "direction"]
    list_editable = ["enabled"]


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    """Read-only: alerts are raised by the nightly job."""

    list_display = ["rule", "month", "value", "trailing_average", "change_percent", "raised_at",
                    "emailed_at"]
    list_select_related = ["rule"]
    list_filter = ["month"]
