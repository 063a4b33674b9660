"""Watch methods against the fake Asana over HTTP: automatic (search where the plan has it,
detected by Asana's 402, with the reconciling pass), tag list, and webhooks first (polling
slows while a webhook is healthy)."""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from integrations.models import AsanaConnection, WebhookRegistration
from integrations.pipeline import card, watch
from integrations.pipeline.poll import poll_connection, take_poll_slot
from integrations.pipeline.tags import created_names
from integrations.tests.pipeline_fixtures import tagged

Method = AsanaConnection.WatchMethod
SEARCH_PATH = "/tasks/search"


def gets(fake) -> list[str]:
    return [path for method, path, _ in fake.requests if method == "GET"]


def reconciled_long_ago(connection: AsanaConnection, settings) -> None:
    AsanaConnection.objects.filter(pk=connection.pk).update(
        last_reconcile_at=timezone.now() - timedelta(seconds=settings.PILOT_RECONCILE_SECONDS + 1)
    )
    connection.refresh_from_db()


def searches(fake) -> list[str]:
    return [path for path in gets(fake) if path.endswith(SEARCH_PATH)]


@pytest.fixture
def searching(connection, pilot) -> AsanaConnection:
    """A connection on the default watch method whose first (reconciling) pass is behind it."""
    assert connection.watch_method == Method.AUTO
    assert poll_connection(connection).method == "tag_list"
    connection.refresh_from_db()
    pilot.reset_requests()
    return connection


def test_a_new_connection_watches_automatically(db):
    assert AsanaConnection(workspace_gid="1").watch_method == Method.AUTO


def test_an_idle_search_poll_costs_one_request_however_long_the_history(searching, pilot):
    for n in range(250):
        tagged(pilot, f"old {n}", completed=True)

    result = poll_connection(searching)

    assert result.ok and result.method == "search" and result.candidates == []
    assert result.requests == 1
    assert gets(pilot)[0].endswith(SEARCH_PATH)


def test_search_finds_a_newly_tagged_task(searching, pilot):
    gid = tagged(pilot, "Fix the login loop")

    result = poll_connection(searching)

    assert result.method == "search" and result.candidates == [gid]
    (_, _, query), *_ = [r for r in pilot.requests if r[1].endswith(SEARCH_PATH)]
    assert query["completed"] == "false" and query["sort_by"] == "created_at"
    assert query["tags.any"] == pilot.pilot_tag_gid and len(query["tags.not"].split(",")) == len(
        created_names(searching)
    )


def test_the_first_poll_of_an_automatic_connection_is_a_full_tag_list_pass(connection, pilot):
    result = poll_connection(connection)

    connection.refresh_from_db()
    assert result.method == "tag_list" and connection.last_reconcile_at is not None
    assert not any(path.endswith(SEARCH_PATH) for path in gets(pilot))


def test_search_does_not_skip_tasks_created_in_the_millisecond_a_page_ends_on(searching, pilot):
    # A bulk import: 99 tasks in one millisecond, 51 in the next; a page holds 100.
    gids = [tagged(pilot, f"a {n}", created_at="2026-11-30T10:00:00.000Z") for n in range(99)]
    gids += [tagged(pilot, f"b {n}", created_at="2026-11-30T10:00:00.001Z") for n in range(51)]

    result = poll_connection(searching)

    assert result.method == "search" and sorted(result.candidates) == sorted(gids)
    assert len(searches(pilot)) == 2


def test_the_reconciling_pass_finds_what_search_has_not_indexed_yet(searching, pilot, settings):
    pilot.search_index_delay = 3600
    gid = tagged(pilot, "tagged a moment ago")
    assert poll_connection(searching).candidates == []

    reconciled_long_ago(searching, settings)
    result = poll_connection(searching)

    assert result.method == "tag_list" and result.candidates == [gid]


def test_on_a_paid_workspace_the_card_says_search_was_detected(searching):
    assert card.card(searching)["watch"].startswith("automatic: search is tried after")

    poll_connection(searching)

    searching.refresh_from_db()
    assert searching.search_detected_at is not None
    assert card.card(searching)["watch"].startswith("search (detected ")


def test_on_a_free_workspace_asana_answers_402_once_then_the_tag_list_is_read(searching, pilot):
    pilot.set_premium(pilot.workspace_gid, False)
    gid = tagged(pilot, "still found")

    first = poll_connection(searching)
    second = poll_connection(searching)

    searching.refresh_from_db()
    assert first.candidates == [gid] and first.method == "tag_list"
    assert second.method == "tag_list"
    assert len(searches(pilot)) == 1  # the 402, remembered
    assert searching.last_error == ""  # a plan without search is not an unhealthy connection
    assert searching.search_detected_at is None


