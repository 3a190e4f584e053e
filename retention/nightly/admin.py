"""Admin for the nightly pipeline: its runs, read-only; and the schedules' admin
(django-celery-beat's) with its actions kept to staff who may change schedules."""

from django.contrib import admin
from django_celery_beat.admin import PeriodicTaskAdmin
from django_celery_beat.models import PeriodicTask

from retention.admin_base import ReadOnlyAdmin
from retention.nightly.models import NightlyRun

# django-celery-beat's actions declare no permission, so Django offered them to anyone who
# may view schedules: a view-only manager could switch the nightly pipeline off or run it.
SCHEDULE_ACTIONS = ("enable_tasks", "disable_tasks", "toggle_tasks", "run_tasks")


class PeriodicTaskAdminForChangers(PeriodicTaskAdmin):
    def get_actions(self, request):
        actions = super().get_actions(request)
        if not self.has_change_permission(request):
            for name in SCHEDULE_ACTIONS:
                actions.pop(name, None)
        return actions


admin.site.unregister(PeriodicTask)
admin.site.register(PeriodicTask, PeriodicTaskAdminForChangers)


@admin.register(NightlyRun)
class NightlyRunAdmin(ReadOnlyAdmin):
    """Read-only history of the nightly pipeline: when it ran and what each step did."""

    list_display = ["night", "started_at", "finished_at", "outcomes"]
