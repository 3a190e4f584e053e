"""Settings for the test suite: the application's settings with test-only defaults."""

import os

os.environ.setdefault("SECRET_KEY", "tests-only-not-secret")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("SECURE_COOKIES", "0")
os.environ.setdefault("SECURE_HSTS_SECONDS", "0")
os.environ.setdefault("RETENTION_CURRENCY", "ZAR")

from retention.settings import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
STORAGES = {
    **STORAGES,  # noqa: F405
    # The manifest needs collectstatic; tests render templates without it.
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405  (WhiteNoise warns when it is missing)
# Tasks run in-process in tests, also when CELERY_BROKER_URL names a broker; the
# real-worker tests (tests/retention/nightly/test_celery_worker.py) send through it themselves.
CELERY_TASK_ALWAYS_EAGER = True
# The API's throttle counts and the like: in memory, emptied before each test (conftest).
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Generous rates, so that a test making many calls (schemathesis) is not throttled; the
# throttling tests set their own.
RETENTION_API_RATES = {"user": "100000/minute", "anon": "100000/minute"}
# Work after a page's answer runs on the serving thread, in the test's transaction
# (tests/retention/security/test_fresh_links.py runs it on the background thread too).
RETENTION_AFTER_RESPONSE = "inline"
