"""`manage.py syncgoals`."""

import pytest
from django.core.management import CommandError, call_command

from goals.models import Goal, GoalSync
from integrations.models import AsanaConnection
from integrations.tests.procs import child_env, run


@pytest.fixture(autouse=True)
def _fast_client(settings):
    # The command builds its own client from settings: a budget of its own, no retry waits.
    settings.ASANA_REQUESTS_PER_MINUTE = 100_000
    settings.ASANA_MAX_RETRIES = 0


def test_syncgoals_prints_each_employees_counts(fake_asana, connection, hire, capsys):
    _, ada_gid = hire("Ada")
    hire("Bob")
    parent = fake_asana.add_goal(fake_asana.workspace_gid, "Parent", owner_gid=ada_gid)
    fake_asana.add_goal(fake_asana.workspace_gid, "KR", parent_gid=parent)

    call_command("syncgoals")

    out = capsys.readouterr().out
    assert (
        "ada@example.com: goals kept 1, key results 1, skipped over the cap 0, truncated no" in out
    )
    assert "bob@example.com: goals kept 0, key results 0" in out
    assert "1 without owner" in out
    assert Goal.objects.count() == 1


def test_syncgoals_employee_syncs_only_that_employee(fake_asana, connection, hire, capsys):
    _, ada_gid = hire("Ada")
    _, bob_gid = hire("Bob")
    fake_asana.add_goal(fake_asana.workspace_gid, "Ada's", owner_gid=ada_gid)
    fake_asana.add_goal(fake_asana.workspace_gid, "Bob's", owner_gid=bob_gid)

    call_command("syncgoals", "--employee", "bob@example.com")

    assert "ada@example.com" not in capsys.readouterr().out
    assert list(Goal.objects.values_list("name", flat=True)) == ["Bob's"]


def test_syncgoals_fails_on_a_configuration_error(fake_asana, connection):
    AsanaConnection.objects.filter(pk=connection.pk).update(workspace_gid="")

    with pytest.raises(CommandError, match="No Asana workspace GID"):
        call_command("syncgoals")


def test_syncgoals_fails_when_nothing_is_connected(db):
    with pytest.raises(CommandError, match="No Asana workspace is connected"):
        call_command("syncgoals")


def test_syncgoals_reports_a_rejected_token(fake_asana, connection, hire, capsys):
    hire("Ada")
    connection.access_token = "1/123:" + "f" * 32
    connection.save()

    with pytest.raises(CommandError, match="token was rejected"):
        call_command("syncgoals")

    err = capsys.readouterr().err
    assert "stored goals left unchanged" in err and "f" * 32 not in err


def test_syncgoals_employee_syncs_only_the_workspaces_they_are_mapped_in(
    fake_asana, connection, hire, capsys
):
    _, ada_gid = hire("Ada")
    fake_asana.add_goal(fake_asana.workspace_gid, "Ada's", owner_gid=ada_gid)
    other = AsanaConnection.objects.create(
        workspace_gid=fake_asana.add_workspace("Other"), access_token=fake_asana.token
    )

    call_command("syncgoals", "--employee", "ada@example.com")

    assert "ada@example.com: goals kept 1" in capsys.readouterr().out
    assert not GoalSync.objects.filter(connection=other).exists()


def test_syncgoals_rejects_an_employee_mapped_nowhere_and_writes_nothing(
    fake_asana, connection, hire
):
    hire("Ada")
    fake_asana.reset_requests()

    with pytest.raises(CommandError, match=r"nobody@example\.com is mapped .* any connected"):
        call_command("syncgoals", "--employee", "nobody@example.com")

    assert fake_asana.requests == []
    assert not GoalSync.objects.exists() and not Goal.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_syncgoals_exit_code_is_zero_on_success_and_one_on_a_configuration_error(
    fake_asana, connection, hire, tmp_path
):
    _, ada_gid = hire("Ada")
    fake_asana.add_goal(fake_asana.workspace_gid, "Ada's", owner_gid=ada_gid)
    env = child_env(fake_asana.base_url)

    assert run(["syncgoals"], env, tmp_path / "ok.log") == 0
    AsanaConnection.objects.filter(pk=connection.pk).update(workspace_gid="")
    assert run(["syncgoals"], env, tmp_path / "bad.log") == 1

    assert "ada@example.com: goals kept 1" in (tmp_path / "ok.log").read_text()
    assert "No Asana workspace GID" in (tmp_path / "bad.log").read_text()
