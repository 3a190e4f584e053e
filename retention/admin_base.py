"""What the areas' admins share: read-only history, and the latest rows of a long inline.

Staff read tables the application writes (snapshots, logs, the outbox) without editing
them, and a customer's page shows the latest few of their orders or emails, not
thousands.
"""

from django.contrib import admin
from django.forms.models import BaseInlineFormSet

# How many of a customer's orders (or emails, consents) their page shows; the rest are one
# link away.
LATEST_ROWS = 20


class ReadOnlyInline(admin.TabularInline):
    """An inline that shows history: no add, change or delete, only rows to read."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows the application writes (history, snapshots, logs): staff read them, never edit."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class LatestRowsFormSet(BaseInlineFormSet):
    latest = LATEST_ROWS  # a subclass may show fewer (the latest prediction: 1)

    def get_queryset(self):
        # A customer can have thousands of orders (or messages): load only the latest
        # few, once (the formset asks for its queryset several times while rendering).
        if not hasattr(self, "_latest"):
            self._latest = super().get_queryset()[:self.latest]
        return self._latest
