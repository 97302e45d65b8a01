"""Settings, driven by the environment (see README, "Configuration").

With no environment at all this runs the embedded development shape: SQLite under
var/, a filesystem Celery broker, local-memory-free file cache, email to the outbox table (staff read it in the admin).
"""

import datetime
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent


class _SetVariables(Mapping):
    """os.environ without the empty variables: `X=` means "X not set", so its default applies."""

    def __getitem__(self, name: str) -> str:
        value = os.environ[name]
        if value == "":
            raise KeyError(name)
        return value

    def __iter__(self) -> Iterator[str]:
        return (name for name, value in os.environ.items() if value != "")

    def __len__(self) -> int:
        return sum(1 for _ in self)


env = environ.Env()
env.ENVIRON = _SetVariables()  # type: ignore[assignment]

VAR_DIR = Path(env.str("TIERWISE_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env.bool("DEBUG", default=False)
# Outside DEBUG a missing SECRET_KEY stops every process at start-up (ImproperlyConfigured), not at the first request.
SECRET_KEY = (
    env.str("SECRET_KEY", default="dev-only-insecure-key-change-me-6c1f0d2b9a7e4e21b8c3d5f7a9e1b3c5")
    if DEBUG
    else env.str("SECRET_KEY")
)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "accounts.apps.TierwiseAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from our own static files (works offline)
    "accounts",
    "catalog",
    "billing",
    "usage",
    "messaging",
    "upgrades",
    "axes",  # sign-in throttling by account and by address (AXES_* below)
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.StaffTenantMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a locked-out sign-in into the lockout page
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "/admin/login/"
AUTHENTICATION_BACKENDS = [
    "accounts.auth_backends.SignInLockoutBackend",  # first: refuses locked-out sign-ins before any check
    "django.contrib.auth.backends.ModelBackend",
]
# Brute-force protection (django-axes): AXES_FAILURE_LIMIT failed sign-ins lock that account (from any address)
# and, separately, that address (for any account) for AXES_COOLOFF_TIME; a lockout shows
# registration/locked_out.html (429). Behind a proxy set AXES_IPWARE_PROXY_COUNT so the client address is used.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = datetime.timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_HTTP_RESPONSE_CODE = 429
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_FORM_FIELD = "username"
AXES_IPWARE_PROXY_COUNT = env.int("AXES_IPWARE_PROXY_COUNT", default=0) or None
AXES_VERBOSE = False

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
                "accounts.context_processors.tenant",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'tierwise.sqlite3'}"),
}
# On PostgreSQL DATABASE_URL is the role the app runs as, under row-level security (accounts/rls.py):
# not the tables' owner, not superuser, no BYPASSRLS. DATABASE_OWNER_URL (default: DATABASE_URL) is the
# owner `manage.py migrate` connects as; migrate then grants the app role what it needs.
DATABASE_OWNER = env.db("DATABASE_OWNER_URL") if env.str("DATABASE_OWNER_URL", default="") else None
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Sets the tenant per transaction for row-level security (config/db/postgresql/base.py).
    DATABASES["default"]["ENGINE"] = "config.db.postgresql"
    # PgBouncer in transaction mode cannot keep a server-side cursor across transactions.
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Web, worker and beat share the file: wait for locks instead of failing.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
IS_POSTGRES = DATABASES["default"]["ENGINE"].endswith(("postgresql", "postgis"))
# Outside DEBUG the app refuses a privileged database role (accounts.rls.check_app_role); tests only.
TIERWISE_ALLOW_PRIVILEGED_DB_ROLE = False

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    # A file cache is shared by web and worker processes, so invalidation reaches both.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
# One date style everywhere: "1 Dec 2026, 14:05" (config/formats/en/formats.py).
FORMAT_MODULE_PATH = ["config.formats"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- Security (production defaults; `make run` sets DEBUG=1) -------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
# Container and load-balancer health checks speak plain HTTP to the app itself.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# --- Email ---------------------------------------------------------------------------
EMAIL_URL = env.str("EMAIL_URL", default="")
if EMAIL_URL:
    vars().update(environ.Env.email_url_config(EMAIL_URL))
else:
    # Stored in the database and readable by the tenant's staff in the admin (messaging.OutboxEmail).
    EMAIL_BACKEND = "messaging.backends.OutboxEmailBackend"
# Absolute links in emails (invitations, offer links) start here.
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Tierwise <no-reply@tierwise.local>")

# --- Celery --------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=REDIS_URL or None)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Below the broker's visibility timeout (300 s), so a running task is never redelivered as if lost.
CELERY_TASK_SOFT_TIME_LIMIT = 150
CELERY_TASK_TIME_LIMIT = 240
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
        # Poll often: at the default 1 s the worker takes ~2 tasks a second (prefetch 1, acks late).
        "polling_interval": 0.1,
    }
    # The filesystem transport has no fanout exchange for remote control.
    CELERY_WORKER_ENABLE_REMOTE_CONTROL = False
