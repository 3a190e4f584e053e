"""Who may use the REST API.

The sales platform (users in the Platform group, with a token) may read and
write everything the API offers. Staff may do through the API what their
Django permissions let them do in the admin: a manager, who may only view,
may only read. The figures (metrics, cohorts, segments, price update), which are not
one table's rows, are for the platform and for managers only, as the managers' pages are.
Anyone else, anonymous included, is refused.
"""

from rest_framework.permissions import SAFE_METHODS, BasePermission

# The groups the project's roles are: the sales platform's API client, and the managers who
# read the metrics pages (and may view every domain table, changing nothing).
PLATFORM_GROUP = "Platform"
MANAGERS_GROUP = "Managers"

# The model permissions a staff user needs, by HTTP method (an upsert may add or change).
NEEDED = {"POST": ["add", "change"], "PUT": ["add", "change"], "PATCH": ["change"],
          "DELETE": ["delete"]}


def is_manager(user) -> bool:
    """Who may read the figures: active superusers and members of the Managers group."""
    return bool(user and user.is_authenticated and user.is_active and (
        user.is_superuser or user.groups.filter(name=MANAGERS_GROUP).exists()))


def is_platform(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active
                and user.groups.filter(name=PLATFORM_GROUP).exists())


class IsPlatformOrManager(BasePermission):
    """The figures: the platform, or a manager (the same people as the managers' pages)."""

    message = "The figures are for the platform's token and for managers."

    def has_permission(self, request, view) -> bool:
        return request.method in SAFE_METHODS and (
            is_platform(request.user) or is_manager(request.user))


class IsPlatformOrStaff(BasePermission):
    message = "Authenticate with a platform token, or as staff with permission for this."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active):
            return False
        if is_platform(user):
            return True
        if not user.is_staff:
            return False
        queryset = getattr(view, "queryset", None)
        if queryset is None:  # the API root and the schema list what exists
            return request.method in SAFE_METHODS
        opts = queryset.model._meta
        actions = ["view"] if request.method in SAFE_METHODS else NEEDED.get(request.method, [])
        if request.method in SAFE_METHODS and user.has_perm(
            f"{opts.app_label}.change_{opts.model_name}"
        ):
            return True  # as in the admin, who may change may view
        return bool(actions) and user.has_perms(
            [f"{opts.app_label}.{action}_{opts.model_name}" for action in actions]
        )
