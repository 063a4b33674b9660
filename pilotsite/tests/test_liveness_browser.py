"""In Chromium: the card's moving parts refresh themselves; a worker that starts shows up
without a reload."""

import pytest
from django.utils import timezone

from integrations.models import AsanaConnection, ProcessedTask
from pilotsite.liveness import Kind, beat

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_card_notices_a_worker_starting_without_a_reload(
    live_server, admin_user, chromium_page
):
    connection = AsanaConnection.objects.create(
        workspace_gid="1234", workspace_name="Acme", access_token="1/123:" + "a" * 32
    )
    # A task in progress makes the section look again every 3 s.
    ProcessedTask.objects.create(
        connection=connection, task_gid="77", state=ProcessedTask.State.RUNNING
    )
    page = chromium_page
    page.goto(f"{live_server.url}/admin/login/?next=/admin/%3Ftab%3Dintegrations")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "password")
    page.click("input[type=submit]")
    warning = page.locator(f"#live-{connection.pk} .pilot-no-worker")
    assert "no worker is running" in warning.inner_text()

    beat(Kind.QCLUSTER, started_at=timezone.now(), detail="pilotsite worker")

    page.locator(f"#live-{connection.pk} .worker-qcluster.worker-alive").wait_for(timeout=15000)
    assert page.locator(f"#live-{connection.pk} .pilot-no-worker").count() == 0