else:
    # A task a killed worker held is redelivered after this: short, so crashed work resumes within minutes.
    # Every task is bounded below it (CELERY_TASK_TIME_LIMIT) and no countdown reaches it (billing's
    # longest retry backoff is 120 s); longer waits go through beat and a due-time column, never a countdown.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 300}
CELERY_BEAT_SCHEDULE: dict = {}
# billing: catalog prices in Stripe, trial/grant sunsets, downgrades at period end, missed webhooks.
CELERY_BEAT_SCHEDULE.update(
    {
        "billing-sync-stripe-catalog": {"task": "billing.tasks.sync_stripe_catalog", "schedule": 15 * 60},
        "billing-expire-license-grants": {"task": "billing.tasks.expire_license_grants", "schedule": 5 * 60},
        "billing-apply-due-plan-changes": {"task": "billing.tasks.apply_due_plan_changes", "schedule": 10 * 60},
        "billing-reconcile-plan-changes": {"task": "billing.tasks.reconcile_stale_plan_changes", "schedule": 5 * 60},
        "billing-renew-license-terms": {"task": "billing.tasks.renew_due_license_terms", "schedule": 60 * 60},
        "billing-sync-term-schedules": {"task": "billing.tasks.sync_missing_term_schedules", "schedule": 10 * 60},
        "billing-retry-webhook-events": {"task": "billing.tasks.retry_webhook_events", "schedule": 60},
    }
)
# usage: next months' event partitions exist before events need them (PostgreSQL; a no-op elsewhere).
CELERY_BEAT_SCHEDULE["usage-ensure-event-partitions"] = {
    "task": "usage.tasks.ensure_event_partitions",
    "schedule": 24 * 60 * 60,
}
# upgrades.rules: dirty accounts evaluated within a minute of ingest; time-based conditions daily.
CELERY_BEAT_SCHEDULE["rules-sweep-dirty"] = {"task": "upgrades.rules.tasks.sweep_dirty_accounts", "schedule": 30}
CELERY_BEAT_SCHEDULE["rules-daily-sweep"] = {"task": "upgrades.rules.tasks.daily_sweep", "schedule": 24 * 60 * 60}
# upgrades.console: open signals and talk-to-a-person requests become CSM tasks.
CELERY_BEAT_SCHEDULE["console-sweep-tasks"] = {"task": "upgrades.console.tasks.sweep_console_tasks", "schedule": 5 * 60}
# upgrades.offers: offers past their expiry close (accepted ones with a payment in flight never do).
CELERY_BEAT_SCHEDULE["offers-expire"] = {"task": "upgrades.offers.tasks_lifecycle.expire_offers", "schedule": 10 * 60}
# upgrades.offers: open signals of the kinds the live offer settings allow become offers (batches per tenant).
CELERY_BEAT_SCHEDULE["offers-sweep-signals"] = {"task": "upgrades.offers.tasks.sweep_offer_signals", "schedule": 60}
# messaging: emails held for quiet hours go out at the window's edge (and lost queued ones again).
CELERY_BEAT_SCHEDULE["messaging-release-due"] = {"task": "messaging.tasks.release_due_messages", "schedule": 60}
# django-anymail's provider webhooks (bounces, complaints) check this shared secret ("user:password").
ANYMAIL = {"WEBHOOK_SECRET": env.str("ANYMAIL_WEBHOOK_SECRET", default="")}
# upgrades.offers: trials end on their own (sunset) and their early wins are tallied (due-time checks).
CELERY_BEAT_SCHEDULE["offers-end-due-trials"] = {
    "task": "upgrades.offers.tasks_trials.end_due_trials",
    "schedule": 5 * 60,
}
CELERY_BEAT_SCHEDULE["offers-record-trial-wins"] = {
    "task": "upgrades.offers.tasks_trials.record_trial_wins",
    "schedule": 60 * 60,
}
# upgrades.offers: lifecycle messages (offer, trial, renewal, decline follow-up) as due-time checks.
CELERY_BEAT_SCHEDULE["offers-send-lifecycle-messages"] = {
    "task": "upgrades.offers.tasks_messages.send_lifecycle_messages",
    "schedule": 15 * 60,
}
# usage: cache invalidations that failed after commit (Redis down) are retried until they land.
CELERY_BEAT_SCHEDULE["usage-retry-cache-invalidations"] = {
    "task": "usage.tasks.retry_cache_invalidations",
    "schedule": 30,
}

