"""Who may use the REST API."""

from rest_framework.permissions import BasePermission


class IsPlatformOrStaff(BasePermission):
    """Allow staff users, and the sales platform's API user (a token in the
    'Platform' group). Anyone else, anonymous included, is refused."""

    message = "Authenticate with a platform token or as staff."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active):
            return False
        return user.is_staff or user.groups.filter(name="Platform").exists()
