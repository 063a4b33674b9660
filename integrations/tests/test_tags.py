"""Duplicate tag names and the one eligibility rule, against the fake Asana over HTTP.

Asana does not make tag names unique; pilotsite watches every tag named like the pilot tag,
reuses the oldest status tag of a name and never makes a second one."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from integrations.models import AsanaConnection, ProcessedTask
from integrations.pipeline.dispatch import dispatch_task
from integrations.pipeline.poll import poll_connection
from integrations.pipeline.tags import WorkspaceTags, created_names, ineligible_reason
from integrations.tests.pipeline_fixtures import process, tag_gid

State = ProcessedTask.State
EARLY = "2020-01-01T00:00:00.000Z"


def tags_named(fake, name: str) -> list[str]:
    return [t["gid"] for t in fake._records("tag", workspace=fake.workspace_gid, name=name)]


def age_the_tag_cache(connection: AsanaConnection) -> None:
    """Time passes: the cached tag list is older than the refresh interval."""
    connection.refresh_from_db()
    cache = dict(connection.tag_gids)
    cache["listed_at"] = (timezone.now() - timedelta(days=1)).isoformat()
    AsanaConnection.objects.filter(pk=connection.pk).update(tag_gids=cache)
    connection.refresh_from_db()


# -- the rule ----------------------------------------------------------------------------


TAGS = WorkspaceTags(
    workspace_gid="100",
    pilot_tag="pilot",
    by_name={"pilot": ("1", "2"), "pilot-done": ("3", "4")},
    listed_at=timezone.now(),
)
TASK = {"gid": "9", "completed": False, "workspace": {"gid": "100"}, "tags": [{"gid": "1"}]}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"completed": True}, "completed"),
        ({"workspace": {"gid": "200"}}, "in another workspace (200)"),
        ({"tags": [{"gid": "7", "name": "Pilot"}]}, "no longer tagged 'pilot'"),
        ({"tags": [{"gid": "1"}, {"gid": "4", "name": "pilot-done"}]}, "carries pilot-done"),
        ({"tags": [{"gid": "1"}, {"gid": "8", "name": "pilot-failed"}]}, "carries pilot-failed"),
    ],
)
def test_ineligible_tasks_say_why(change, reason):
    assert ineligible_reason(TASK | change, TAGS) == reason


@pytest.mark.parametrize("pilot_gid", ["1", "2"])
def test_a_task_carrying_any_tag_named_like_the_pilot_tag_is_eligible(pilot_gid):
    assert ineligible_reason(TASK | {"tags": [{"gid": pilot_gid}]}, TAGS) is None


# -- polling and webhooks ------------------------------------------------------------------


def test_poll_watches_every_tag_named_like_the_pilot_tag(connection, pilot):
    second = pilot.add_tag(pilot.workspace_gid, "pilot")
    only_second = pilot.add_task(pilot.workspace_gid, "tagged with the other pilot", tags=[second])
    both = pilot.add_task(pilot.workspace_gid, "both", tags=[pilot.pilot_tag_gid, second])

    result = poll_connection(connection)

    assert result.candidates == [only_second, both]
    assert result.tagged == 2


def test_webhook_dispatch_takes_a_task_tagged_with_a_duplicate_pilot_tag(
    connection, pilot, executor
):
    second = pilot.add_tag(pilot.workspace_gid, "pilot")
    gid = pilot.add_task(pilot.workspace_gid, "via the webhook path", tags=[second])

    processed = dispatch_task(connection, gid, source="webhook", runner=lambda p: None)

    assert processed is not None and processed.state == State.CLAIMED


def test_a_pilot_tag_duplicated_after_caching_is_watched_once_the_cache_is_refreshed(
    connection, pilot
):
    poll_connection(connection)
    later = pilot.add_tag(pilot.workspace_gid, "pilot")
    gid = pilot.add_task(pilot.workspace_gid, "tagged with a newer pilot", tags=[later])
    age_the_tag_cache(connection)

    assert poll_connection(connection).candidates == [gid]


def test_a_webhook_for_a_task_with_a_pilot_tag_unknown_to_the_cache_lists_the_tags_again(
    connection, pilot, executor
):
    poll_connection(connection)
    later = pilot.add_tag(pilot.workspace_gid, "pilot")
    gid = pilot.add_task(pilot.workspace_gid, "tagged a moment ago", tags=[later])

    assert dispatch_task(connection, gid, source="webhook", runner=lambda p: None) is not None


def test_status_tags_are_found_by_exact_name_and_the_oldest_is_used(connection, pilot, executor):
    newer = pilot.add_tag(pilot.workspace_gid, "pilot-done")
    oldest = pilot.add_tag(pilot.workspace_gid, "pilot-done", created_at=EARLY)
    pilot.add_tag(pilot.workspace_gid, "Pilot-Done")
    gid = pilot.add_task(pilot.workspace_gid, "report me", tags=["pilot"])

    assert process(connection, gid).state == State.DONE

    assert tags_named(pilot, "pilot-done") == [newer, oldest]  # none created
    assert oldest in pilot._objects[gid]["tags"] and newer not in pilot._objects[gid]["tags"]
    assert tag_gid(connection, "pilot-done") == oldest


def test_a_task_carrying_a_newer_duplicate_status_tag_is_not_taken(connection, pilot):
    pilot.add_tag(pilot.workspace_gid, "pilot-done", created_at=EARLY)
    newer = pilot.add_tag(pilot.workspace_gid, "pilot-done")
    pilot.add_task(pilot.workspace_gid, "already done", tags=["pilot", newer])

    assert poll_connection(connection).candidates == []


def test_a_status_tag_is_created_once_however_many_polls(connection, pilot):
    poll_connection(connection)
    age_the_tag_cache(connection)
    poll_connection(connection)

    wanted = created_names(connection)
    assert {name: len(tags_named(pilot, name)) for name in wanted} == dict.fromkeys(wanted, 1)


# -- telling people --------------------------------------------------------------------------


@pytest.fixture
def duplicated(connection, pilot) -> AsanaConnection:
    pilot.add_tag(pilot.workspace_gid, "pilot")
    pilot.add_tag(pilot.workspace_gid, "pilot-failed")
    pilot.add_tag(pilot.workspace_gid, "pilot-failed")
    poll_connection(connection)
    connection.refresh_from_db()
    return connection


def test_asana_status_says_when_pilot_or_status_tags_are_duplicated(duplicated, capsys):
    call_command("asana", "status")
    out = capsys.readouterr().out
    assert "2 tags named 'pilot' (tasks carrying any of them are taken)" in out
    assert (
        f"2 tags named 'pilot-failed' (pilotsite adds the oldest, {tag_gid(duplicated, 'pilot-failed')})"
        in out
    )


def test_the_integrations_card_says_when_tags_are_duplicated(duplicated, admin_client):
    page = admin_client.get(reverse("admin:index") + "?tab=integrations").content.decode()
    assert "duplicate tag names in this workspace: 2 tags named &#x27;pilot&#x27;" in page


def test_no_duplicate_warning_when_every_name_is_unique(connection, pilot, capsys):
    poll_connection(connection)
    call_command("asana", "status")
    assert "duplicate" not in capsys.readouterr().out