# --- Stripe --------------------------------------------------------------------------
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="")
# Where the portal loads Stripe.js; empty: Stripe's own, or the stand-in's (STRIPE_API_BASE/js.stripe.com/v3/).
STRIPE_JS_URL = env.str("STRIPE_JS_URL", default="")
# Fernet keys (comma separated, newest first) for tenant secrets at rest; see README.
TIERWISE_ENCRYPTION_KEYS = env.list("TIERWISE_ENCRYPTION_KEYS", default=[])

# --- API -----------------------------------------------------------------------------
API_THROTTLE_RATE = env.str("API_THROTTLE_RATE", default="20000/min")
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.api_auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.api_auth.HasApiScope"],
    "DEFAULT_THROTTLE_CLASSES": ["accounts.api_auth.ApiKeyRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api_key": API_THROTTLE_RATE},
    "DEFAULT_PAGINATION_CLASS": "accounts.api_auth.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["accounts.api_auth.JSONParser"],
    "EXCEPTION_HANDLER": "accounts.api_errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Tierwise API",
    "DESCRIPTION": "Usage events, entitlement checks, customer accounts, the published pricing table, the signals "
    "trigger rules fired, and offers (accept, decline).",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Two components have a `state` from different choices (an offer's, a plan change's): name each.
    "ENUM_NAME_OVERRIDES": {"PlanChangeStateEnum": "billing.models.PlanChangeState"},
    # Links from each create to what it created (schemathesis' stateful phase follows them).
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "accounts.api_base.add_openapi_links"],
}

# --- Logging: one JSON object per line ----------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "config.logging.JsonFormatter"}},
    "filters": {"client_errors_on_one_line": {"()": "config.logging.ClientErrorsOnOneLine"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["client_errors_on_one_line"]}
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # The stripe library logs every request at INFO; our client logs what matters.
    "loggers": {"django.db.backends": {"level": "WARNING"}, "stripe": {"level": "WARNING"}},
}
# upgrades.analytics: the dashboard's cached snapshot per tenant (the page reads only the cache).
CELERY_BEAT_SCHEDULE["analytics-refresh-dashboards"] = {
    "task": "upgrades.analytics.tasks.refresh_dashboards",
    "schedule": 10 * 60,
}
