"""The suite never reads local state: a developer's `.env` (which `make run` writes) or their
exported settings change nothing the tests see.

Each test copies the code into a temporary checkout that has a hostile `.env`, so the file
sits exactly where the settings would look for it, and asks a real process for its settings.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from integrations.tests.procs import child_env, clean_env

HOSTILE_ENV = (
    "SECRET_KEY=from-the-developers-dotenv-0123456789abcdef0123456789\n"
    "PILOT_EXECUTOR_COMMAND=echo from-the-developers-dotenv\n"
    "REDIS_URL=redis://127.0.0.1:6379/9\n"
    "SECURE_HSTS_SECONDS=0\n"
)
SHOW_SETTINGS = (
    "import json, django; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({'executor': s.PILOT_EXECUTOR_COMMAND, 'secret': s.SECRET_KEY, "
    "'redis': s.REDIS_URL, 'database': str(s.DATABASES['default']['NAME']), "
    "'api': s.ASANA_API_BASE_URL}))"
)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of the code with the `.env` a developer's `make run` would leave behind."""
    root = tmp_path / "checkout"
    root.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "tests")
    for package in ("pilotsite", "integrations", "goals", "templates"):
        shutil.copytree(Path(settings.BASE_DIR) / package, root / package, ignore=ignore)
    # The suite's helpers live in tests packages; the settings module needs none of them.
    (root / ".env").write_text(HOSTILE_ENV)
    return root


def settings_seen(checkout: Path, env: dict[str, str]) -> dict[str, str]:
    result = subprocess.run(
        [sys.executable, "-c", SHOW_SETTINGS],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_dotenv_is_read_by_the_site_outside_the_suite(checkout):
    # The control: the same checkout run as the site runs reads the file, so the tests
    # below would see it too if the suite did nothing about it.
    env = clean_env(DJANGO_SETTINGS_MODULE="pilotsite.settings")
    del env["PILOT_ENV_FILE"]
    seen = settings_seen(checkout, env)
    assert seen["executor"] == "echo from-the-developers-dotenv"
    assert seen["redis"] == "redis://127.0.0.1:6379/9"


def test_processes_the_suite_starts_ignore_the_dotenv(checkout):
    seen = settings_seen(checkout, child_env("http://127.0.0.1:9/api/1.0"))
    assert seen["executor"] == ""
    assert seen["redis"] == ""
    assert seen["secret"] == settings.SECRET_KEY
    assert seen["api"] == "http://127.0.0.1:9/api/1.0"


def test_the_test_process_ignores_the_dotenv_and_exported_settings(checkout, tmp_path):
    # `pytest` started from a developer's shell: a `.env` in the checkout, settings exported,
    # and a DATABASE_URL, which the suite does honour (CI picks PostgreSQL with it).
    database = tmp_path / "chosen.sqlite3"
    shell = clean_env(
        DJANGO_SETTINGS_MODULE="pilotsite.test_settings",
        PILOT_EXECUTOR_COMMAND="echo exported-in-the-shell",
        REDIS_URL="redis://127.0.0.1:6379/8",
        ASANA_API_BASE_URL="https://app.asana.com/api/1.0",
        DATABASE_URL=f"sqlite:///{database}",
    )
    del shell["PILOT_ENV_FILE"]
    seen = settings_seen(checkout, shell)
    assert seen["executor"] == ""
    assert seen["redis"] == ""
    assert seen["secret"] == "test-secret-key-not-for-production-0123456789abcdef"
    assert seen["database"] == str(database)
