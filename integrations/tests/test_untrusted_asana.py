"""Pasted tokens and Asana's answers are not trusted: every path that takes a token refuses
characters a token cannot have, and a malformed, runaway or slow answer becomes a clear
message, never a 500 or a traceback (the hostile fake, over real HTTP)."""

import pytest
from django.core.management import CommandError, call_command

from integrations.asana.client import AsanaClient
from integrations.asana.errors import AsanaMalformedResponse, AsanaPaginationError
from integrations.asana.tokens import InvalidToken, clean_token
from integrations.models import AsanaConnection, AuditLog, Employee

ZWSP = "\u200b"
PASTE_AGAIN = "Paste it again without invisible characters"


@pytest.mark.parametrize(
    ("pasted", "position"),
    [
        ("1/123:abc" + ZWSP + "def", "U+200B ZERO WIDTH SPACE, character 10"),
        (ZWSP + "1/123:abcdef", "U+200B ZERO WIDTH SPACE, character 1"),
        ("\ufeff1/123:abcdef", "U+FEFF ZERO WIDTH NO-BREAK SPACE, character 1"),
        ("1/123:abc\u00a0def", "U+00A0 NO-BREAK SPACE, character 10"),
        ("1/123:abc\u2060def", "U+2060 WORD JOINER, character 10"),
        ("1/123:abc\x07def", "U+0007, character 10"),
        ("1/123:abcdéf", "U+00E9 LATIN SMALL LETTER E WITH ACUTE, character 11"),
    ],
)
def test_a_token_with_an_invisible_or_non_ascii_character_is_refused(pasted, position):
    with pytest.raises(InvalidToken) as refused:
        clean_token(pasted)
    assert position in str(refused.value)
    assert PASTE_AGAIN in str(refused.value)


def test_whitespace_around_a_pasted_token_is_dropped_but_not_inside():
    assert clean_token("  1/123:abcdef\r\n") == "1/123:abcdef"
    with pytest.raises(InvalidToken, match="space or line break"):
        clean_token("1/123: abcdef")


def test_connect_form_refuses_an_invisible_character_and_saves_nothing(admin_client, fake_asana):
    page = admin_client.post(
        "/admin/tabs/integrations/connect/",
        {
            "token": fake_asana.token + ZWSP,
            "workspace_gid": fake_asana.workspace_gid,
            "pilot_tag": "pilot",
            "poll_interval": "30",
            "polling_enabled": "on",
        },
        follow=True,
    )
    assert page.status_code == 200
    assert PASTE_AGAIN in page.content.decode()
    assert not AsanaConnection.objects.exists()
    assert fake_asana.requests == []


def test_replace_token_in_the_admin_refuses_an_invisible_character(admin_client, fake_asana):
    connection = AsanaConnection.objects.create(
        workspace_gid=fake_asana.workspace_gid, workspace_name="W", access_token=fake_asana.token
    )
    page = admin_client.post(
        f"/admin/integrations/asanaconnection/{connection.pk}/change/",
        {
            "new_token": ZWSP + "1/999:other",
            "pilot_tag": "pilot",
            "polling_enabled": "on",
            "poll_interval": "30",
            "goals_sync_interval": connection.goals_sync_interval,
        },
    )
    assert page.status_code == 200  # the form again, with the error
    assert PASTE_AGAIN in page.content.decode()
    connection.refresh_from_db()
    assert connection.access_token == fake_asana.token


def test_cli_refuses_an_access_token_variable_with_an_invisible_character(
    fake_asana, db, monkeypatch
):
    monkeypatch.setenv("ASANA_ACCESS_TOKEN", fake_asana.token + ZWSP)
    with pytest.raises(CommandError, match=f"ASANA_ACCESS_TOKEN: .*{PASTE_AGAIN}"):
        call_command("asana", "connect", "--workspace", fake_asana.workspace_gid)
    assert not AsanaConnection.objects.exists()


def test_the_client_refuses_a_stored_token_with_an_invisible_character():
    with pytest.raises(Exception, match=PASTE_AGAIN) as refused:
        AsanaClient("1/123:abc" + ZWSP)
    assert type(refused.value).__name__ == "AsanaError"


MALFORMED = ["json-array", "json-null", "json-string", "no-data", "data-not-object"]


