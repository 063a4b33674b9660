"""Every create pilotsite sends, answered 5xx after Asana applied it, lands exactly once.

The fake applies the request and then answers 500/502/503/504 (as a gateway in front of Asana
can); pilotsite must look before sending the create again."""

import pytest

from integrations.models import AsanaConnection, ProcessedTask, WebhookRegistration
from integrations.pipeline.poll import poll_connection
from integrations.pipeline.report import STARTED_TEXT
from integrations.pipeline.tags import created_names
from integrations.tests.pipeline_fixtures import comment_texts, process, tagged
from integrations.webhooks.registration import register_webhook

State = ProcessedTask.State
STATUSES = ["500", "502", "503", "504"]


@pytest.mark.parametrize("status", STATUSES)
def test_comments_answered_5xx_after_landing_are_posted_once(connection, pilot, executor, status):
    gid = tagged(pilot, "Write the release notes")
    pilot.inject(f"{status}-after-apply", times=2, method="POST", path=r"/stories$")

    assert process(connection, gid).state == State.DONE

    assert comment_texts(pilot, gid) == [
        STARTED_TEXT,
        "Successfully completed: did Write the release notes",
    ]


def test_a_comment_answered_5xx_that_did_not_land_is_sent_again_after_looking(
    connection, pilot, executor
):
    gid = tagged(pilot, "Flaky gateway")
    pilot.inject("503", times=1, method="POST", path=r"/stories$")

    assert process(connection, gid).state == State.DONE

    assert comment_texts(pilot, gid)[0] == STARTED_TEXT
    path = f"/tasks/{gid}/stories"
    sent = [(m, p) for m, p, _ in pilot.requests if p == path]
    # The comment thread is read (GET) before the run starts; then the comment is posted.
    first = sent.index(("POST", path))
    assert sent[first : first + 3] == [("POST", path), ("GET", path), ("POST", path)]


def test_a_failure_comment_answered_5xx_after_landing_is_posted_once(connection, pilot, settings):
    settings.PILOT_EXECUTOR = "integrations.tests.pipeline_fixtures:fail"
    gid = tagged(pilot, "Red build")
    pilot.inject("504-after-apply", times=2, method="POST", path=r"/stories$")

    assert process(connection, gid).state == State.FAILED

    assert comment_texts(pilot, gid) == [STARTED_TEXT, "Failed: RuntimeError: the build is red"]


@pytest.mark.parametrize("status", STATUSES)
def test_an_attachment_answered_5xx_after_landing_is_added_once(
    connection, pilot, settings, status
):
    settings.PILOT_EXECUTOR = "integrations.tests.pipeline_fixtures:succeed_with_link"
    gid = tagged(pilot, "Open a pull request")
    pilot.inject(f"{status}-after-apply", method="POST", path=r"^/attachments$")

    assert process(connection, gid).state == State.DONE

    assert [a["view_url"] for a in pilot.attachments(gid)] == [
        "https://github.com/acme/app/pull/42"
    ]


@pytest.mark.parametrize("status", STATUSES)
def test_status_tags_answered_5xx_after_landing_are_created_once(connection, pilot, status):
    pilot.inject(f"{status}-after-apply", times=3, method="POST", path=r"/tags$")

    assert poll_connection(connection).ok

    names = [t["name"] for t in pilot._records("tag", workspace=pilot.workspace_gid)]
    assert sorted(names) == sorted(["pilot", *created_names(connection)])


@pytest.mark.parametrize("status", STATUSES)
def test_a_webhook_answered_5xx_after_landing_is_created_once(
    fake_asana, transactional_db, live_server, fast_client, status
):
    connection = AsanaConnection.objects.create(
        workspace_gid=fake_asana.workspace_gid, access_token=fake_asana.token
    )
    project = fake_asana.add_project(fake_asana.workspace_gid, "Pilot requests")
    fake_asana.inject(f"{status}-after-apply", method="POST", path=r"^/webhooks$")

    registration = register_webhook(connection, project, live_server.url)

    [webhook] = fake_asana.webhooks()
    assert registration.webhook_gid == webhook["gid"]
    assert registration.state == WebhookRegistration.State.ACTIVE
    assert WebhookRegistration.objects.count() == 1
