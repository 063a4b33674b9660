"""Connecting a workspace (service and the tab's form) against the fake Asana over HTTP."""

import socket

import pytest
from django.urls import reverse

from integrations import connect
from integrations.connect import ConnectError, connect_workspace
from integrations.models import AsanaConnection, AuditLog

pytestmark = pytest.mark.django_db

BAD_TOKEN = "2/999/888:ffffffffffffffffffffffffffffffff"
TAB = "/admin/?tab=integrations"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post_connect(client, token: str, gid: str, **extra: str):
    data = {
        "token": token,
        "workspace_gid": gid,
        "pilot_tag": "pilot",
        "polling_enabled": "on",
        "poll_interval": "30",
        **extra,
    }
    return client.post(reverse("admin:integrations:connect"), data)


def test_connect_creates_connection_with_workspace_name_and_health(fake_asana, admin_user):
    connection = connect_workspace(fake_asana.token, fake_asana.workspace_gid, actor=admin_user)
    assert connection.workspace_name == "Pilot Workspace"
    assert connection.access_token == fake_asana.token
    assert connection.last_checked_at is not None and connection.last_error == ""
    assert AuditLog.objects.filter(action="connection.create", actor=admin_user).count() == 1
    assert fake_asana.violations == []


def test_connect_again_updates_the_same_connection(fake_asana):
    first = connect_workspace(fake_asana.token, fake_asana.workspace_gid)
    first.tag_gids = {"pilot": "123"}
    first.save()
    again = connect_workspace(
        fake_asana.token, fake_asana.workspace_gid, pilot_tag="robot", polling_enabled=False
    )
    assert again.pk == first.pk and AsanaConnection.objects.count() == 1
    assert (again.pilot_tag, again.polling_enabled, again.tag_gids) == ("robot", False, {})


def test_connect_again_without_settings_keeps_them_and_replaces_the_token(fake_asana):
    first = connect_workspace(
        fake_asana.token,
        fake_asana.workspace_gid,
        pilot_tag="robot",
        poll_interval=90,
        polling_enabled=False,
        skip_backlog=True,
    )
    first.tag_gids = {"robot": "123"}
    first.save()
    rotated = "2/77/66:" + "a" * 32
    fake_asana.add_token(rotated, fake_asana.user_gid)
    again = connect_workspace(rotated, fake_asana.workspace_gid)
    assert again.pk == first.pk and again.access_token == rotated
    assert (again.pilot_tag, again.poll_interval, again.polling_enabled, again.skip_backlog) == (
        "robot",
        90,
        False,
        True,
    )
    assert again.tag_gids == {"robot": "123"}
    update = AuditLog.objects.get(action="connection.update")
    assert "pilot tag 'robot'; polling off; skip backlog yes" in update.detail


def test_connect_again_changes_only_the_settings_given(fake_asana):
    connect_workspace(fake_asana.token, fake_asana.workspace_gid, poll_interval=90)
    again = connect_workspace(fake_asana.token, fake_asana.workspace_gid, skip_backlog=True)
    assert (again.pilot_tag, again.poll_interval, again.polling_enabled, again.skip_backlog) == (
        "pilot",
        90,
        True,
        True,
    )


def test_connect_rejects_a_bad_setting_before_calling_asana(fake_asana):
    fake_asana.reset_requests()
    with pytest.raises(ConnectError, match="at least 5 seconds"):
        connect_workspace(fake_asana.token, fake_asana.workspace_gid, poll_interval=2)
    with pytest.raises(ConnectError, match="1 to 100 characters"):
        connect_workspace(fake_asana.token, fake_asana.workspace_gid, pilot_tag="  ")
    assert fake_asana.requests == [] and not AsanaConnection.objects.exists()


def test_connect_rejects_non_numeric_gid_without_calling_asana(fake_asana):
    fake_asana.reset_requests()
    with pytest.raises(ConnectError, match="must be a number"):
        connect_workspace(fake_asana.token, "acme-workspace")
    assert fake_asana.requests == []
    assert not AsanaConnection.objects.exists()


def test_connect_with_rejected_token_says_to_generate_a_new_one(fake_asana):
    with pytest.raises(ConnectError) as caught:
        connect_workspace(BAD_TOKEN, fake_asana.workspace_gid)
    message = str(caught.value)
    assert "did not accept the token (401): check that it was copied whole" in message
    assert "create a new one (Asana: My settings → Apps → Developer apps)" in message
    assert "try again" not in message.lower()
    assert BAD_TOKEN not in str(caught.value)
    assert not AsanaConnection.objects.exists() and not AuditLog.objects.exists()