@pytest.mark.parametrize("kind", MALFORMED)
def test_a_malformed_answer_is_a_typed_client_error(hostile_asana, kind):
    hostile_asana.misbehave(kind)
    with (
        AsanaClient(hostile_asana.token, max_retries=0) as client,
        pytest.raises(AsanaMalformedResponse, match="check ASANA_API_BASE_URL"),
    ):
        client.me()


@pytest.mark.parametrize("kind", MALFORMED)
def test_connect_shows_a_malformed_answer_as_a_message(admin_client, hostile_asana, kind):
    hostile_asana.misbehave(kind, path=r"^/users/me$")
    page = admin_client.post(
        "/admin/tabs/integrations/connect/",
        {
            "token": hostile_asana.token,
            "workspace_gid": hostile_asana.workspace_gid,
            "pilot_tag": "pilot",
            "poll_interval": "30",
        },
        follow=True,
    )
    assert page.status_code == 200
    assert "check ASANA_API_BASE_URL" in page.content.decode()
    assert not AsanaConnection.objects.exists()


@pytest.mark.parametrize("kind", MALFORMED)
def test_test_connection_shows_a_malformed_answer_as_a_message(admin_client, hostile_asana, kind):
    connection = AsanaConnection.objects.create(
        workspace_gid=hostile_asana.workspace_gid,
        workspace_name="W",
        access_token=hostile_asana.token,
    )
    hostile_asana.misbehave(kind, path=r"^/users/me$")
    page = admin_client.post(f"/admin/tabs/integrations/{connection.pk}/check/", follow=True)
    assert page.status_code == 200
    assert "check ASANA_API_BASE_URL" in page.content.decode()
    connection.refresh_from_db()
    assert "check ASANA_API_BASE_URL" in connection.last_error


@pytest.mark.parametrize("kind", [*MALFORMED, "repeat-next-page", "endless-next-page"])
def test_map_by_email_shows_a_malformed_or_runaway_list_as_a_message(
    admin_client, hostile_asana, kind, settings
):
    settings.ASANA_MAX_PAGES = 3
    connection = AsanaConnection.objects.create(
        workspace_gid=hostile_asana.workspace_gid,
        workspace_name="W",
        access_token=hostile_asana.token,
    )
    Employee.objects.create(name="Una", email="una@example.com")
    hostile_asana.misbehave(kind, path=r"^/users$")
    page = admin_client.post(f"/admin/tabs/integrations/{connection.pk}/automap/", follow=True)
    assert page.status_code == 200
    assert "Could not read the workspace&#x27;s users" in page.content.decode()
    assert not connection.mappings.exists()


def test_pagination_stops_on_a_repeated_cursor(hostile_asana):
    hostile_asana.misbehave("repeat-next-page", path=r"^/users$")
    with (
        AsanaClient(hostile_asana.token) as client,
        pytest.raises(AsanaPaginationError, match="repeated a page cursor"),
    ):
        list(client.workspace_users(hostile_asana.workspace_gid))
    assert len(hostile_asana.requests) == 2


def test_pagination_stops_at_the_page_cap(hostile_asana, settings):
    settings.ASANA_MAX_PAGES = 4
    hostile_asana.misbehave("endless-next-page", path=r"^/users$")
    with (
        AsanaClient(hostile_asana.token) as client,
        pytest.raises(AsanaPaginationError, match=r"ASANA_MAX_PAGES \(4 pages"),
    ):
        list(client.workspace_users(hostile_asana.workspace_gid))
    assert len(hostile_asana.requests) == 4


def test_test_connection_gives_up_after_the_short_timeout(admin_client, hostile_asana, settings):
    settings.ASANA_INTERACTIVE_TIMEOUT = 0.3
    connection = AsanaConnection.objects.create(
        workspace_gid=hostile_asana.workspace_gid,
        workspace_name="W",
        access_token=hostile_asana.token,
    )
    hostile_asana.misbehave("slow", path=r"^/users/me$", delay=3)
    page = admin_client.post(f"/admin/tabs/integrations/{connection.pk}/check/", follow=True)
    assert "Asana did not answer in time; nothing was saved." in page.content.decode()
    assert "ReadTimeout" not in page.content.decode()
    assert len(hostile_asana.requests) == 1  # one try: a person is waiting
    assert AuditLog.objects.filter(action="connection.test", outcome="error").exists()
