"""The admin's index grouped by what staff do, with the technical tables apart.

Every model of the `retention` app is one app to Django, so the admin listed 23 tables
in one alphabetical block. `AdminSite.get_app_list` is the documented place to arrange
the index: here retention's models are shown in the groups of GROUPS, in that order,
and a model of retention that no group names (another area's, later) under "More". Other
apps (authentication, periodic tasks, the programs) keep their own blocks.
"""

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.utils.translation import gettext_lazy as _

GROUPS = [
    (_("Customers and orders"), ["Customer", "Order", "Course", "Bundle", "PriceChange",
                                 "Membership", "Enrolment", "SupportTicket"]),
    (_("Acting on customers at risk"), ["AtRisk", "FollowUp", "ReEngagementList"]),
    (_("Email"), ["OutboxMessage", "ConsentRecord", "Suppression"]),
    (_("Targets and alerts"), ["Target", "AlertRule", "Alert"]),
    (_("Technical: stored figures, change log and nightly runs"),
     ["ClvFit", "MetricSnapshot", "CustomerSegment", "StoredReport", "DataChange",
      "NightlyRun"]),
]


class RetentionAdminSite(admin.AdminSite):
    site_header = _("Course retention")
    site_title = _("Course retention admin")
    index_title = _("Customers, catalogue and retention programs")

    def get_app_list(self, request, app_label=None):
        apps = super().get_app_list(request, app_label)
        if app_label not in (None, "retention"):
            return apps
        out = []
        for app in apps:
            if app["app_label"] != "retention":
                out.append(app)
                continue
            by_name = {model["object_name"]: model for model in app["models"]}
            for title, names in GROUPS:
                models = [by_name.pop(name) for name in names if name in by_name]
                if models:
                    out.append({**app, "name": title, "models": models})
            if by_name:
                out.append({**app, "name": _("More"), "models": list(by_name.values())})
        return out


class RetentionAdminConfig(AdminConfig):
    default_site = "retention.admin_site.RetentionAdminSite"