def test_connect_to_foreign_workspace_lists_the_visible_ones(fake_asana):
    other = fake_asana.add_workspace("Other Co")
    fake_asana.add_user("Someone", "someone@example.com", [other])
    with pytest.raises(ConnectError) as caught:
        connect_workspace(fake_asana.token, other)
    message = str(caught.value)
    assert f"not a member of workspace {other}" in message
    assert f"Pilot Workspace ({fake_asana.workspace_gid})" in message
    assert not AsanaConnection.objects.exists()


def test_connect_when_asana_fails_says_try_again_and_saves_nothing(fake_asana):
    fake_asana.inject("500", times=99)
    with pytest.raises(
        ConnectError, match=r"Asana is not available right now \(it answered 500\).*Try again"
    ):
        connect_workspace(fake_asana.token, fake_asana.workspace_gid)
    assert not AsanaConnection.objects.exists()


def test_connect_when_asana_unreachable_says_what_to_check_without_jargon(fake_asana, settings):
    settings.ASANA_API_BASE_URL = f"http://127.0.0.1:{_closed_port()}/api/1.0"
    with pytest.raises(ConnectError) as caught:
        connect_workspace(fake_asana.token, fake_asana.workspace_gid)
    message = str(caught.value)
    assert message.startswith(f"Asana could not be reached at {settings.ASANA_API_BASE_URL}:")
    assert "ASANA_API_BASE_URL setting" in message
    # A configuration to fix, said once: no library names, no "try again later".
    assert "ConnectError" not in message and "try again" not in message.lower()
    assert message.count("could not be reached") == 1
    assert not AsanaConnection.objects.exists()


def test_token_workspaces_lists_only_the_tokens_workspaces_by_name(fake_asana):
    zebra = fake_asana.add_workspace("Zebra Inc")
    fake_asana.add_workspace("Not mine")
    user = fake_asana.add_user("Two Hats", "two@example.com", [zebra, fake_asana.workspace_gid])
    token = f"2/{user}:{'e' * 32}"
    fake_asana.add_token(token, user)
    found = connect.token_workspaces(token)
    assert found == [
        connect.Workspace(gid=fake_asana.workspace_gid, name="Pilot Workspace"),
        connect.Workspace(gid=zebra, name="Zebra Inc"),
    ]
    assert ("GET", "/workspaces") in {(m, p) for m, p, _ in fake_asana.requests}


def test_token_workspaces_of_a_rejected_token_says_so(fake_asana):
    with pytest.raises(ConnectError, match="did not accept the token"):
        connect.token_workspaces(BAD_TOKEN)


def test_connect_form_saves_and_the_page_shows_only_the_masked_token(fake_asana, admin_client):
    response = _post_connect(admin_client, fake_asana.token, fake_asana.workspace_gid)
    assert response.status_code == 302 and response["Location"] == TAB
    connection = AsanaConnection.objects.get()
    page = admin_client.get(TAB).content.decode()
    assert "Pilot Workspace" in page and connection.masked_token in page
    assert fake_asana.token not in page


@pytest.mark.parametrize(
    ("token", "gid", "expected"),
    [
        (BAD_TOKEN, None, "Asana did not accept the token (401)"),
        (None, "12ab", "is a number (digits only)"),
        (None, "4242424242", "not a member of workspace 4242424242"),
    ],
    ids=["401-token", "non-numeric-gid", "wrong-workspace"],
)
def test_connect_form_error_is_shown_and_nothing_saved(
    fake_asana, admin_client, token, gid, expected
):
    token = token or fake_asana.token
    response = _post_connect(admin_client, token, gid or fake_asana.workspace_gid)
    assert response.status_code == 302
    page = admin_client.get(TAB).content.decode()
    assert expected in page
    assert token not in page
    assert not AsanaConnection.objects.exists()


def test_connect_form_sets_polling_and_interval(fake_asana, admin_client):
    _post_connect(
        admin_client,
        fake_asana.token,
        fake_asana.workspace_gid,
        polling_enabled="",
        poll_interval="120",
    )
    connection = AsanaConnection.objects.get()
    assert (connection.polling_enabled, connection.poll_interval) == (False, 120)


