"""Settings for the test suite: the real settings, read from an environment the suite decides.

Nothing comes from a `.env` (PILOT_ENV_FILE is empty for the suite and every process it
starts). The test process itself takes only DATABASE_URL from the outer environment (CI runs
the suite on SQLite and on PostgreSQL); a developer's exported PILOT_EXECUTOR_COMMAND or
REDIS_URL changes nothing. Processes the suite starts (`manage.py qcluster`, `runpollers`…)
get a complete, explicit environment from `integrations.tests.procs.child_env`, marked with
PILOT_TEST_CHILD, and take it as given.
"""

import os
from pathlib import Path

import environ

os.environ["PILOT_ENV_FILE"] = ""
SUITE_DEFAULTS = {
    "SECRET_KEY": "test-secret-key-not-for-production-0123456789abcdef",
    "DEBUG": "off",
    "SECURE_SSL_REDIRECT": "off",
    # The per-token budget is process-wide and the fake's seeded token repeats across tests;
    # tests that exercise the budget build their own.
    "ASANA_REQUESTS_PER_MINUTE": "1000000",
    # The shared request budget of this test process (on SQLite): one per xdist worker, as
    # the pid differs; the processes a test starts are given the same file
    # (procs.child_env); removed at the end of the session.
    "ASANA_BUDGET_PATH": str(
        Path(__file__).resolve().parent.parent / f".test_db_{os.getpid()}.asana-budget"
    ),
}
# Variables the test process takes from outside.
PASSED_THROUGH = ("DATABASE_URL",)

if os.environ.get("PILOT_TEST_CHILD") == "1":
    for name, value in SUITE_DEFAULTS.items():
        os.environ.setdefault(name, value)
else:
    environ.Env.ENVIRON = {
        **SUITE_DEFAULTS,
        **{name: os.environ[name] for name in PASSED_THROUGH if name in os.environ},
    }

from pilotsite.settings import *  # noqa: E402, F403

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file, not memory, so tests can start real pollers and q clusters as subprocesses;
    # one per process, so parallel test runs never share it.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / f".test_db_{os.getpid()}.sqlite3")}  # noqa: F405

# With DEBUG off the manifest storage needs `collectstatic` first; tests render pages without.
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Signing in is in many tests; the production hasher is deliberately slow.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Nothing is collected for tests; whitenoise would warn about the missing directory.
STATIC_ROOT = None