def test_on_a_free_workspace_the_card_says_search_needs_a_paid_plan(searching, pilot):
    pilot.set_premium(pilot.workspace_gid, False)

    poll_connection(searching)

    searching.refresh_from_db()
    refused = f"{searching.search_unavailable_at:%Y-%m-%d %H:%M %Z}"
    retry = f"{searching.search_unavailable_at + watch.SEARCH_RETRY:%Y-%m-%d %H:%M %Z}"
    assert card.card(searching)["watch"] == (
        "tag list — search needs a paid plan (Asana answered 402 Payment Required on "
        f"{refused}); search is tried again at {retry}"
    )


def test_search_is_tried_again_a_day_after_a_402(searching, pilot):
    searching.search_unavailable_at = timezone.now() - watch.SEARCH_RETRY
    searching.save()

    assert poll_connection(searching).method == "search"


def test_a_workspace_upgraded_since_the_402_is_detected_at_the_next_try(searching, pilot):
    pilot.set_premium(pilot.workspace_gid, False)
    poll_connection(searching)
    pilot.set_premium(pilot.workspace_gid, True)
    AsanaConnection.objects.filter(pk=searching.pk).update(
        search_unavailable_at=timezone.now() - watch.SEARCH_RETRY
    )
    searching.refresh_from_db()

    assert poll_connection(searching).method == "search"

    searching.refresh_from_db()
    assert searching.search_unavailable_at is None and searching.search_detected_at is not None
    assert card.card(searching)["watch"].startswith("search (detected ")


def test_a_tag_list_connection_never_searches_even_on_a_paid_plan(connection, pilot, settings):
    connection.watch_method = Method.TAG_LIST
    connection.save()

    for _ in range(2):
        assert poll_connection(connection).method == "tag_list"
    reconciled_long_ago(connection, settings)
    assert poll_connection(connection).method == "tag_list"

    assert searches(pilot) == []
    assert card.card(connection)["watch"].startswith("tag list: ")


def registration(connection, *, heard_ago: timedelta | None) -> WebhookRegistration:
    return WebhookRegistration.objects.create(
        connection=connection,
        resource_gid="1",
        target_url="https://pilot.example.com/webhooks/asana/x/",
        webhook_gid="2",
        secret="s",
        state=WebhookRegistration.State.ACTIVE,
        last_contact_at=None if heard_ago is None else timezone.now() - heard_ago,
    )


@pytest.fixture
def webhooks_first(connection) -> AsanaConnection:
    connection.watch_method = Method.WEBHOOKS_FIRST
    connection.last_poll_at = timezone.now() - timedelta(seconds=connection.poll_interval + 1)
    connection.save()
    return connection


def test_webhooks_first_polls_at_the_normal_interval_without_a_webhook(webhooks_first):
    assert take_poll_slot(webhooks_first)


def test_webhooks_first_slows_to_the_reconciling_interval_while_a_webhook_is_healthy(
    webhooks_first,
):
    registration(webhooks_first, heard_ago=timedelta(minutes=5))

    assert not take_poll_slot(webhooks_first)
    assert "a webhook is healthy" in card.card(webhooks_first)["watch"]


def test_webhooks_first_returns_to_the_normal_interval_when_the_webhook_goes_quiet(
    webhooks_first, settings
):
    registration(webhooks_first, heard_ago=timedelta(seconds=settings.PILOT_WEBHOOK_QUIET_SECONDS))

    assert take_poll_slot(webhooks_first)


def test_webhooks_first_returns_to_the_normal_interval_when_the_webhook_is_deleted(
    webhooks_first,
):
    hook = registration(webhooks_first, heard_ago=timedelta(minutes=5))
    hook.state = WebhookRegistration.State.GONE
    hook.save()

    assert take_poll_slot(webhooks_first)


def test_a_tag_list_connection_ignores_a_healthy_webhook(connection):
    registration(connection, heard_ago=timedelta(minutes=5))
    connection.last_poll_at = timezone.now() - timedelta(seconds=connection.poll_interval + 1)
    connection.save()

    assert take_poll_slot(connection)


def test_asana_connect_watch_sets_the_method(fake_asana, monkeypatch, db):
    monkeypatch.setenv("ASANA_ACCESS_TOKEN", fake_asana.token)
    out = io.StringIO()

    call_command(
        "asana",
        "connect",
        "--workspace",
        fake_asana.workspace_gid,
        "--watch",
        "tag_list",
        stdout=out,
    )

    connection = AsanaConnection.objects.get(workspace_gid=fake_asana.workspace_gid)
    assert connection.watch_method == Method.TAG_LIST
    assert "watch method tag list" in out.getvalue()
