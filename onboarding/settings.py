"""Settings, read from the environment.

Two profiles: ``development`` (the default: embedded SQLite, a filesystem Celery broker and generated secrets under
``var/``) and ``production`` (``ONBOARDING_PROFILE=production``: every secret and host must be given, DEBUG off,
secure cookies and HSTS). Bad values fail loudly with ``ImproperlyConfigured`` naming the variable: the parsers of
one value (a strict boolean, number, rate, secret or ``NAME_FILE``, list, network, PEM file) are in
``onboarding/envparse.py``; this module says what each setting means, top to bottom.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import urlparse

import environ
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from .envparse import (
    csv_list,
    fernet_keys,
    generated,
    networks,
    pem_file,
    secret,
    strict_bool,
    strict_int,
    strict_rate,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("ONBOARDING_VAR_DIR", BASE_DIR / "var"))

env = environ.Env()

PROFILE = os.environ.get("ONBOARDING_PROFILE", "development")
if PROFILE not in {"development", "production"}:
    raise ImproperlyConfigured(f"ONBOARDING_PROFILE must be 'development' or 'production', not {PROFILE!r}")
PRODUCTION = PROFILE == "production"


DEBUG = strict_bool("DEBUG", default=not PRODUCTION)

SECRET_KEY = secret("SECRET_KEY")
if not SECRET_KEY:
    if PRODUCTION:
        raise ImproperlyConfigured("SECRET_KEY (or SECRET_KEY_FILE) is required in production")
    SECRET_KEY = generated(VAR_DIR, "secret_key", lambda: secrets.token_urlsafe(50))

_field_keys = secret("FIELD_ENCRYPTION_KEYS")
if not _field_keys:
    if PRODUCTION:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS (or FIELD_ENCRYPTION_KEYS_FILE) is required in production"
        )
    _field_keys = generated(VAR_DIR, "field_encryption_key", lambda: Fernet.generate_key().decode())
FIELD_ENCRYPTION_KEYS = fernet_keys("FIELD_ENCRYPTION_KEYS", _field_keys)

ALLOWED_HOSTS = csv_list(os.environ.get("ALLOWED_HOSTS", ""))
if not ALLOWED_HOSTS:
    if PRODUCTION:
        raise ImproperlyConfigured("ALLOWED_HOSTS is required in production (comma-separated host names)")
    ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]", "testserver"]
CSRF_TRUSTED_ORIGINS = csv_list(os.environ.get("CSRF_TRUSTED_ORIGINS", ""))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "crispy_forms",
    "crispy_bootstrap5",
    "django_htmx",
    "onboarding",
]

MIDDLEWARE = [
    "onboarding.health.HealthCheckMiddleware",  # first: answers /healthz for the container's own check
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "onboarding.inputs.BadInputMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "onboarding.middleware.ContentSecurityPolicyMiddleware",
]

# Behind a reverse proxy (Caddy in docker-compose.yml) every request comes from the proxy: REMOTE_ADDR is taken
# from the X-Forwarded-For hop the proxy appended (django-xff), so that sign-in throttling counts per client, not
# one counter for everybody. TRUSTED_PROXY_HOPS is how many proxies append to the header (0: no proxy, the header
# is ignored). A request that did not come through them (no header) is refused with 400; /healthz is answered
# before (onboarding.health).
TRUSTED_PROXY_HOPS = strict_int("TRUSTED_PROXY_HOPS", 0)
if TRUSTED_PROXY_HOPS:
    MIDDLEWARE.insert(1, "xff.middleware.XForwardedForMiddleware")
    XFF_TRUSTED_PROXY_DEPTH = TRUSTED_PROXY_HOPS
    XFF_ALWAYS_PROXY = True

ROOT_URLCONF = "onboarding.urls"
WSGI_APPLICATION = "onboarding.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "builtins": ["onboarding.templatetags.onboarding_tags"],
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "onboarding.context_processors.product",
            ],
        },
    },
]

_default_db = f"sqlite:///{VAR_DIR / 'onboarding.sqlite3'}"
_db_scheme = urlparse(os.environ.get("DATABASE_URL") or _default_db).scheme
if _db_scheme not in {"sqlite", "postgres", "postgresql", "pgsql"}:
    raise ImproperlyConfigured(
        f"DATABASE_URL must be a sqlite:// or postgres:// URL, not one starting with {_db_scheme or '(nothing)'}://"
    )
try:
    DATABASES = {"default": env.db_url("DATABASE_URL", default=_default_db)}
except (ImproperlyConfigured, KeyError, ValueError) as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a database URL this product supports: {exc}") from None
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    # Several processes (web, worker) share the file in the demo: wait for locks instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            # WAL: the web server reads while the worker writes; NORMAL sync is safe with WAL (no corruption,
            # at worst the last commits are lost on power failure: fine for the embedded development default).
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    # A file, not memory, so that a worker process started by the tests sees the same test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
# PostgreSQL: keep each process's connection for a minute (checked before reuse) rather than opening one per
# request: a new connection forks a server process, a cost every progress poll paid (benchmark load).
_persistent = DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3"
DATABASES["default"]["CONN_MAX_AGE"] = strict_int("CONN_MAX_AGE", 60 if _persistent else 0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "onboarding.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = ["onboarding.auth.EmailBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
PASSWORD_HASHERS = (
    ["django.contrib.auth.hashers.MD5PasswordHasher"]
    if os.environ.get("ONBOARDING_FAST_HASHER") == "1" and not PRODUCTION
    else ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
)
# Login throttling: this many failures per account and per client address within the window lock it out.
LOGIN_FAILURE_LIMIT = strict_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
LOGIN_FAILURE_WINDOW = strict_int("LOGIN_FAILURE_WINDOW", 900, minimum=1)
# Rate limits (onboarding.ratelimits, django-ratelimit): per address and per client address.
RATELIMIT_PASSWORD_RESET_ADDRESS = strict_rate("RATELIMIT_PASSWORD_RESET_ADDRESS", "3/h")
RATELIMIT_PASSWORD_RESET_CLIENT = strict_rate("RATELIMIT_PASSWORD_RESET_CLIENT", "20/h")
RATELIMIT_SIGNUP_ADDRESS = strict_rate("RATELIMIT_SIGNUP_ADDRESS", "3/h")
RATELIMIT_SIGNUP_CLIENT = strict_rate("RATELIMIT_SIGNUP_CLIENT", "10/h")
RATELIMIT_INVITE_ADDRESS = strict_rate("RATELIMIT_INVITE_ADDRESS", "5/h")
RATELIMIT_INVITE_CLIENT = strict_rate("RATELIMIT_INVITE_CLIENT", "50/h")

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
WHITENOISE_USE_FINDERS = not PRODUCTION  # development and tests serve static/ without collectstatic
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

REDIS_URL = os.environ.get("REDIS_URL") or None
if REDIS_URL and urlparse(REDIS_URL).scheme not in {"redis", "rediss", "unix"}:
    raise ImproperlyConfigured(f"REDIS_URL must start with redis://, rediss:// or unix://, not {REDIS_URL!r}")

if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# Celery: Redis when REDIS_URL is set, else kombu's filesystem transport under var/ (works across processes,
# needs no server). Results are stored in our own tables, so no result backend.
CELERY_BROKER_URL = REDIS_URL or "filesystem://"
if not REDIS_URL:
    _queue_dir = VAR_DIR / "celery-queue"
    _queue_dir.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "control_folder": str(VAR_DIR / "celery-control"),  # kombu's default is ./control in the working dir
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ALWAYS_EAGER = strict_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# Monitoring: how often every connected tenant is re-verified, over how long the runs are spread, and how many
# scheduled runs may be in flight at once.
VERIFY_INTERVAL_HOURS = strict_int("VERIFY_INTERVAL_HOURS", 24, minimum=1)
VERIFY_MAX_CONCURRENT = strict_int("VERIFY_MAX_CONCURRENT", 20, minimum=1)
# The existing_billing step reads every chosen agreement's additions (one call each): the scheduled verify runs it
# at most this often; it also runs on request and after the customers or mappings change.
EXISTING_BILLING_INTERVAL_DAYS = strict_int("EXISTING_BILLING_INTERVAL_DAYS", 7, minimum=1)
STALE_AFTER_HOURS = strict_int("STALE_AFTER_HOURS", 48, minimum=1)
# The support dashboard's summary cards and funnel aggregate every tenant (about 25 ms of PostgreSQL at 10,000):
# computed at most once per this many seconds and shared through the cache; 0 counts on every request.
DASHBOARD_COUNTS_SECONDS = strict_int("DASHBOARD_COUNTS_SECONDS", 10, minimum=0)
CHECK_RUN_TIME_LIMIT = strict_int("CHECK_RUN_TIME_LIMIT", 600, minimum=10)
PLAN_APPLY_TIME_LIMIT = strict_int("PLAN_APPLY_TIME_LIMIT", 900, minimum=10)
# Finished runs older than this are pruned, except every status change and each tenant's latest (retention.py);
# 0 keeps everything.
RUN_RETENTION_DAYS = strict_int("RUN_RETENTION_DAYS", 90, minimum=0)

# ConnectWise: the product's own integration clientId (not the partner's), and the sandbox when enabled.
CONNECTWISE_CLIENT_ID = os.environ.get("CONNECTWISE_CLIENT_ID", "")
if not CONNECTWISE_CLIENT_ID:
    if PRODUCTION:
        raise ImproperlyConfigured("CONNECTWISE_CLIENT_ID is required in production")
    CONNECTWISE_CLIENT_ID = "00000000-0000-4000-8000-0000c0ffee00"
CONNECTWISE_SANDBOX_URL = os.environ.get("CONNECTWISE_SANDBOX_URL", "").rstrip("/") or None
if CONNECTWISE_SANDBOX_URL:
    _parsed = urlparse(CONNECTWISE_SANDBOX_URL)
    if _parsed.scheme not in {"http", "https"} or not _parsed.hostname:
        raise ImproperlyConfigured(
            f"CONNECTWISE_SANDBOX_URL must look like http://127.0.0.1:8765, not {CONNECTWISE_SANDBOX_URL!r}"
        )
    if PRODUCTION and not strict_bool("CONNECTWISE_SANDBOX_IN_PRODUCTION", False):
        raise ImproperlyConfigured("CONNECTWISE_SANDBOX_URL must not be set in production")
# On-premise ConnectWise servers on a private network (reached over a VPN, or the smoke test's local sandbox):
# networks that approved on-premise hosts may resolve into although they are not public. Empty by default: every
# private, loopback and link-local address stays refused (onboarding.netguard). Comma-separated CIDRs.
CONNECTWISE_ONPREM_NETWORKS = networks("CONNECTWISE_ONPREM_NETWORKS")
# Extra certificate authorities (a PEM file) trusted for on-premise hosts whose certificate a company CA issued;
# the public CAs stay trusted. Unset: the public CAs only.
CONNECTWISE_CA_FILE = pem_file("CONNECTWISE_CA_FILE")
CONNECTWISE_TIMEOUT_SECONDS = strict_int("CONNECTWISE_TIMEOUT_SECONDS", 30, minimum=1)
# 32: with the read hints a verify starts every read at once (companyinfo, system/info, each /count, the pages the
# last counts predict, the small tables): 29 independent calls at 5,000 companies and 10,000 agreements. With 16
# they took two round trips instead of one (benchmark verify). ConnectWise publishes no limit (REFERENCE §6): an
# assumption, bounded again across every worker by CONNECTWISE_MAX_PER_HOST and CONNECTWISE_MAX_PER_CLIENT_ID.
CONNECTWISE_MAX_IN_FLIGHT = strict_int("CONNECTWISE_MAX_IN_FLIGHT", 32, minimum=1)
# Across every worker process (onboarding/limits.py; in Redis when REDIS_URL is set, else per process): calls in
# flight per ConnectWise host and per clientId. ConnectWise publishes no limit (REFERENCE §6): an assumption.
CONNECTWISE_MAX_PER_HOST = strict_int("CONNECTWISE_MAX_PER_HOST", 32, minimum=1)
CONNECTWISE_MAX_PER_CLIENT_ID = strict_int("CONNECTWISE_MAX_PER_CLIENT_ID", 128, minimum=1)
CONNECTWISE_SLOT_WAIT_SECONDS = strict_int("CONNECTWISE_SLOT_WAIT_SECONDS", 60, minimum=1)

# E-mail: EMAIL_URL (smtp://user:pass@host:587/?tls=True) or the console in development.
if os.environ.get("EMAIL_URL"):
    try:
        vars().update(env.email_url("EMAIL_URL"))
    except (ImproperlyConfigured, KeyError, ValueError) as exc:
        raise ImproperlyConfigured(f"EMAIL_URL is not an e-mail URL: {exc}") from None
else:
    EMAIL_BACKEND = (
        "django.core.mail.backends.smtp.EmailBackend"
        if PRODUCTION
        else "django.core.mail.backends.console.EmailBackend"
    )
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Billing sync readiness <noreply@localhost>")
SUPPORT_EMAIL = os.environ.get("SUPPORT_EMAIL", "support@localhost")
# E-mail tasks retry with backoff up to MAIL_MAX_RETRIES times; undelivered drift alerts are tried again by the
# watchdog every MAIL_RETRY_AFTER seconds after that.
MAIL_MAX_RETRIES = strict_int("MAIL_MAX_RETRIES", 6, minimum=0)
MAIL_RETRY_AFTER = strict_int("MAIL_RETRY_AFTER", 1800, minimum=60)
# The public address of this product, for links in e-mails (e.g. https://readiness.example.com).
SITE_URL = os.environ.get("SITE_URL", "").rstrip("/") or ("" if PRODUCTION else "http://127.0.0.1:8000")

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = strict_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = strict_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}},
}

# The billing sync's API (/api/v1/, Django REST framework + drf-spectacular) and webhooks.
INSTALLED_APPS += ["rest_framework", "drf_spectacular", "drf_spectacular_sidecar"]
# Requests per minute per API token (DRF's throttle, counted in the cache: Redis in production).
API_RATE_LIMIT_PER_MINUTE = strict_int("API_RATE_LIMIT_PER_MINUTE", 120, minimum=1)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["onboarding.api.auth.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["onboarding.api.auth.TokenScope"],
    "DEFAULT_THROTTLE_CLASSES": ["onboarding.api.auth.PerTokenThrottle"],
    "DEFAULT_THROTTLE_RATES": {"token": f"{API_RATE_LIMIT_PER_MINUTE}/min"},
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "onboarding.api.problems.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Billing Sync Readiness API",
    "DESCRIPTION": (
        "Which partners are ready for the billing sync, each chosen customer's ConnectWise company and target "
        "agreement, and verifications on demand. Authenticate with `Authorization: Bearer <token>`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "ENUM_NAME_OVERRIDES": {"StepKeyEnum": "onboarding.api.serializers.STEP_KEY_CHOICES"},
}
# Webhook receivers must resolve to public addresses (the SSRF guard of onboarding/netguard.py), except these
# host[:port] entries: a billing sync inside the operator's own network (comma-separated; empty by default).
WEBHOOK_TRUSTED_HOSTS = [h.lower() for h in csv_list(os.environ.get("WEBHOOK_TRUSTED_HOSTS", ""))]
WEBHOOK_TIMEOUT_SECONDS = strict_int("WEBHOOK_TIMEOUT_SECONDS", 10, minimum=1)
# Failed deliveries are retried with exponential backoff (1 min, 2, 4, ... capped at 2 h) for this long; an
# endpoint with nothing but failures for as long is disabled and support is e-mailed.
WEBHOOK_RETRY_HOURS = strict_int("WEBHOOK_RETRY_HOURS", 24, minimum=1)
WEBHOOK_BACKOFF_SECONDS = strict_int("WEBHOOK_BACKOFF_SECONDS", 60, minimum=1)
