"""`manage.py asana ...` and `manage.py employees ...` against the fake Asana."""

import io
import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from integrations.connect import connect_workspace
from integrations.models import AsanaConnection, AsanaMapping, Employee, ProcessedTask
from integrations.tests import procs

pytestmark = pytest.mark.django_db


def _run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.fixture
def token_env(fake_asana, monkeypatch):
    monkeypatch.setenv("ASANA_ACCESS_TOKEN", fake_asana.token)


def test_asana_connect_prints_a_one_line_summary(fake_asana, token_env):
    out = _run(
        "asana",
        "connect",
        "--workspace",
        fake_asana.workspace_gid,
        "--pilot-tag",
        "robot",
        "--poll-interval",
        "60",
        "--skip-backlog",
    )
    connection = AsanaConnection.objects.get()
    assert out.strip() == (
        f"Connected Pilot Workspace ({fake_asana.workspace_gid}): token "
        f"{connection.masked_token}, pilot tag 'robot', polling every 60 s, watch method search when available, rollout mode automatic."
    )
    assert connection.skip_backlog and fake_asana.token not in out


def test_asana_connect_no_polling(fake_asana, token_env):
    out = _run("asana", "connect", "--workspace", fake_asana.workspace_gid, "--no-polling")
    assert "polling off" in out and not AsanaConnection.objects.get().polling_enabled


def _connect(fake_asana, *options: str) -> AsanaConnection:
    _run("asana", "connect", "--workspace", fake_asana.workspace_gid, *options)
    return AsanaConnection.objects.get()


def test_asana_connect_new_connection_takes_the_defaults(fake_asana, token_env):
    connection = _connect(fake_asana)
    assert (
        connection.pilot_tag,
        connection.poll_interval,
        connection.polling_enabled,
        connection.skip_backlog,
    ) == ("pilot", 30, True, False)


def test_asana_connect_again_without_options_keeps_the_settings(fake_asana, token_env, monkeypatch):
    _connect(fake_asana, "--pilot-tag", "robot", "--poll-interval", "90", "--no-polling")
    _connect(fake_asana, "--skip-backlog")
    rotated = "2/77/66:" + "a" * 32
    fake_asana.add_token(rotated, fake_asana.user_gid)
    monkeypatch.setenv("ASANA_ACCESS_TOKEN", rotated)
    out = _run("asana", "connect", "--workspace", fake_asana.workspace_gid)
    connection = AsanaConnection.objects.get()
    assert connection.access_token == rotated
    assert (
        connection.pilot_tag,
        connection.poll_interval,
        connection.polling_enabled,
        connection.skip_backlog,
    ) == ("robot", 90, False, True)
    assert (
        "pilot tag 'robot', polling off, watch method search when available, rollout mode automatic."
        in out
    )


def test_asana_connect_again_with_pilot_tag_changes_only_the_tag(fake_asana, token_env):
    first = _connect(fake_asana, "--poll-interval", "90", "--no-polling")
    first.tag_gids = {"pilot": "123"}
    first.save()
    connection = _connect(fake_asana, "--pilot-tag", "robot")
    assert (connection.pilot_tag, connection.tag_gids) == ("robot", {})
    assert (connection.poll_interval, connection.polling_enabled) == (90, False)


def test_asana_connect_again_with_the_same_pilot_tag_keeps_the_cached_tag_gids(
    fake_asana, token_env
):
    first = _connect(fake_asana)
    first.tag_gids = {"pilot": "123"}
    first.save()
    assert _connect(fake_asana).tag_gids == {"pilot": "123"}


def test_asana_connect_polling_turns_polling_back_on(fake_asana, token_env):
    assert not _connect(fake_asana, "--poll-interval", "45", "--no-polling").polling_enabled
    connection = _connect(fake_asana, "--polling")
    assert connection.polling_enabled and connection.poll_interval == 45


def test_asana_connect_polling_and_no_polling_are_mutually_exclusive(fake_asana, token_env):
    with pytest.raises(CommandError, match="not allowed with argument"):
        _connect(fake_asana, "--polling", "--no-polling")
    assert not AsanaConnection.objects.exists()


def test_asana_connect_with_a_bad_token_fails_clearly(fake_asana, monkeypatch):
    monkeypatch.setenv("ASANA_ACCESS_TOKEN", "2/9/9:" + "f" * 32)
    with pytest.raises(CommandError, match="Asana did not accept the token \\(401\\)"):
        _run("asana", "connect", "--workspace", fake_asana.workspace_gid)
    assert not AsanaConnection.objects.exists()


def test_asana_connect_with_an_unknown_workspace_fails_clearly(fake_asana, token_env):
    with pytest.raises(CommandError, match="not a member of workspace 31337"):
        _run("asana", "connect", "--workspace", "31337")


def test_asana_connect_with_a_non_numeric_gid_fails_without_calling_asana(fake_asana, token_env):
    fake_asana.reset_requests()
    with pytest.raises(CommandError, match="must be a number"):
        _run("asana", "connect", "--workspace", "my-workspace")
    assert fake_asana.requests == [] and not AsanaConnection.objects.exists()


