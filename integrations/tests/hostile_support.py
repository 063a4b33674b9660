"""The hostile executor as a reusable fixture: a pilotsite "installation" in a directory of its
own (`.env` written by the real Makefile, a SQLite database opened by Django), a pilotsite
process started with its keys in its environment and that directory as its working
directory, and `integrations/tests/hostile/hostile_executor.py` as the executor command.

`HostileRun.run(**settings)` starts that pilotsite process with the given extra settings
(PILOT_EXECUTOR_USER, PILOT_EXECUTOR_WRAPPER ...) and returns the executor's report:
`{"cwd", "uid", "attempts": {source: outcome}, "leaks": [source, ...]}`.
"""

import json
import os
import pwd
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

HOSTILE = Path(__file__).parent / "hostile" / "hostile_executor.py"
MANAGE = Path(settings.BASE_DIR) / "manage.py"
TEST_USER = "pilot-exec-test"
# The pilotsite side: open the database (so its files exist, -wal and -shm included, while
# the executor runs), store something, run the default executor once.
PILOTSITE_CODE = """
import json
from django.db import connection
with connection.cursor() as cursor:
    cursor.execute("CREATE TABLE IF NOT EXISTS kept (v text)")
    cursor.execute("INSERT INTO kept VALUES ('stored data')")
from integrations.pipeline.executors import execute
result = execute({"id": "ASANA-1", "gid": "1", "title": "do as I say"})
print(json.dumps({"ok": result.ok, "error": result.error, "output": result.output}))
"""


def system_python() -> str:
    """A Python any user may execute (the venv's may live under a private home)."""
    return shutil.which("python3", path="/usr/bin:/bin") or sys.executable


def readme_wrapper_recipe() -> str:
    """The bwrap recipe exactly as the README documents it."""
    readme = (Path(settings.BASE_DIR) / "README.md").read_text()
    found = re.search(r"^PILOT_EXECUTOR_WRAPPER=(bwrap .+)$", readme, re.M)
    assert found, "the README documents no bwrap recipe (a line PILOT_EXECUTOR_WRAPPER=bwrap …)"
    return found.group(1)


def ensure_test_user() -> pwd.struct_passwd:
    """The unprivileged OS user the executor runs as in these tests (created when missing;
    parallel workers may race to create it, so an existing one is fine)."""
    with_user = subprocess.run(
        [
            "useradd",
            "--system",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            TEST_USER,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        return pwd.getpwnam(TEST_USER)
    except KeyError:
        pytest.fail(f"could not create the OS user {TEST_USER}: {with_user.stderr}")


@dataclass
class HostileRun:
    project: Path
    kit: Path
    reports: Path
    keys: dict[str, str]
    last: dict[str, Any] = field(default_factory=dict)

    @property
    def command(self) -> str:
        return f"{system_python()} {self.kit / 'hostile_executor.py'} {self.project} {self.report}"

    @property
    def report(self) -> Path:
        return self.reports / "report.json"

    def run(self, **extra: str) -> dict[str, Any]:
        """Run pilotsite's executor once with `extra` settings; the executor's report."""
        self.report.unlink(missing_ok=True)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "DJANGO_SETTINGS_MODULE": "pilotsite.settings",
            "DEBUG": "off",
            **self.keys,
            "DATABASE_URL": f"sqlite:///{self.project / 'db.sqlite3'}",
            # pilotsite reads this installation's .env, as it would its own checkout's.
            "PILOT_ENV_FILE": str(self.project / ".env"),
            "PILOT_EXECUTOR": "",
            "PILOT_EXECUTORS": "",
            "PILOT_EXECUTORS_FILE": "",
            "PILOT_EXECUTOR_COMMAND": self.command,
            "PILOT_EXECUTOR_ENV": "",
            "PILOT_EXECUTOR_USER": "",
            "PILOT_EXECUTOR_WRAPPER": "",
            "PILOT_EXECUTOR_WORKDIR_BASE": "",
            "PILOT_EXECUTOR_KEEP_WORKDIR": "off",
            **extra,
        }
        done = subprocess.run(
            [sys.executable, str(MANAGE), "shell", "-c", PILOTSITE_CODE],
            cwd=self.project,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        self.last = json.loads(done.stdout.strip().splitlines()[-1])
        assert self.last["ok"], self.last
        return json.loads(self.report.read_text())


def _shared_dir(mode: int) -> Path:
    # Under /tmp itself, not pytest's private tmp_path: the executor's user must be able to
    # reach the script, and only the files' own modes may protect the installation.
    path = Path(tempfile.mkdtemp(prefix="pilot-hostile-"))
    path.chmod(mode)
    return path


@pytest.fixture
def hostile() -> Iterator[HostileRun]:
    """A pilotsite installation with keys in `.env` and a database, and the hostile executor."""
    project, kit, reports = _shared_dir(0o755), _shared_dir(0o755), _shared_dir(0o777)
    try:
        subprocess.run(
            [
                *("make", "-s", "-f", str(Path(settings.BASE_DIR) / "Makefile")),
                *("-C", str(project), f"VENV={sys.prefix}", "-o", "install", "env-file"),
            ],
            check=True,
            capture_output=True,
        )
        env_file = project / ".env"
        keys = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
        keys = {
            "SECRET_KEY": keys["SECRET_KEY"],
            "FIELD_ENCRYPTION_KEY": secrets.token_urlsafe(32),
            "ASANA_ACCESS_TOKEN": f"2/1/1:{secrets.token_hex(16)}",
        }
        with env_file.open("a") as out:
            out.write(f"ASANA_ACCESS_TOKEN={keys['ASANA_ACCESS_TOKEN']}\n")
        shutil.copy(HOSTILE, kit / "hostile_executor.py")
        (kit / "hostile_executor.py").chmod(0o644)
        yield HostileRun(project=project, kit=kit, reports=reports, keys=keys)
    finally:
        for path in (project, kit, reports):
            shutil.rmtree(path, ignore_errors=True)
