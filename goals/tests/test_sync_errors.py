"""A sync that cannot finish stores nothing, says why, and never runs twice at once."""

import datetime
import threading
import time

import pytest
from django.db import connections as db_connections
from django.utils import timezone

from goals.models import Goal, GoalSync, KeyResult
from goals.sync import GoalsConfigError, GoalSyncBusy, sync_goals
from integrations.asana.client import AsanaClient
from integrations.models import AsanaConnection


@pytest.fixture
def synced(fake_asana, connection, hire, asana_client):
    """Ada with one goal and one key result already stored."""
    ada, ada_gid = hire("Ada")
    parent = fake_asana.add_goal(fake_asana.workspace_gid, "Parent", owner_gid=ada_gid)
    fake_asana.add_goal(fake_asana.workspace_gid, "KR", parent_gid=parent)
    assert sync_goals(connection, client=asana_client).ok
    # Asana changes after that sync: a new goal, a renamed one.
    fake_asana.add_goal(fake_asana.workspace_gid, "New", owner_gid=ada_gid)
    fake_asana.update_goal(parent, name="Parent renamed")
    return ada


def _stored() -> list:
    return sorted(Goal.objects.values_list("name", flat=True)) + sorted(
        KeyResult.objects.values_list("name", flat=True)
    )


def test_a_missing_workspace_gid_raises_config_error_and_pulls_nothing(fake_asana, connection):
    AsanaConnection.objects.filter(pk=connection.pk).update(workspace_gid="")
    connection.refresh_from_db()
    fake_asana.reset_requests()

    with pytest.raises(GoalsConfigError, match="workspace GID"):
        sync_goals(connection)

    assert fake_asana.requests == []
    assert "workspace GID" in GoalSync.objects.get().error


def test_an_unknown_employee_email_is_a_config_error(connection):
    with pytest.raises(GoalsConfigError, match=r"nobody@example\.com"):
        sync_goals(connection, employee_email="nobody@example.com")


def test_a_rejected_token_leaves_stored_goals_untouched(fake_asana, connection, synced):
    before = _stored()
    bad = AsanaClient("not-a-valid-token", base_url=fake_asana.base_url, max_retries=0)

    result = sync_goals(connection, client=bad)

    assert not result.ok and "token was rejected" in result.error
    assert _stored() == before
    latest = GoalSync.objects.first()
    assert latest is not None and latest.state == GoalSync.State.FAILED


def test_goals_unavailable_on_the_plan_are_reported(fake_asana, connection, synced, asana_client):
    before = _stored()
    fake_asana.goals_payment_required = True

    result = sync_goals(connection, client=asana_client)

    assert "not available on this workspace's Asana plan (402)" in result.error
    assert _stored() == before


def test_asana_down_mid_sync_leaves_stored_goals_untouched(
    fake_asana, connection, synced, asana_client
):
    before = _stored()
    fake_asana.inject("500", times=10, path=r"^/goal_relationships")

    result = sync_goals(connection, client=asana_client)

    assert not result.ok and "server error (500)" in result.error
    assert _stored() == before
    # The goal list had been read; the failure came after it.
    assert any(r[1] == "/goals" for r in fake_asana.requests)


def test_an_unreachable_asana_is_reported(connection, synced):
    before = _stored()
    nowhere = AsanaClient("token", base_url="http://127.0.0.1:9", max_retries=0)

    result = sync_goals(connection, client=nowhere)

    assert "could not be reached" in result.error
    assert _stored() == before


def test_a_second_sync_is_not_started_while_one_runs(fake_asana, connection, asana_client):
    GoalSync.objects.create(connection=connection, source="admin", employees_total=10)
    fake_asana.reset_requests()

    with pytest.raises(GoalSyncBusy, match="already running"):
        sync_goals(connection, client=asana_client)

    assert fake_asana.requests == []
    assert GoalSync.objects.count() == 1


def test_a_running_sync_whose_worker_died_is_taken_over(connection, asana_client):
    dead = GoalSync.objects.create(connection=connection, source="admin")
    GoalSync.objects.filter(pk=dead.pk).update(
        heartbeat_at=timezone.now() - datetime.timedelta(hours=2)
    )

    result = sync_goals(connection, client=asana_client)

    assert result.ok
    dead.refresh_from_db()
    assert dead.state == GoalSync.State.FAILED and "abandoned" in dead.error


@pytest.mark.django_db(transaction=True)
def test_a_sync_started_while_another_is_in_flight_is_refused(fake_asana, connection, hire):
    _, ada_gid = hire("Ada")
    fake_asana.add_goal(fake_asana.workspace_gid, "G", owner_gid=ada_gid)
    fake_asana.inject("slow", path=r"^/goals$", delay=1.0)
    first: list = []

    def run_first() -> None:
        client = AsanaClient(fake_asana.token, base_url=fake_asana.base_url)
        try:
            first.append(sync_goals(connection, client=client))
        finally:
            client.close()
            db_connections.close_all()

    worker = threading.Thread(target=run_first)
    worker.start()
    deadline = time.monotonic() + 5
    while not GoalSync.objects.filter(state=GoalSync.State.RUNNING).exists():
        assert time.monotonic() < deadline, "the first sync never started"
        time.sleep(0.01)

    with pytest.raises(GoalSyncBusy):
        sync_goals(connection)
    worker.join()

    assert first[0].ok and GoalSync.objects.count() == 1


def test_a_connection_without_a_token_fails_without_leaving_a_running_sync(connection):
    connection.access_token = ""
    connection.save()

    result = sync_goals(connection)

    assert not result.ok and "no Asana access token" in result.error
    assert not GoalSync.objects.filter(state=GoalSync.State.RUNNING).exists()


def test_a_workspace_the_token_cannot_reach_is_reported(fake_asana, connection, synced):
    before = _stored()
    AsanaConnection.objects.filter(pk=connection.pk).update(workspace_gid="999999999")
    connection.refresh_from_db()

    result = sync_goals(connection)

    assert "Workspace 999999999 is not reachable with this token" in result.error
    assert _stored() == before
