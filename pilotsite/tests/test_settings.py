import secrets
import subprocess
import sys

from django.conf import settings

from integrations.tests.procs import clean_env

MANAGE = str(settings.BASE_DIR / "manage.py")


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    """`manage.py ARGS` with the production settings and exactly `env` (never a `.env`)."""
    return subprocess.run(
        [sys.executable, MANAGE, *args],
        env=clean_env(**env),
        cwd="/",
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_deploy_checks_without_warnings(tmp_path):
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="pilot.example.com",
        SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO",
        DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_deploy_check_warns_when_asana_is_reached_without_tls(tmp_path):
    result = run_manage(
        "check",
        "--deploy",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="pilot.example.com",
        SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO",
        DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3",
        ASANA_API_BASE_URL="http://asana-proxy.internal/api/1.0",
    )
    assert "pilotsite.W010" in result.stderr
    assert "ASANA_API_BASE_URL is not https" in result.stderr


def test_missing_secret_key_with_debug_off_says_what_to_do(tmp_path):
    result = run_manage("check", DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3")
    assert result.returncode != 0
    assert "SECRET_KEY is required when DEBUG is off" in result.stderr
    assert "make run" in result.stderr


def test_malformed_boolean_setting_is_refused(tmp_path):
    result = run_manage(
        "check",
        DEBUG="perhaps",
        SECRET_KEY="x" * 50,
        DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3",
    )
    assert result.returncode != 0


def test_executor_setting_without_callable_fails_the_system_check(tmp_path):
    result = run_manage(
        "check",
        SECRET_KEY=secrets.token_urlsafe(50),
        PILOT_EXECUTOR="just_a_module",
        DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3",
    )
    assert result.returncode != 0
    assert "pilotsite.E004" in result.stderr
