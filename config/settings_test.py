"""Test settings: production settings with the parts tests can't have turned off."""

import os

os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production-0123456789abcdef0123456789")
os.environ.setdefault("TIERWISE_ENCRYPTION_KEYS", "zT6lBfWc1bJ0y0y3b7L0s4m6a4S8pQ2qA9kV1xW3hYc=")

from config.settings import *  # noqa: E402,F403
from config.settings import DATABASES, REDIS_URL  # noqa: E402

DATABASES["default"]["CONN_MAX_AGE"] = 0  # live-server threads must not hold the test DB open
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file, not Django's shared in-memory database: with memory, the live server's thread shares the test's
    # one connection, and a request still arriving (a stand-in webhook, a browser's fetch) as a test ends runs
    # on it during the flush ("pop from empty list", "database table is locked"). A file gives each thread
    # its own connection, as on PostgreSQL. One per process, removed by Django after the run.
    import tempfile

    DATABASES["default"]["TEST"] = {"NAME": os.path.join(tempfile.gettempdir(), f"tierwise-test-{os.getpid()}.sqlite3")}
SECURE_SSL_REDIRECT = False
# The suite connects as the postgres superuser (RLS tests make their own unprivileged role).
TIERWISE_ALLOW_PRIVILEGED_DB_ROLE = True
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
SECURE_HSTS_SECONDS = 0
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Integration tests start a real worker with CELERY_TASK_ALWAYS_EAGER=0 and switch the app off eager.
CELERY_TASK_ALWAYS_EAGER = os.environ.get("CELERY_TASK_ALWAYS_EAGER", "1") == "1"
if not REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
else:
    # One key prefix per test run, inherited by the workers the run starts (they get this environment). A fresh
    # test database hands out the same tenant ids again, and an earlier run's cached entitlement answers
    # (keyed by tenant id and external id; a rolled-back test never invalidates what it cached) must not be
    # read as this run's. Nobody's Redis database is flushed.
    CACHES["default"]["KEY_PREFIX"] = os.environ.setdefault("TIERWISE_TEST_CACHE_PREFIX", f"test-{os.getpid()}")
LOGGING_CONFIG = None
