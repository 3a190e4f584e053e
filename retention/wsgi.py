"""WSGI entry point (gunicorn retention.wsgi, or make run's server)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "retention.settings")

application = get_wsgi_application()

from django.conf import settings  # noqa: E402  (after setup, as Django's own wsgi does)
from django.core.exceptions import ImproperlyConfigured  # noqa: E402

if not settings.SECRET_KEY_IS_SET:  # gunicorn and runserver both load this module
    raise ImproperlyConfigured(settings.SECRET_KEY_MISSING)
if settings.RETENTION_EMAIL_SERVICE and not settings.ANYMAIL_WEBHOOK_SECRET and not settings.DEBUG:
    raise ImproperlyConfigured(settings.WEBHOOK_SECRET_MISSING)
