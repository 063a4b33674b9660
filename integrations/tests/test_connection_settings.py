"""Connection settings and tokens have one write path (`connect.save_connection`) whatever the
entry point: the admin change form, the tab's settings form, the tab's Replace token form
and `manage.py asana connect`. Each entry point is run on the same behaviour: a changed
pilot tag forgets the cached tag GIDs; a new token stores the workspace's name and a fresh,
healthy check; one audit row is written. Defaults and limits are the model's."""

import io

import pytest
from django.core.management import call_command
from django.urls import reverse

from integrations.audit import Action
from integrations.connect import ConnectError, connect_workspace, save_connection, setting_default
from integrations.forms import ConnectForm, ConnectionSettingsForm
from integrations.models import AsanaConnection, AuditLog

pytestmark = pytest.mark.django_db

ROTATED = "2/77/66:" + "a" * 32


@pytest.fixture
def connection(fake_asana) -> AsanaConnection:
    """A connection whose tags were cached, whose last check failed and whose workspace was
    renamed in Asana since."""
    connection = connect_workspace(fake_asana.token, fake_asana.workspace_gid)
    connection.tag_gids = {"pilot": "123"}
    connection.workspace_name = "Old name"
    connection.last_error = "Asana did not accept the token (401)"
    connection.save()
    return connection


def _admin_form(client, connection, **fields):
    data = {
        "pilot_tag": connection.pilot_tag,
        "polling_enabled": "on",
        "poll_interval": str(connection.poll_interval),
        "goals_sync_interval": str(connection.goals_sync_interval),
        "watch_method": connection.watch_method,
        "rollout_mode": connection.rollout_mode,
        "new_token": "",
        **fields,
    }
    url = reverse("admin:integrations_asanaconnection_change", args=[connection.pk])
    assert client.post(url, data).status_code == 302


def _settings_form(client, connection, **fields):
    prefix = f"c{connection.pk}-"
    data = {"pilot_tag": connection.pilot_tag, "polling_enabled": "on", "poll_interval": "30"}
    data.update(fields)
    client.post(
        reverse("admin:integrations:settings", args=[connection.pk]),
        {prefix + name: value for name, value in data.items()},
    )


def _command(fake_asana, monkeypatch, *options):
    monkeypatch.setenv("ASANA_ACCESS_TOKEN", fake_asana.token)
    call_command(
        "asana", "connect", "--workspace", fake_asana.workspace_gid, *options, stdout=io.StringIO()
    )


def _rows_since(before: int) -> list[AuditLog]:
    return list(AuditLog.objects.filter(pk__gt=before).order_by("pk"))


def _last_pk() -> int:
    return AuditLog.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def _through(entry, client, fake, monkeypatch, connection) -> AuditLog:
    """Run one entry point on `connection`, reload it, and return the one audit row written
    (the test fails if there is not exactly one)."""
    before = _last_pk()
    entry(client, fake, monkeypatch, connection)
    connection.refresh_from_db()
    [row] = _rows_since(before)
    return row


RENAME_TAG = {
    "admin form": lambda client, fake, mp, c: _admin_form(client, c, pilot_tag="robot"),
    "tab settings": lambda client, fake, mp, c: _settings_form(client, c, pilot_tag="robot"),
    "asana connect": lambda client, fake, mp, c: _command(fake, mp, "--pilot-tag", "robot"),
}


@pytest.mark.parametrize("entry", sorted(RENAME_TAG))
def test_a_new_pilot_tag_forgets_the_cached_tags_whatever_the_entry_point(
    entry, connection, admin_client, fake_asana, monkeypatch
):
    row = _through(RENAME_TAG[entry], admin_client, fake_asana, monkeypatch, connection)
    assert (connection.pilot_tag, connection.tag_gids) == ("robot", {})
    assert row.action in (Action.CONNECTION_SETTINGS, Action.CONNECTION_UPDATE)


CHANGE_MODE = {
    "tab settings": lambda client, fake, mp, c: _settings_form(client, c, rollout_mode="shadow"),
    "asana connect": lambda client, fake, mp, c: _command(fake, mp, "--mode", "shadow"),
}