def test_connect_form_on_an_existing_connection_applies_every_field(fake_asana, admin_client):
    # The form shows every setting, so its values are all "given", unticked boxes included.
    connect_workspace(
        fake_asana.token, fake_asana.workspace_gid, pilot_tag="robot", skip_backlog=True
    )
    _post_connect(
        admin_client,
        fake_asana.token,
        fake_asana.workspace_gid,
        polling_enabled="",
        poll_interval="45",
    )
    connection = AsanaConnection.objects.get()
    assert (
        connection.pilot_tag,
        connection.poll_interval,
        connection.polling_enabled,
        connection.skip_backlog,
    ) == ("pilot", 45, False, False)


def test_connect_form_error_keeps_what_was_typed_except_the_token(fake_asana, admin_client):
    data = {"token": fake_asana.token, "workspace_gid": "12ab", "pilot_tag": "robot"}
    data["poll_interval"] = "90"  # polling left unticked
    response = admin_client.post(reverse("admin:integrations:connect"), data)
    assert response["Location"] == f"{TAB}#connect-workspace"
    page = admin_client.get(TAB).content.decode()
    assert 'value="12ab"' in page and 'value="robot"' in page and 'value="90"' in page
    assert 'name="polling_enabled" id="id_polling_enabled" checked' not in page
    assert fake_asana.token not in page
    # The GID's error stands beside the GID input, which points at it.
    assert 'aria-describedby="id_workspace_gid_error"' in page
    assert 'id="id_workspace_gid_error"' in page


def test_connect_form_when_asana_is_down_shows_try_again(fake_asana, admin_client):
    fake_asana.inject("500", times=99)
    _post_connect(admin_client, fake_asana.token, fake_asana.workspace_gid)
    page = admin_client.get(TAB).content.decode()
    assert "Asana is not available right now" in page
    assert not AsanaConnection.objects.exists()


def test_test_connection_records_ok_health(fake_asana, admin_user):
    connection = connect_workspace(fake_asana.token, fake_asana.workspace_gid)
    AsanaConnection.objects.filter(pk=connection.pk).update(last_checked_at=None)
    connection.refresh_from_db()
    ok, message = connect.check_connection(connection, actor=admin_user)
    connection.refresh_from_db()
    assert ok and "Pilot Admin" in message
    assert connection.last_checked_at is not None and connection.last_error == ""
    assert AuditLog.objects.filter(action="connection.test", outcome="ok").exists()


def test_test_connection_records_the_error_of_a_revoked_token(fake_asana):
    connection = connect_workspace(fake_asana.token, fake_asana.workspace_gid)
    connection.access_token = BAD_TOKEN
    connection.save()
    ok, message = connect.check_connection(connection)
    connection.refresh_from_db()
    assert not ok and "401" in message
    assert "401" in connection.last_error and BAD_TOKEN not in connection.last_error
    assert AuditLog.objects.filter(action="connection.test", outcome="error").exists()


def test_test_button_shows_the_result_and_updates_health(fake_asana, admin_client):
    connection = connect_workspace(fake_asana.token, fake_asana.workspace_gid)
    fake_asana.inject("500", times=99)
    response = admin_client.post(
        reverse("admin:integrations:check", args=[connection.pk]), follow=True
    )
    connection.refresh_from_db()
    assert "Asana is not available right now" in response.content.decode()
    assert "Asana is not available right now" in connection.last_error


def test_settings_form_changes_polling_and_tag(fake_asana, admin_client):
    connection = connect_workspace(fake_asana.token, fake_asana.workspace_gid)
    prefix = f"c{connection.pk}-"
    admin_client.post(
        reverse("admin:integrations:settings", args=[connection.pk]),
        {prefix + "pilot_tag": "robot", prefix + "poll_interval": "60"},
    )
    connection.refresh_from_db()
    assert (connection.pilot_tag, connection.polling_enabled, connection.poll_interval) == (
        "robot",
        False,
        60,
    )
    assert AuditLog.objects.filter(action="connection.settings").exists()


def test_settings_form_refuses_a_too_short_interval(fake_asana, admin_client):
    connection = connect_workspace(fake_asana.token, fake_asana.workspace_gid)
    prefix = f"c{connection.pk}-"
    response = admin_client.post(
        reverse("admin:integrations:settings", args=[connection.pk]),
        {prefix + "pilot_tag": "pilot", prefix + "poll_interval": "1"},
        follow=True,
    )
    connection.refresh_from_db()
    assert connection.poll_interval == 30
    page = response.content.decode()
    assert "Settings not saved" in page
    assert f'id="id_{prefix}poll_interval_error"' in page  # beside the field it is about
