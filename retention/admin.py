"""The admin of every area of the `retention` app, gathered for Django's autodiscovery (which
imports an app's `admin` module). Each area registers its own models in its `admin.py`."""

from retention.figures import admin as figures_admin
from retention.mail import admin as mail_admin
from retention.nightly import admin as nightly_admin
from retention.sales import admin as sales_admin
from retention.value import admin as value_admin

__all__ = ["sales_admin", "mail_admin", "figures_admin", "value_admin", "nightly_admin"]

# DRF's token admin lists every token's key: whoever may view it could act as the sales
# platform through the API. Tokens are made with `manage.py create_api_client` and are never
# shown in the admin.
from django.contrib import admin  # noqa: E402
from rest_framework.authtoken.models import TokenProxy  # noqa: E402

if admin.site.is_registered(TokenProxy):
    admin.site.unregister(TokenProxy)