@pytest.mark.parametrize("entry", sorted(CHANGE_MODE))
def test_the_rollout_mode_changes_and_is_audited_whatever_the_entry_point(
    entry, connection, admin_client, fake_asana, monkeypatch
):
    assert connection.rollout_mode == AsanaConnection.RolloutMode.AUTOMATIC
    row = _through(CHANGE_MODE[entry], admin_client, fake_asana, monkeypatch, connection)
    assert connection.rollout_mode == AsanaConnection.RolloutMode.SHADOW
    assert "rollout_mode = 'shadow'" in row.detail or "rollout mode shadow" in row.detail


def test_an_unknown_rollout_mode_is_refused_with_the_choices(connection):
    with pytest.raises(ConnectError, match="use one of automatic, shadow, approval"):
        save_connection(connection, settings={"rollout_mode": "yolo"})


def test_the_settings_form_explains_the_three_modes(connection, admin_client):
    page = admin_client.get(reverse("admin:index") + "?tab=integrations").content.decode()
    assert f'name="c{connection.pk}-rollout_mode"' in page
    for sentence in (
        "Automatic: a tagged task runs",
        "Shadow: it runs, nothing is written",
        "Approval required: it waits",
    ):
        assert sentence in page


def test_the_settings_form_says_what_it_saved_by_its_labels_and_values(connection, admin_client):
    prefix = f"c{connection.pk}-"
    data = {"pilot_tag": "pilot", "polling_enabled": "on", "poll_interval": "45"}
    data["rollout_mode"] = "approval"
    response = admin_client.post(
        reverse("admin:integrations:settings", args=[connection.pk]),
        {prefix + name: value for name, value in data.items()},
        follow=True,
    )
    shown = [str(m) for m in response.context["messages"]]
    assert shown == [
        f"{connection}: saved Poll interval (seconds): 45; Rollout mode: approval required."
    ]


def _admin_token(client, fake, mp, connection):
    fake.add_token(ROTATED, fake.user_gid)
    _admin_form(client, connection, new_token=ROTATED)


def _tab_token(client, fake, mp, connection):
    fake.add_token(ROTATED, fake.user_gid)
    client.post(
        reverse("admin:integrations:replace-token", args=[connection.pk]),
        {f"t{connection.pk}-token": ROTATED},
    )


def _command_token(client, fake, mp, connection):
    fake.add_token(ROTATED, fake.user_gid)
    mp.setenv("ASANA_ACCESS_TOKEN", ROTATED)
    call_command("asana", "connect", "--workspace", fake.workspace_gid, stdout=io.StringIO())


NEW_TOKEN = {
    "admin form": _admin_token,
    "tab replace token": _tab_token,
    "asana connect": _command_token,
}


@pytest.mark.parametrize("entry", sorted(NEW_TOKEN))
def test_a_new_token_stores_the_workspace_name_and_a_healthy_check_whatever_the_entry_point(
    entry, connection, admin_client, fake_asana, monkeypatch
):
    row = _through(NEW_TOKEN[entry], admin_client, fake_asana, monkeypatch, connection)
    assert connection.access_token == ROTATED
    assert connection.workspace_name == "Pilot Workspace"
    assert connection.last_error == "" and connection.last_checked_at is not None
    # The tag did not change, so the cached tags stay.
    assert connection.tag_gids == {"pilot": "123"}
    assert row.action == Action.CONNECTION_UPDATE and ROTATED not in row.detail


def test_saving_unchanged_settings_writes_nothing(connection):
    before = _last_pk()
    saved = save_connection(connection, settings={"pilot_tag": "pilot", "poll_interval": 30})
    assert saved.changed == [] and _rows_since(before) == []


def test_a_setting_the_model_refuses_is_refused_by_the_service_with_the_models_sentence(
    connection,
):
    with pytest.raises(ConnectError, match="at least 300 seconds"):
        save_connection(connection, settings={"goals_sync_interval": 60})
    connection.refresh_from_db()
    assert connection.goals_sync_interval == setting_default("goals_sync_interval")


def test_the_forms_take_their_defaults_and_limits_from_the_model():
    connect = ConnectForm()
    for name in ("pilot_tag", "polling_enabled", "poll_interval", "skip_backlog"):
        assert connect.fields[name].initial == setting_default(name)
    too_short = ConnectionSettingsForm({"pilot_tag": "pilot", "poll_interval": "4"})
    assert too_short.errors["poll_interval"] == ["The poll interval must be at least 5 seconds."]
    too_long = ConnectionSettingsForm({"pilot_tag": "x" * 101, "poll_interval": "30"})
    assert "pilot_tag" in too_long.errors
