"""Settings come from the environment only (a `.env` file is read when present)."""

import os
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# The checkout's `.env` (written by `make run`) fills in what the environment leaves unset.
# PILOT_ENV_FILE names another file; set empty, no file is read: the test suite's processes
# run that way, so a developer's `.env` never changes what the tests see.
ENV_FILE = os.environ.get("PILOT_ENV_FILE", str(BASE_DIR / ".env"))
if ENV_FILE:
    environ.Env.read_env(ENV_FILE, overwrite=False)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_bool(name: str, default: bool) -> bool:
    """Booleans are parsed strictly: a typo must not silently turn a safety setting off."""
    raw = env.str(name, default=str(default)).strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"{name} must be one of on/off, true/false, yes/no, 1/0; got {raw!r}."
    )


DEBUG = env_bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is required when DEBUG is off: run `make run` once (it writes a random "
            "key into .env), or set SECRET_KEY in the environment."
        )
    SECRET_KEY = "insecure-development-key-do-not-use-in-production"  # noqa: S105
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "pilotsite.apps.PilotAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_q",
    "axes",
    "pilotsite.apps.PilotsiteConfig",
    "integrations",
    "goals",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires: it answers a locked-out sign-in.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "pilotsite.urls"
WSGI_APPLICATION = "pilotsite.wsgi.application"

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

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Pollers, the q cluster and the web server write concurrently: wait for the lock
    # instead of failing, and use WAL so readers never block the writer.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )

# Keep connections between requests (the webhook view answers in milliseconds; opening a
# connection each time was a quarter of that); health checks drop dead ones.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
FORMS_URLFIELD_ASSUME_HTTPS = True

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True
# Dates as the tabs show them ("2026-11-30 10:51:49"), on the admin's own pages too.
FORMAT_MODULE_PATH = ["pilotsite.formats"]

STATIC_URL = "static/"
STATIC_ROOT: Path | None = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

LOGIN_URL = "admin:login"
# Sign-in throttling (django-axes): after AXES_FAILURE_LIMIT wrong passwords for one username
# from one address, that pair is locked out for AXES_COOLOFF_MINUTES. By the pair, so a
# stranger cannot lock the admin out from elsewhere; behind a proxy every sign-in shares
# the proxy's address, which makes it a lock per username. `manage.py axes_reset` unlocks.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "admin/locked_out.html"
# Error reports (the DEBUG page included) hide tokens and secrets: see pilotsite/debug.py.
DEFAULT_EXCEPTION_REPORTER_FILTER = "pilotsite.debug.PilotExceptionReporterFilter"

