"""The executor is untrusted: where it runs, as whom, with what, and what it can reach."""

import io
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.checks import run_checks
from django.core.management import call_command

from integrations.pipeline.execute import run_command
from integrations.pipeline.launch import LaunchError, executor_identity
from integrations.tests.hostile_support import (  # noqa: F401 - the fixture
    MANAGE,
    ensure_test_user,
    hostile,
    readme_wrapper_recipe,
)
from pilotsite.secret_files import restrict, sqlite_files

TASK = {"id": "ASANA-7", "gid": "7", "title": "t"}
PY = sys.executable
ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(
    not ROOT, reason="running the executor as another OS user needs root (CI runs as root)"
)
needs_bwrap = pytest.mark.skipif(
    shutil.which("bwrap") is None,
    reason="bubblewrap is not installed (apt-get install bubblewrap; .ci/run installs it)",
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def where_it_ran(tmp_path: Path) -> str:
    script = tmp_path / "pwd.py"
    script.write_text("import os\nprint(os.getcwd())\nprint(sorted(os.listdir('.')))\n")
    return f"{PY} {script}"


# -- the working directory --------------------------------------------------------------


def test_each_run_gets_an_empty_private_directory_outside_the_project(tmp_path, settings):
    settings.PILOT_EXECUTOR_WORKDIR_BASE = str(tmp_path)
    output = run_command(where_it_ran(tmp_path), TASK, timeout=30).output.splitlines()
    cwd = Path(output[1])
    assert cwd.parent == tmp_path and cwd.name.startswith("pilot-run-")
    assert Path(settings.BASE_DIR) not in cwd.parents
    assert output[2] == "[]"


def test_the_run_directory_is_removed_afterwards(tmp_path, settings):
    settings.PILOT_EXECUTOR_WORKDIR_BASE = str(tmp_path)
    run_command(where_it_ran(tmp_path), TASK, timeout=30)
    assert [p.name for p in tmp_path.iterdir()] == ["pwd.py"]


def test_the_run_directory_is_kept_for_debugging_when_asked(tmp_path, settings):
    settings.PILOT_EXECUTOR_WORKDIR_BASE = str(tmp_path)
    settings.PILOT_EXECUTOR_KEEP_WORKDIR = True
    cmd = f"{PY} -c \"open('notes.txt', 'w').write('kept')\""
    assert run_command(cmd, TASK, timeout=30).ok
    (kept,) = [p for p in tmp_path.iterdir() if p.name.startswith("pilot-run-")]
    assert (kept / "notes.txt").read_text() == "kept"
    assert mode(kept) == 0o700
    assert mode(kept / "notes.txt") == 0o600


def test_a_work_directory_base_inside_the_project_is_refused(settings):
    settings.PILOT_EXECUTOR_WORKDIR_BASE = str(Path(settings.BASE_DIR) / "integrations")
    with pytest.raises(LaunchError, match="inside the project"):
        run_command("true", TASK, timeout=30)
    assert "pilotsite.E007" in [e.id for e in run_checks()]


# -- the user and the wrapper -----------------------------------------------------------


@needs_root
def test_the_command_runs_as_the_executor_user_with_its_groups(tmp_path, settings):
    user = ensure_test_user()
    settings.PILOT_EXECUTOR_USER = user.pw_name
    settings.PILOT_EXECUTOR_WORKDIR_BASE = str(tmp_path)
    tmp_path.chmod(0o755)
    cmd = "/usr/bin/python3 -c \"import os, json; print(json.dumps([os.getuid(), os.getgid(), os.getgroups(), os.environ['HOME'], os.environ['USER']]))\""
    result = run_command(cmd, TASK, timeout=30)
    assert result.ok, result.error
    uid, gid, groups, home, name = json.loads(result.output.splitlines()[1])
    assert (uid, gid, name, home) == (user.pw_uid, user.pw_gid, user.pw_name, user.pw_dir)
    # Root's supplementary groups are dropped, not inherited.
    assert set(groups) <= set(os.getgrouplist(user.pw_name, user.pw_gid))


def test_an_unknown_executor_user_is_a_clear_error(settings):
    settings.PILOT_EXECUTOR_USER = "no-such-user-here"
    with pytest.raises(LaunchError, match="is not a user on this machine"):
        executor_identity()
    assert "pilotsite.E007" in [e.id for e in run_checks()]


def test_the_wrapper_runs_the_command_with_the_work_directory_filled_in(tmp_path, settings):
    settings.PILOT_EXECUTOR_WORKDIR_BASE = str(tmp_path)
    wrapper = tmp_path / "wrapper.sh"
    wrapper.write_text('#!/bin/sh\necho "wrapped in $1" >&2\nshift\nexec "$@"\n')
    wrapper.chmod(0o755)
    settings.PILOT_EXECUTOR_WRAPPER = f"{wrapper} {{workdir}}"
    result = run_command("echo inside", TASK, timeout=30)
    assert result.ok
    assert "inside" in result.output
    assert f"wrapped in {tmp_path}/pilot-run-" in result.output


def test_an_executor_user_without_root_is_a_warning_not_an_error(settings, monkeypatch):
    # The web server may run unprivileged (it never executes tasks): it must still start.
    monkeypatch.setattr("integrations.pipeline.launch.os.geteuid", lambda: 12345)
    settings.PILOT_EXECUTOR_USER = "root"
    with pytest.raises(LaunchError, match="needs pilotsite to run as root"):
        executor_identity()
    ids = [e.id for e in run_checks()]
    assert "pilotsite.W003" in ids and "pilotsite.E007" not in ids


def test_a_wrapper_that_is_not_installed_fails_the_check(settings):
    settings.PILOT_EXECUTOR_WRAPPER = "no-such-sandbox --flag"
    assert "pilotsite.E007" in [e.id for e in run_checks()]


# -- file modes ---------------------------------------------------------------------------


def make_env_file(directory: Path) -> None:
    subprocess.run(
        [
            *("make", "-s", "-f", str(MANAGE.parent / "Makefile"), "-C", str(directory)),
            *(f"VENV={sys.prefix}", "-o", "install", "env-file"),
        ],
        check=True,
        capture_output=True,
    )


def test_make_writes_env_readable_by_its_owner_only(tmp_path):
    make_env_file(tmp_path)
    assert "SECRET_KEY=" in (tmp_path / ".env").read_text()
    assert mode(tmp_path / ".env") == 0o600


def test_make_makes_an_existing_readable_env_owner_only(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("SECRET_KEY=kept\n")
    env_file.chmod(0o644)
    make_env_file(tmp_path)
    assert mode(env_file) == 0o600
    assert env_file.read_text() == "SECRET_KEY=kept\n"


OPEN_DATABASE = """
import json, os
from django.db import connection
with connection.cursor() as cursor:
    cursor.execute("CREATE TABLE IF NOT EXISTS t (x int)")
    cursor.execute("INSERT INTO t VALUES (1)")
    path = os.environ["DB_PATH"]
    modes = {s: os.stat(path + s).st_mode & 0o777 for s in ("", "-wal", "-shm")
             if os.path.exists(path + s)}
    print(json.dumps(modes))
"""


def open_database(path: Path) -> dict[str, int]:
    """Open the SQLite database at `path` through Django in a new process; the modes of its
    files while the connection is open, by suffix."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DEBUG": "on",
        "SECRET_KEY": "only-for-this-test",
        "DATABASE_URL": f"sqlite:///{path}",
        "DB_PATH": str(path),
        "PILOT_ENV_FILE": "",
    }
    done = subprocess.run(
        [PY, str(MANAGE), "shell", "-c", OPEN_DATABASE],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_new_sqlite_database_and_its_wal_files_are_owner_only(tmp_path):
    modes = open_database(tmp_path / "db.sqlite3")
    assert modes == {"": 0o600, "-wal": 0o600, "-shm": 0o600}


def test_an_existing_readable_sqlite_database_is_made_owner_only(tmp_path):
    db = tmp_path / "db.sqlite3"
    sqlite3.connect(db).close()
    db.chmod(0o644)
    assert open_database(db)[""] == 0o600


def test_leftover_journal_and_wal_files_are_made_owner_only(tmp_path):
    db = tmp_path / "db.sqlite3"
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{db}{suffix}").write_bytes(b"x")
        Path(f"{db}{suffix}").chmod(0o644)
    databases = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(db)}}
    assert len(restrict(sqlite_files(databases))) == 4
    assert {mode(Path(f"{db}{s}")) for s in ("", "-wal", "-shm", "-journal")} == {0o600}


# -- manage.py check --------------------------------------------------------------------


def isolation_warnings() -> list[str]:
    return [e.msg for e in run_checks(include_deployment_checks=True) if e.id == "pilotsite.W002"]


def test_check_warns_when_the_executor_is_pilotsites_own_user_and_can_read_the_keys(
    tmp_path, settings
):
    settings.ENV_FILE = str(tmp_path / ".env")
    (tmp_path / ".env").write_text("SECRET_KEY=x\n")
    (tmp_path / ".env").chmod(0o600)
    settings.PILOT_EXECUTOR = ""
    settings.PILOT_EXECUTOR_COMMAND = "/opt/agent/run"
    (warning,) = isolation_warnings()
    assert "(pilotsite's own user)" in warning and str(tmp_path / ".env") in warning


@pytest.fixture
def executor_reads_the_keys(tmp_path, settings):
    """A command executor run as pilotsite's own user, and a .env it can read."""
    settings.ENV_FILE = str(tmp_path / ".env")
    (tmp_path / ".env").write_text("SECRET_KEY=x\n")
    (tmp_path / ".env").chmod(0o600)
    settings.PILOT_EXECUTOR = ""
    settings.PILOT_EXECUTOR_COMMAND = "/opt/agent/run"


def _shown_by(*args: str, **options) -> str:
    err = io.StringIO()
    if args[0] != "check":  # which runs them anyway, and has no such option
        options["skip_checks"] = False
    call_command(*args, stdout=io.StringIO(), stderr=err, **options)
    return err.getvalue()


def test_the_executor_reading_the_keys_is_shown_by_check_deploy(executor_reads_the_keys):
    assert "pilotsite.W002" in _shown_by("check", "--deploy")


def test_the_executor_reading_the_keys_is_shown_when_the_pollers_start(
    executor_reads_the_keys, transactional_db
):
    assert "pilotsite.W002" in _shown_by("runpollers", "--once")


@pytest.mark.parametrize("command", [("check",), ("showmigrations", "integrations")])
def test_the_executor_reading_the_keys_is_not_repeated_by_every_command(
    executor_reads_the_keys, db, command
):
    assert "pilotsite.W002" not in _shown_by(*command)


def test_check_is_quiet_when_the_executor_runs_in_a_sandbox(tmp_path, settings):
    settings.ENV_FILE = str(tmp_path / ".env")
    (tmp_path / ".env").write_text("SECRET_KEY=x\n")
    settings.PILOT_EXECUTOR_COMMAND = "/opt/agent/run"
    settings.PILOT_EXECUTOR_WRAPPER = "sh"
    assert isolation_warnings() == []


@needs_root
def test_check_warns_when_another_executor_user_can_read_the_keys(tmp_path, settings):
    user = ensure_test_user()
    env_file = tmp_path / ".env"
    settings.ENV_FILE = str(env_file)
    env_file.write_text("SECRET_KEY=x\n")
    settings.PILOT_EXECUTOR_COMMAND = "/opt/agent/run"
    settings.PILOT_EXECUTOR_USER = user.pw_name
    env_file.chmod(0o644)
    assert len(isolation_warnings()) == 1
    env_file.chmod(0o600)
    assert isolation_warnings() == []


# -- a hostile executor -----------------------------------------------------------------


def test_without_isolation_a_hostile_executor_reads_the_keys(hostile):  # noqa: F811
    """The control: run as pilotsite's own user with no sandbox, the fixture does find the
    keys (so the tests below cannot pass by not looking)."""
    report = hostile.run()
    assert str(hostile.project / ".env") in report["leaks"]


@needs_root
def test_a_hostile_executor_run_as_another_user_gets_nothing(hostile):  # noqa: F811
    user = ensure_test_user()
    report = hostile.run(PILOT_EXECUTOR_USER=user.pw_name)
    assert report["uid"] == user.pw_uid
    assert report["leaks"] == [], json.dumps(report["attempts"], indent=1)
    for name in (".env", "db.sqlite3", "db.sqlite3-wal"):
        assert report["attempts"][str(hostile.project / name)].startswith("denied")
    assert not Path(report["cwd"]).is_relative_to(hostile.project)
    for value in hostile.keys.values():
        assert value not in json.dumps(report) + json.dumps(hostile.last)


@needs_bwrap
def test_a_hostile_executor_in_the_readme_bwrap_sandbox_gets_nothing(hostile):  # noqa: F811
    # The README's recipe, plus the executor's own files (read-only) and a place to report.
    wrapper = (
        f"{readme_wrapper_recipe()} --ro-bind {hostile.kit} {hostile.kit} "
        f"--bind {hostile.reports} {hostile.reports}"
    )
    report = hostile.run(PILOT_EXECUTOR_WRAPPER=wrapper)
    assert report["leaks"] == [], json.dumps(report["attempts"], indent=1)
    assert report["attempts"][str(hostile.project / ".env")].startswith("denied")
    for value in hostile.keys.values():
        assert value not in json.dumps(report) + json.dumps(hostile.last)
