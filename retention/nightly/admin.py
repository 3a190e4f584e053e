"""Admin for the nightly pipeline: its runs, read-only."""

from django.contrib import admin

from retention.admin_base import ReadOnlyAdmin
from retention.nightly.models import NightlyRun


@admin.register(NightlyRun)
class NightlyRunAdmin(ReadOnlyAdmin):
    """Read-only history of the nightly pipeline: when it ran and what each step did."""

    list_display = ["night", "started_at", "finished_at", "outcomes"]