def test_asana_connect_when_asana_is_down_says_try_again_and_saves_nothing(fake_asana, token_env):
    fake_asana.inject("503", times=99)
    with pytest.raises(
        CommandError, match=r"not available right now \(it answered 503\); nothing was saved"
    ):
        _run("asana", "connect", "--workspace", fake_asana.workspace_gid)
    assert not AsanaConnection.objects.exists()


def test_asana_connect_without_a_token_says_how_to_give_one(fake_asana, monkeypatch):
    monkeypatch.delenv("ASANA_ACCESS_TOKEN", raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO())
    with pytest.raises(CommandError, match="Set ASANA_ACCESS_TOKEN"):
        _run("asana", "connect", "--workspace", fake_asana.workspace_gid)


def test_asana_status_shows_health_polling_and_task_counts(fake_asana):
    connection = connect_workspace(fake_asana.token, fake_asana.workspace_gid)
    ProcessedTask.objects.create(connection=connection, task_gid="1", state="done")
    ProcessedTask.objects.create(connection=connection, task_gid="2", state="done")
    ProcessedTask.objects.create(connection=connection, task_gid="3", state="failed")
    out = _run("asana", "status")
    assert out.startswith("Executor: ")
    assert f"Pilot Workspace ({fake_asana.workspace_gid})" in out
    assert "health: ok at" in out and "polling: every 30 s" in out
    assert "done 2" in out and "failed 1" in out and "claimed 0" in out
    assert "last poll: never" in out


def test_asana_status_shows_the_last_poll_and_its_result(fake_asana):
    connection = connect_workspace(fake_asana.token, fake_asana.workspace_gid)
    AsanaConnection.objects.filter(pk=connection.pk).update(
        last_poll_at=timezone.now(), last_poll_result="pilot tag not found"
    )
    assert ": pilot tag not found" in _run("asana", "status")


def test_asana_status_without_connections_says_how_to_connect():
    assert "asana connect --workspace GID" in _run("asana", "status")


def test_employees_import_reports_counts_and_rejections(tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("email,name\nada@example.com,Ada\nnope,Bad\n")
    out = io.StringIO()
    with pytest.raises(CommandError, match=r"1 row\(s\) rejected\. Fix the rejected rows"):
        call_command("employees", "import", str(path), stdout=out)
    assert "1 created, 0 updated, 0 unchanged, 1 rejected" in out.getvalue()
    assert "rejected line 3 (nope): 'nope' is not a valid email address" in out.getvalue()


def test_employees_import_exits_zero_only_when_no_row_was_rejected(tmp_path, transactional_db):
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text("email,name\nada@example.com,Ada\n")
    bad.write_text("email,name\ngrace@example.com,Grace\nnope,Bad\n")
    env = procs.child_env("http://127.0.0.1:9/api/1.0")
    run = [sys.executable, procs.MANAGE, "employees", "import"]
    ok = subprocess.run([*run, str(good)], env=env, capture_output=True, text=True, timeout=60)
    rejected = subprocess.run([*run, str(bad)], env=env, capture_output=True, text=True, timeout=60)
    assert (ok.returncode, rejected.returncode) == (0, 1)
    assert "1 row(s) rejected" in rejected.stderr
    assert set(Employee.objects.values_list("email", flat=True)) == {
        "ada@example.com",
        "grace@example.com",
    }


def test_employees_import_of_a_malformed_file_fails_and_changes_nothing(tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("mail,name\nada@example.com,Ada\n")
    with pytest.raises(CommandError, match="Nothing imported: missing column\\(s\\) email"):
        _run("employees", "import", str(path))
    assert not Employee.objects.exists()


def test_employees_import_with_unknown_workspace_fails(tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("email,name\nada@example.com,Ada\n")
    with pytest.raises(CommandError, match="No connection for workspace 42"):
        _run("employees", "import", str(path), "--workspace", "42")


def test_employees_automap_prints_mapped_and_remaining(fake_asana):
    connect_workspace(fake_asana.token, fake_asana.workspace_gid)
    fake_asana.add_user("Ada", "ada@example.com", [fake_asana.workspace_gid])
    Employee.objects.create(name="Ada", email="ada@example.com")
    Employee.objects.create(name="Zed", email="zed@example.com")
    out = _run("employees", "automap", "--workspace", fake_asana.workspace_gid)
    assert "mapped 1 by email" in out
    assert "mapped ada@example.com" in out and "unmapped zed@example.com" in out
    assert AsanaMapping.objects.count() == 1


def test_employees_automap_without_connections_fails():
    with pytest.raises(CommandError, match="No Asana workspace is connected"):
        _run("employees", "automap")


def test_employees_automap_when_asana_is_down_fails_and_maps_nobody(fake_asana):
    connect_workspace(fake_asana.token, fake_asana.workspace_gid)
    fake_asana.add_user("Ada", "ada@example.com", [fake_asana.workspace_gid])
    Employee.objects.create(name="Ada", email="ada@example.com")
    fake_asana.inject("500", times=99)
    with pytest.raises(CommandError, match="could not be read from Asana"):
        _run("employees", "automap")
    assert not AsanaMapping.objects.exists()
