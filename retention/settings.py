"""Settings, read from the environment with safe defaults.

Every setting a deployment may change is an environment variable (see
`.env.example` and the README). Parsers are strict: a value that cannot be
understood stops start-up with ImproperlyConfigured rather than being guessed.
Secrets may also be given as a file path in `NAME_FILE`.
"""

import datetime
import os
import re
import warnings
import zoneinfo
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("RETENTION_VAR_DIR", BASE_DIR / "var"))


def env(name: str, default: str = "") -> str:
    """Return an environment variable, or the content of the file named by NAME_FILE."""
    if path := os.environ.get(f"{name}_FILE"):
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={path!r} cannot be read: {exc}") from exc
    return os.environ.get(name, default)


# Settings renamed with the RETENTION_ prefix: (old name, new name) of those the environment
# still sets by the old name. They keep working; `manage.py check` warns (retention.W001).
DEPRECATED: list[tuple[str, str]] = []


def renamed(new: str, *, old: str) -> str:
    """The name to read `new` by: `old` when only the old name is set (warned), else `new`."""
    def given(name: str) -> bool:
        return name in os.environ or f"{name}_FILE" in os.environ

    if not given(new) and given(old):
        DEPRECATED.append((old, new))
        warnings.warn(f"The setting {old} is now {new}; set {new} instead.",
                      DeprecationWarning, stacklevel=2)
        return old
    return new


def envbool(name: str, default: str) -> bool:
    value = env(name, default).strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use 1/0, true/false).")


def envint(name: str, default: str, *, minimum: int | None = None) -> int:
    value = env(name, default).strip()
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a whole number.") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} must be at least {minimum}.")
    return number


def envfloat(name: str, default: str, *, minimum: float, maximum: float) -> float:
    value = env(name, default).strip()
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number.") from None
    if not minimum <= number <= maximum:
        raise ImproperlyConfigured(f"{name}={value!r} must be between {minimum} and {maximum}.")
    return number


def envsize(name: str, default: str) -> str:
    """A PostgreSQL memory size such as 256MB."""
    value = env(name, default).replace(" ", "")
    if not re.fullmatch(r"\d+(kB|MB|GB)", value):
        raise ImproperlyConfigured(f"{name}={value!r} is not a size like 256MB.")
    return value


def envlist(name: str, default: str) -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


DEBUG = envbool("DEBUG", "0")

SECRET_KEY = env("SECRET_KEY")
if not SECRET_KEY and DEBUG:
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"  # noqa: S105
# Without DEBUG an empty key is refused where the application starts, not here, so
# that tooling that only reads the project (makemigrations --check) still runs:
# retention/wsgi.py stops gunicorn and runserver (both load it), `check --deploy`
# reports retention.E001, and Django refuses anything that would sign with it.
SECRET_KEY_IS_SET = bool(SECRET_KEY)
SECRET_KEY_MISSING = (
    "SECRET_KEY is not set. Set SECRET_KEY (or SECRET_KEY_FILE) in production, "
    "or DEBUG=1 for a local development server."
)

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    # Django's admin, with its index grouped by what staff do (retention/admin_site.py).
    "retention.admin_site.RetentionAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "anymail",
    "axes",
    "csp",
    "retention",
    "loyalty",
    "surveys",
    "offers",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Email a page queues is found and sent after its answer (retention/after_response.py).
    "retention.after_response.RunAfterResponse",
    # API answers hold customers' data: Cache-Control private, no-store (retention/api/caching.py).
    "retention.api.caching.NoStoreForAPI",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it answers a locked-out login with 429.
    "axes.middleware.AxesMiddleware",
]

# Logins (the admin's, and so the managers' pages') are throttled by django-axes: after
# RETENTION_LOGIN_FAILURE_LIMIT wrong passwords for one username from one address, that
# pair is refused (429) for RETENTION_LOGIN_COOLOFF_MINUTES, the right password included.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "retention.urls"
WSGI_APPLICATION = "retention.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: DATABASE_URL, e.g. postgres://user@127.0.0.1:5432/retention (psycopg 3).
# The embedded default is a SQLite file in var/.
try:
    DATABASES = {
        "default": dj_database_url.parse(
            env("DATABASE_URL", f"sqlite:///{VAR_DIR / 'retention.sqlite3'}"),
            conn_max_age=envint("DATABASE_CONN_MAX_AGE", "0", minimum=0),
        )
    }