# Production hardening. Behind a TLS-terminating proxy set SECURE_PROXY_SSL_HEADER via
# `SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO`.
_proxy_header = env.str("SECURE_PROXY_SSL_HEADER", default="")
if _proxy_header:
    SECURE_PROXY_SSL_HEADER = (_proxy_header, "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# The webhook target is reached by Asana over plain loopback in tests and local runs.
SECURE_REDIRECT_EXEMPT = [r"^webhooks/"]

# Application settings.
ASANA_API_BASE_URL = env.str("ASANA_API_BASE_URL", default="https://app.asana.com/api/1.0").rstrip(
    "/"
)
ASANA_REQUESTS_PER_MINUTE = env.int("ASANA_REQUESTS_PER_MINUTE", default=150)
ASANA_TIMEOUT = env.float("ASANA_TIMEOUT", default=30.0)
ASANA_MAX_RETRIES = env.int("ASANA_MAX_RETRIES", default=5)
# A person waits on these: the admin's page views and buttons, `asana connect`. One try, no
# retries, and no waiting for a spent request budget beyond this.
ASANA_INTERACTIVE_TIMEOUT = env.float("ASANA_INTERACTIVE_TIMEOUT", default=5.0)
# Where the shared request budget lives without Redis on SQLite (default: next to the database).
ASANA_BUDGET_PATH = env.str("ASANA_BUDGET_PATH", default="")
# A list longer than this many pages (of 100) is refused as a runaway cursor.
ASANA_MAX_PAGES = env.int("ASANA_MAX_PAGES", default=1000)
# What a page view remembers of the workspace's users (and of a failure to read them).
ASANA_USERS_CACHE_SECONDS = env.int("ASANA_USERS_CACHE_SECONDS", default=300)
ASANA_USERS_FAILURE_CACHE_SECONDS = env.int("ASANA_USERS_FAILURE_CACHE_SECONDS", default=60)
FIELD_ENCRYPTION_KEY = env.str("FIELD_ENCRYPTION_KEY", default="")
PILOT_EXECUTOR_COMMAND = env.str("PILOT_EXECUTOR_COMMAND", default="")
PILOT_EXECUTOR = env.str("PILOT_EXECUTOR", default="")
PILOT_EXECUTOR_TIMEOUT = env.int("PILOT_EXECUTOR_TIMEOUT", default=3600)
# Named executors (name -> command or callable, timeout) as JSON, inline or in a file; the
# default executor `default` comes from the two settings above. Parsed and checked in
# integrations/pipeline/executors.py, so a mistake is a `manage.py check` error, not a crash.
PILOT_EXECUTORS = env.str("PILOT_EXECUTORS", default="")
PILOT_EXECUTORS_FILE = env.str("PILOT_EXECUTORS_FILE", default="")
# The executor is untrusted (it may run text written by anyone who can tag a task): each run
# gets a private scratch directory under this base (never the checkout), removed afterwards
# unless kept for debugging.
PILOT_EXECUTOR_WORKDIR_BASE = env.str("PILOT_EXECUTOR_WORKDIR_BASE", default="")
PILOT_EXECUTOR_KEEP_WORKDIR = env_bool("PILOT_EXECUTOR_KEEP_WORKDIR", default=False)
# Run commands as this OS user (pilotsite must run as root), and/or through this wrapper
# (a sandbox such as bwrap; `{workdir}` is replaced by the run's directory).
PILOT_EXECUTOR_USER = env.str("PILOT_EXECUTOR_USER", default="")
PILOT_EXECUTOR_WRAPPER = env.str("PILOT_EXECUTOR_WRAPPER", default="")
# Names of further variables of pilotsite's environment the command receives (its own
# API key, say); pilotsite's own secrets are never passed, whatever this says.
PILOT_EXECUTOR_ENV = env.list("PILOT_EXECUTOR_ENV", default=[])
# A running execution renews its lease; one not renewed for this long is considered dead
# (process killed) and is reported as interrupted.
PILOT_RUN_LEASE_SECONDS = env.int("PILOT_RUN_LEASE_SECONDS", default=120)
# How long a claimed task may wait in the django-q2 queue before it is released.
PILOT_CLAIM_LEASE_SECONDS = env.int("PILOT_CLAIM_LEASE_SECONDS", default=1800)
# A reporting step that still fails after the client's own retries is tried again after
# this many seconds times the attempt number (3 attempts).
PILOT_REPORT_RETRY_SECONDS = env.float("PILOT_REPORT_RETRY_SECONDS", default=1.0)
# Watch methods (integrations/pipeline/watch.py): a full pass over the tag list this often
# behind search (eventually consistent) and behind a healthy webhook; a webhook Asana has not
# reached for this long is quiet (Asana sends a heartbeat every 8 hours), and polling returns
# to its normal interval.
PILOT_RECONCILE_SECONDS = env.int("PILOT_RECONCILE_SECONDS", default=3600)
PILOT_WEBHOOK_QUIET_SECONDS = env.int("PILOT_WEBHOOK_QUIET_SECONDS", default=9 * 3600)
# A run's progress lines reach Asana as one comment, edited at most once per this many seconds.
PILOT_PROGRESS_SECONDS = env.float("PILOT_PROGRESS_SECONDS", default=30.0)
# How often a running execution looks for a stop request (and shows new progress lines).
PILOT_STOP_CHECK_SECONDS = env.float("PILOT_STOP_CHECK_SECONDS", default=0.5)
# Asking for input (integrations/pipeline/needs_input.py): questions one task may ask
# before its run fails; a task waiting for a reply gets one reminder after this many hours
# of waiting, and is released after this many hours of waiting in all.
PILOT_INPUT_MAX_ROUNDS = env.int("PILOT_INPUT_MAX_ROUNDS", default=5)
PILOT_INPUT_REMIND_HOURS = env.float("PILOT_INPUT_REMIND_HOURS", default=24.0)
PILOT_INPUT_RELEASE_HOURS = env.float("PILOT_INPUT_RELEASE_HOURS", default=72.0)
# The site's public base URL (https://pilot.example.com): the "started" comment links to the run page.
PILOTSITE_PUBLIC_URL = env.str("PILOTSITE_PUBLIC_URL", default="")
GOALS_SYNC_WORKERS = env.int("GOALS_SYNC_WORKERS", default=8)
# Progress snapshots older than this are pruned after each sync (each goal's latest stays).
GOALS_HISTORY_RETENTION_DAYS = env.int("GOALS_HISTORY_RETENTION_DAYS", default=730)
# An open goal whose progress has not moved for this many days is flagged "stalled".
GOALS_STALLED_DAYS = env.int("GOALS_STALLED_DAYS", default=14)
# Status drafts (off unless all three are set): an OpenAI-compatible endpoint, its key and the
# model. The key lives only here (the environment or .env): never stored, logged or shown.
LLM_API_BASE = env.str("LLM_API_BASE", default="")
LLM_API_KEY = env.str("LLM_API_KEY", default="")
LLM_MODEL = env.str("LLM_MODEL", default="")
LLM_TIMEOUT = env.float("LLM_TIMEOUT", default=60.0)
LLM_MAX_RETRIES = env.int("LLM_MAX_RETRIES", default=3)
# Refused webhook requests (bad signature, unknown id) are audited at most once per window
# per registration and kind, so junk traffic cannot grow the append-only audit log.
WEBHOOK_REFUSAL_AUDIT_SECONDS = env.int("WEBHOOK_REFUSAL_AUDIT_SECONDS", default=60)
# A CSV import writes this many rows per transaction, so SQLite's write lock is never held
# for longer than one batch (see the README's "busy timeout" note); the admin keeps an
# uploaded file for its preview in the session, up to this size.
EMPLOYEE_IMPORT_BATCH_ROWS = env.int("EMPLOYEE_IMPORT_BATCH_ROWS", default=1000)
EMPLOYEE_IMPORT_MAX_BYTES = env.int("EMPLOYEE_IMPORT_MAX_BYTES", default=4_000_000)
REDIS_URL = env.str("REDIS_URL", default="")
# Long-running processes (web server, q cluster workers, runpollers) record that they are
# alive this often; one silent for three beats counts as stopped.
PILOT_HEARTBEAT_SECONDS = env.float("PILOT_HEARTBEAT_SECONDS", default=15.0)

Q_CLUSTER = {
    # Clusters with the same name share one queue (in Redis: keys under django_q:NAME); a
    # second deployment on the same Redis takes another name.
    "name": env.str("Q_CLUSTER_NAME", default="pilotsite"),
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": PILOT_EXECUTOR_TIMEOUT + 60,
    "retry": PILOT_EXECUTOR_TIMEOUT + 120,
    "max_attempts": 1,
    "catch_up": False,
    "save_limit": 500,
    "label": "Django Q2",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact": {"()": "pilotsite.redact.RedactingFilter"},
        # Asana's text in a log line cannot forge further lines or send escape codes.
        "printable": {"()": "pilotsite.untrusted.PrintableFilter"},
        # A refused request (403, 400, 404) is one line; its traceback says nothing new.
        "refused": {"()": "pilotsite.debug.RefusedRequestFilter"},
    },
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["refused", "redact", "printable"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        # A banner at every start and a line per sign-in; failures and lockouts are warnings.
        "axes": {"level": "WARNING"},
    },
}
