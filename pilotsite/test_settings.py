"""Settings for the test suite: the real settings, read from an environment that gets a
key and plain-HTTP defaults first (tests run without a .env; explicit values still win)."""

import os
from pathlib import Path

os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production-0123456789abcdef")
os.environ.setdefault("DEBUG", "off")
os.environ.setdefault("SECURE_SSL_REDIRECT", "off")
# The per-token budget is process-wide and the fake's seeded token repeats across tests;
# tests that exercise the budget build their own.
os.environ.setdefault("ASANA_REQUESTS_PER_MINUTE", "1000000")
# The shared request budget of this test run (on SQLite), also used by the subprocesses it
# starts (they inherit the environment); removed at the end of the session.
# One per xdist worker: workers inherit the controller's environment, and two workers sharing
# one budget would clear each other's pauses (every test starts by clearing it).
_budget_owner = os.environ.get("PYTEST_XDIST_WORKER", "")
if os.environ.get("PILOTSITE_TEST_BUDGET_OWNER", _budget_owner) != _budget_owner:
    os.environ.pop("ASANA_BUDGET_PATH", None)
os.environ["PILOTSITE_TEST_BUDGET_OWNER"] = _budget_owner
os.environ.setdefault(
    "ASANA_BUDGET_PATH",
    str(Path(__file__).resolve().parent.parent / f".test_db_{os.getpid()}.asana-budget"),
)

from pilotsite.settings import *  # noqa: E402, F403  (after the environment above)

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