except (ValueError, dj_database_url.UnknownSchemeError) as exc:
    raise ImproperlyConfigured(
        f"DATABASE_URL cannot be read ({exc}); use postgres://user:password@host:5432/name "
        "or sqlite:////absolute/path.sqlite3."
    ) from None
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # Wait for a writer rather than failing at once; imports hold the write lock. Each
    # transaction takes the write lock when it begins (IMMEDIATE), so two writers queue
    # on the timeout instead of one failing with "database is locked" when a read
    # transaction tries to become a write one.
    DATABASES["default"].setdefault("OPTIONS", {}).update(timeout=30, transaction_mode="IMMEDIATE")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
# The business time zone: an order's date is its date-time in this zone (spec "Inputs").
TIME_ZONE = env("TIME_ZONE", "UTC")
try:
    zoneinfo.ZoneInfo(TIME_ZONE)
except (zoneinfo.ZoneInfoNotFoundError, ValueError):
    raise ImproperlyConfigured(
        f"TIME_ZONE={TIME_ZONE!r} is not a time zone name (e.g. Africa/Johannesburg, UTC)."
    ) from None
USE_I18N = True
USE_TZ = True
# Dates on the pages and in the admin as "3 Dec 2026" (retention/formats/en/formats.py).
FORMAT_MODULE_PATH = ["retention.formats"]

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
# Front-end libraries come from the npm registry (package.json; `make` runs npm ci) and
# are served from here; pages work without them, charts need them.
STATICFILES_DIRS = [
    (f"vendor/{name}", BASE_DIR / "node_modules" / name / "dist")
    for name in ("chart.js",)
    if (BASE_DIR / "node_modules" / name / "dist").is_dir()
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Security: HTTPS settings are on unless DEBUG (or turned off explicitly behind
# a proxy that terminates TLS and sets X-Forwarded-Proto).
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", "0" if DEBUG else "1")
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = envbool("SECURE_COOKIES", "0" if DEBUG else "1")
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", "0" if DEBUG else "31536000", minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", "1")
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", "0")
if envbool("SECURE_PROXY_SSL_HEADER", "0"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Reverse proxies in front of the application that append to X-Forwarded-For; the client's
# address is read through them (retention/network.py). 0: REMOTE_ADDR, the header ignored.
RETENTION_TRUSTED_PROXY_COUNT = envint("RETENTION_TRUSTED_PROXY_COUNT", "0", minimum=0)

RETENTION_LOGIN_FAILURE_LIMIT = envint("RETENTION_LOGIN_FAILURE_LIMIT", "5", minimum=1)
RETENTION_LOGIN_COOLOFF_MINUTES = envint("RETENTION_LOGIN_COOLOFF_MINUTES", "15", minimum=1)
AXES_FAILURE_LIMIT = RETENTION_LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = datetime.timedelta(minutes=RETENTION_LOGIN_COOLOFF_MINUTES)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "retention.network.client_ip"
AXES_LOCKOUT_TEMPLATE = "account/locked_out.html"

# Content-Security-Policy on every response (django-csp): scripts only from this site, no
# inline script. Inline styles stay allowed: the emails' HTML, previewed in the admin,
# is styled inline as email clients need, and the cohort heatmap shades cells by style.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# The cache: the API's throttle counts. Redis when CACHE_URL names it (redis://host:6379/1),
# otherwise files under var/cache, which every process on the machine shares.
CACHE_URL = env("CACHE_URL")
if CACHE_URL and not CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(f"CACHE_URL={CACHE_URL!r} is not a redis:// URL.")
CACHES = {"default": (
    {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
    if CACHE_URL else
    {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
     "LOCATION": str(VAR_DIR / "cache")}
)}

# Email: SMTP when EMAIL_HOST is set, otherwise messages are written as files
# under var/sent-emails/ (embedded default). EMAIL_BACKEND overrides both, for
# example "anymail.backends.postmark.EmailBackend".
EMAIL_HOST = env("EMAIL_HOST")
EMAIL_PORT = envint("EMAIL_PORT", "587", minimum=1)
EMAIL_HOST_USER = env("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", "1" if EMAIL_HOST else "0")
EMAIL_USE_SSL = envbool("EMAIL_USE_SSL", "0")
EMAIL_TIMEOUT = envint("EMAIL_TIMEOUT", "30", minimum=1)
EMAIL_BACKEND = env(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.filebased.EmailBackend",
)
EMAIL_FILE_PATH = VAR_DIR / "sent-emails"
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "Courses <no-reply@localhost>")
# Where the site is reached, for links in emails (alerts, and later customer links).
SITE_URL = env("SITE_URL", "http://127.0.0.1:8000")
SERVER_EMAIL = env("SERVER_EMAIL", DEFAULT_FROM_EMAIL)

# Celery: with CELERY_BROKER_URL unset, tasks run in-process (embedded default).
CELERY_BROKER_URL = env("CELERY_BROKER_URL")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND") or None
CELERY_TASK_ACKS_LATE = True  # a task whose worker dies is redelivered: tasks are idempotent
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Schedules live in the database, where staff edit them in the admin (Periodic
# tasks); migration retention/0002 creates the nightly pipeline's at RETENTION_NIGHTLY_HOUR.
CELERY_BEAT_SCHEDULE: dict = {}
_name = renamed("RETENTION_NIGHTLY_HOUR", old="NIGHTLY_HOUR")
RETENTION_NIGHTLY_HOUR = envint(_name, "2", minimum=0)
if RETENTION_NIGHTLY_HOUR > 23:
    raise ImproperlyConfigured(f"{_name}={RETENTION_NIGHTLY_HOUR} must be an hour from 0 to 23.")

# REST API
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["retention.permissions.IsPlatformOrStaff"],
    # JSON (nested no deeper than 32 levels); forms for the browsable API's staff sessions.
    "DEFAULT_PARSER_CLASSES": [
        "retention.api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    # Rates: RETENTION_API_RATES (retention/api/throttles.py); 429 with Retry-After past them.
    "DEFAULT_THROTTLE_CLASSES": [
        "retention.api.throttles.AnonRateThrottle",
        "retention.api.throttles.UserRateThrottle",
    ],
    "DEFAULT_PAGINATION_CLASS": "retention.pagination.PageNumberPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "COERCE_DECIMAL_TO_STRING": True,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Course retention API",
    "DESCRIPTION": (
        "Customers, catalogue, orders, memberships, enrolments and support tickets from the "
        "sales platform. Authenticate with `Authorization: Token <key>`."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

def _rate(name: str, default: str) -> str:
    value = env(name, default).strip()
    number, _, per = value.partition("/")
    if not number.isdigit() or int(number) < 1 or per not in {"second", "minute", "hour", "day"}:
        raise ImproperlyConfigured(f"{name}={value!r} is not a rate like 600/minute.")
    return value


# API calls allowed per token or staff user, and per address for anonymous callers.
RETENTION_API_RATES = {
    "user": _rate("RETENTION_API_RATE", "600/minute"),
    "anon": _rate("RETENTION_API_ANON_RATE", "30/minute"),
}

# Business settings (spec: shared/spec/metrics.md).
RETENTION_CURRENCY = env("RETENTION_CURRENCY", "ZAR").upper()
if len(RETENTION_CURRENCY) != 3 or not RETENTION_CURRENCY.isalpha():
    raise ImproperlyConfigured(f"RETENTION_CURRENCY={RETENTION_CURRENCY!r} is not an ISO 4217 code.")
# How the pages write numbers and money (Babel's locale names: en, en_ZA, en_GB, de_DE …).
RETENTION_LOCALE = env("RETENTION_LOCALE", "en")
try:
    import babel

    babel.Locale.parse(RETENTION_LOCALE)
except (ValueError, babel.UnknownLocaleError):
    raise ImproperlyConfigured(f"RETENTION_LOCALE={RETENTION_LOCALE!r} is not a locale like en_ZA.") from None
RETENTION_ACTIVITY_WINDOW_DAYS = envint("RETENTION_ACTIVITY_WINDOW_DAYS", "365", minimum=1)
RETENTION_NEW_OFFERING_WINDOW_DAYS = envint(
    renamed("RETENTION_NEW_OFFERING_WINDOW_DAYS", old="NEW_OFFERING_WINDOW_DAYS"), "90", minimum=0)



# An imported order dated in the future: "warn" (imported, and each such row reported) or
# "refuse" (the row is invalid).
RETENTION_IMPORT_FUTURE_ORDERS = env("RETENTION_IMPORT_FUTURE_ORDERS", "warn").strip().lower()
if RETENTION_IMPORT_FUTURE_ORDERS not in {"warn", "refuse"}:
    raise ImproperlyConfigured(
        f"RETENTION_IMPORT_FUTURE_ORDERS={RETENTION_IMPORT_FUTURE_ORDERS!r} is not warn or refuse.")

# PostgreSQL work_mem for the duration of an import (joins over the whole file).
RETENTION_IMPORT_WORK_MEM = envsize(renamed("RETENTION_IMPORT_WORK_MEM", old="IMPORT_WORK_MEM"),
                                    "256MB")
# PostgreSQL work_mem while the period metrics are counted (sorts and hashes of customer sets).
RETENTION_METRICS_WORK_MEM = envsize("RETENTION_METRICS_WORK_MEM", "64MB")
# Daily segment snapshots are kept this many days; month-end ones are kept for good.
RETENTION_SEGMENT_KEEP_DAYS = envint("RETENTION_SEGMENT_KEEP_DAYS", "35", minimum=1)
# The same for the nightly predictions and at-risk lists (by default as long as segments).
RETENTION_PREDICTION_KEEP_DAYS = envint("RETENTION_PREDICTION_KEEP_DAYS",
                                        str(RETENTION_SEGMENT_KEEP_DAYS), minimum=1)
RETENTION_AT_RISK_KEEP_DAYS = envint("RETENTION_AT_RISK_KEEP_DAYS",
                                     str(RETENTION_SEGMENT_KEEP_DAYS), minimum=1)
# Count the smaller figures on a second connection beside the main aggregate (PostgreSQL).
RETENTION_METRICS_PARALLEL = envbool("RETENTION_METRICS_PARALLEL", "1")
# Rows an API bulk call may carry.
RETENTION_ORDERS_BULK_MAX = envint(renamed("RETENTION_ORDERS_BULK_MAX", old="ORDERS_BULK_MAX"),
                                   "1000", minimum=1)

# Predicted value and customers at risk (retention/value/predictions.py, retention/value/atrisk.py) ------
# Fewer customers, or fewer repeat buyers (bought on two days or more), than these and the
# models are not fitted: predictions follow the simple rule instead, and say so.
RETENTION_CLV_MIN_CUSTOMERS = envint("RETENTION_CLV_MIN_CUSTOMERS", "200", minimum=1)
RETENTION_CLV_MIN_REPEAT_BUYERS = envint("RETENTION_CLV_MIN_REPEAT_BUYERS", "50", minimum=1)
# Monthly discount rate of the predicted 12-month value (0.01 = 1 % a month).
RETENTION_CLV_MONTHLY_DISCOUNT = envfloat("RETENTION_CLV_MONTHLY_DISCOUNT", "0.01",
                                          minimum=0, maximum=1)
# The holdout validation the predicted-value page shows: this many weeks before the last
# month-end are held out, the models fitted on what came before (fit_clv --holdout-weeks too).
RETENTION_CLV_HOLDOUT_WEEKS = envint("RETENTION_CLV_HOLDOUT_WEEKS", "26", minimum=1)
# At-risk reasons: a chance of still being active below this; a gap since the last order
# longer than this many times the customer's usual gap; a course left unfinished with no
# activity for this many days.
RETENTION_AT_RISK_ACTIVE_BELOW = envfloat("RETENTION_AT_RISK_ACTIVE_BELOW", "0.5",
                                          minimum=0, maximum=1)
RETENTION_AT_RISK_OVERDUE_FACTOR = envfloat("RETENTION_AT_RISK_OVERDUE_FACTOR", "2",
                                            minimum=1, maximum=100)
RETENTION_AT_RISK_ABANDONED_DAYS = envint("RETENTION_AT_RISK_ABANDONED_DAYS", "30", minimum=1)

# Email to customers (retention/mail/outbox.py, contact.py, links.py) ---------------------------
# The business's name, as emails and the customers' pages show it.
RETENTION_BUSINESS_NAME = env("RETENTION_BUSINESS_NAME", "Courses")
# The contact budget: at most this many non-transactional emails per customer in this many days.
RETENTION_CONTACT_BUDGET_MESSAGES = envint("RETENTION_CONTACT_BUDGET_MESSAGES", "2", minimum=1)
RETENTION_CONTACT_BUDGET_DAYS = envint("RETENTION_CONTACT_BUDGET_DAYS", "7", minimum=1)


def _quiet_hours(text: str):
    """'21:00-08:00' (business time zone) -> (start, end) times; empty -> None."""
    if not text.strip():
        return None
    try:
        start, end = (datetime.time.fromisoformat(part.strip()) for part in text.split("-"))
    except ValueError:
        raise ImproperlyConfigured(
            f"RETENTION_QUIET_HOURS={text!r} is not a range like 21:00-08:00.") from None
    return start, end


RETENTION_QUIET_HOURS = _quiet_hours(env("RETENTION_QUIET_HOURS", "21:00-08:00"))
def _link_days(text: str) -> dict[str, int]:
    """'account=60,survey=14' -> the lifetimes asked for, in days, by link purpose.

    Only the format is checked here: the purposes are registered by the apps when they
    load, and a name no app registered is reported by `manage.py check` (retention.E002).
    Purposes not named keep their own lifetimes (account 30, preferences 180,
    unsubscribe 365, click 365; the programs' as they register them).
    """
    days = {}
    for part in filter(None, (item.strip() for item in text.split(","))):
        name, _, value = part.partition("=")
        if not name.isidentifier() or not value.isdigit() or int(value) < 1:
            raise ImproperlyConfigured(
                f"RETENTION_LINK_DAYS: {part!r} is not PURPOSE=DAYS with at least 1 day.")
        days[name] = int(value)
    return days


RETENTION_LINK_DAYS = _link_days(env("RETENTION_LINK_DAYS", ""))
# Fresh-link requests per address and hour (ten times as many per IP address).
# Work a page causes (finding a customer, sending their email) runs after the answer on a
# background thread ("thread"), or on the serving thread after the answer ("inline").
RETENTION_AFTER_RESPONSE = env("RETENTION_AFTER_RESPONSE", "thread").strip().lower()
if RETENTION_AFTER_RESPONSE not in {"thread", "inline"}:
    raise ImproperlyConfigured(
        f"RETENTION_AFTER_RESPONSE={RETENTION_AFTER_RESPONSE!r} is not thread or inline.")
RETENTION_LINK_REQUESTS_PER_HOUR = envint("RETENTION_LINK_REQUESTS_PER_HOUR", "3", minimum=1)
# What customers were shown when the sales platform recorded their marketing consent.
RETENTION_CONSENT_WORDING = env(
    "RETENTION_CONSENT_WORDING",
    "Yes, email me offers, news about new courses and my loyalty rewards. "
    "I can unsubscribe at any time.")
RETENTION_OUTBOX_KEEP_DAYS = envint("RETENTION_OUTBOX_KEEP_DAYS", "365", minimum=1)
RETENTION_OUTBOX_MAX_ATTEMPTS = envint("RETENTION_OUTBOX_MAX_ATTEMPTS", "6", minimum=1)
# Messages marked "sending" (and then "sent") by one write: more is faster; a worker that
# dies mid-group leaves up to this many marked "delivery unknown" (never sent twice).
RETENTION_OUTBOX_HANDOVER_GROUP = envint("RETENTION_OUTBOX_HANDOVER_GROUP", "10", minimum=1)
# A claimed or sending message whose worker went quiet this long is dealt with by the sweep.
RETENTION_OUTBOX_STALE_SECONDS = envint("RETENTION_OUTBOX_STALE_SECONDS", "300", minimum=10)
# An open-tracking image in marketing email; off unless asked for.
RETENTION_TRACK_OPENS = envbool("RETENTION_TRACK_OPENS", "0")
# django-anymail: the email service is the one EMAIL_BACKEND names
# (anymail.backends.<service>.EmailBackend), and only its delivery webhook is routed, at
# /anymail/<service>/tracking/, and only with a shared secret (user:password, as the
# service's webhook settings take it). Without one the webhook is not routed, and
# `check --deploy` and the production server refuse to go on (retention.E003).
_service = re.fullmatch(r"anymail\.backends\.(\w+)\.EmailBackend", EMAIL_BACKEND)
RETENTION_EMAIL_SERVICE = _service.group(1) if _service else ""
ANYMAIL_WEBHOOK_SECRET = env("ANYMAIL_WEBHOOK_SECRET")
if ANYMAIL_WEBHOOK_SECRET and ":" not in ANYMAIL_WEBHOOK_SECRET:
    raise ImproperlyConfigured("ANYMAIL_WEBHOOK_SECRET must be user:password (basic auth).")
ANYMAIL = {"WEBHOOK_SECRET": ANYMAIL_WEBHOOK_SECRET} if ANYMAIL_WEBHOOK_SECRET else {}
WEBHOOK_SECRET_MISSING = (
    f"EMAIL_BACKEND sends through {RETENTION_EMAIL_SERVICE}, whose delivery webhook "
    "(bounces, complaints) needs ANYMAIL_WEBHOOK_SECRET=user:password; without it the webhook "
    "is not routed and bounces are not recorded."
)

LOG_LEVEL = env("LOG_LEVEL", "WARNING").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(f"LOG_LEVEL={LOG_LEVEL!r} is not DEBUG, INFO, WARNING or ERROR.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
