"""Running `manage.py` commands as real processes against the test database and a fake
Asana served by the test process."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

MANAGE = str(Path(settings.BASE_DIR) / "manage.py")


def database_url() -> str:
    """The test database (pytest-django's), as a DATABASE_URL for a child process."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


# What a child takes from the test process's environment: how to find programs and a home.
# Nothing else leaks in (a developer's REDIS_URL, PILOT_EXECUTOR_COMMAND, DATABASE_URL…).
INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")


def clean_env(**extra: str) -> dict[str, str]:
    """The whole environment of a process the suite starts: the basics from `INHERITED`, no
    `.env` (PILOT_ENV_FILE empty), and `extra`. Shape: {name: value}."""
    env = {name: os.environ[name] for name in INHERITED if name in os.environ}
    env["PILOT_ENV_FILE"] = ""
    env.update(extra)
    return env


def child_env(base_url: str, **extra: str) -> dict[str, str]:
    """A suite child's environment: the test database, the fake Asana at `base_url`, the
    suite's settings module and keys, and `extra` on top."""
    return clean_env(
        **{
            "DJANGO_SETTINGS_MODULE": "pilotsite.test_settings",
            "PILOT_TEST_CHILD": "1",
            "DATABASE_URL": database_url(),
            "ASANA_API_BASE_URL": base_url,
            "ASANA_REQUESTS_PER_MINUTE": "1000000",
            "ASANA_BUDGET_PATH": settings.ASANA_BUDGET_PATH,
            "SECRET_KEY": settings.SECRET_KEY,
            "FIELD_ENCRYPTION_KEY": settings.FIELD_ENCRYPTION_KEY,
            "DEBUG": "off",
            "LOG_LEVEL": "INFO",
            "PILOT_EXECUTOR": "",
            "PYTHONUNBUFFERED": "1",
            **extra,
        }
    )


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("ab") as out:
        # A session of its own, so `stop` can also reap what the child started (the q
        # cluster's workers), leaving no process connected to the test database.
        return subprocess.Popen(
            [sys.executable, MANAGE, *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def run(args: list[str], env: dict[str, str], log: Path, timeout: float = 120) -> int:
    proc = start(args, env, log)
    try:
        return proc.wait(timeout=timeout)
    finally:
        stop(proc)


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 60) -> int | None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    return proc.returncode


def wait_for(check: Callable[[], Any], timeout: float = 60, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
