"""In Chromium: a task waiting for approval is approved on its admin page with a note, and
runs; screenshots of the page before and after go to artifacts/."""

from pathlib import Path

import pytest

from integrations.models import AsanaConnection, ProcessedTask
from integrations.pipeline.convert import AWAITING_TAG
from integrations.pipeline.report import STARTED_TEXT
from integrations.tests.pipeline_fixtures import comment_texts, process, tagged
from integrations.tests.webhook_support import drain_queue

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_approve_a_waiting_task_with_a_note_in_the_browser(
    live_server, connection, pilot, executor, admin_user, chromium_page
):
    connection.rollout_mode = AsanaConnection.RolloutMode.APPROVAL
    connection.save()
    gid = tagged(pilot, "Deploy the hotfix")
    waiting = process(connection, gid)
    assert AWAITING_TAG in pilot.tag_names(gid)
    page = chromium_page
    page.goto(
        f"{live_server.url}/admin/login/?next="
        f"/admin/integrations/processedtask/{waiting.pk}/change/"
    )
    page.fill("#id_username", "admin")
    page.fill("#id_password", "password")
    page.click("input[type=submit]")
    page.wait_for_selector("#approval")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "approval-waiting.png"), full_page=True)

    page.get_by_label("Note (optional, posted as a comment in Asana)").fill("Low risk")
    page.get_by_role("button", name="Approve", exact=True).click()
    page.wait_for_selector("text=was approved")
    page.screenshot(path=str(ARTIFACTS / "approval-approved.png"), full_page=True)

    drain_queue()
    assert ProcessedTask.objects.get(pk=waiting.pk).state == ProcessedTask.State.DONE
    assert executor == [gid]
    assert comment_texts(pilot, gid)[1] == (
        f"{STARTED_TEXT} (approved by admin (in pilotsite): Low risk)"
    )
