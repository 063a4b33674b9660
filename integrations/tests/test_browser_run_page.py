"""In Chromium at 1,366 px: the run page of a task that a real `runpollers` process is
executing (examples/progress_executor.py against the fake Asana over HTTP) shows progress
lines as they come, and its Stop button ends the executor's whole process group. Screenshots
go to artifacts/ (the README shows copies from docs/screenshots/)."""

import pytest
from django.urls import reverse

from integrations.models import ProcessedTask, Run
from integrations.pipeline.report import STARTED_TEXT, STOPPED_PREFIX
from integrations.tests import procs
from integrations.tests.pipeline_fixtures import comment_texts, tagged
from integrations.tests.test_browser_screens import _shot, _sign_in
from integrations.tests.test_run_control import FAST, example, group_alive

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
# Generous: the machine running the suite may be busy with other processes.
WAIT_MS = 60_000


def test_the_run_page_shows_progress_as_it_comes_and_stop_ends_the_executor(
    live_server, pilot, connection, admin_user, chromium_page, tmp_path
):
    admin_user.first_name, admin_user.last_name = "Ada", "Admin"
    admin_user.save()
    pid_file = tmp_path / "group"
    command = example("--steps", "100", "--pause", "0.5", "--child", "--pid-file", str(pid_file))
    gid = tagged(pilot, "Translate the onboarding emails")
    env = procs.child_env(
        pilot.base_url,
        PILOT_EXECUTOR_COMMAND=command,
        PILOTSITE_PUBLIC_URL=live_server.url,
        **FAST,
    )
    proc = procs.start(["runpollers"], env, tmp_path / "runpollers.log")
    try:
        run = procs.wait_for(
            lambda: Run.objects.exclude(progress=[]).first(), what="the first progress line"
        )
        group = int(procs.wait_for(lambda: pid_file.exists() and pid_file.read_text().strip()))
        page = chromium_page
        _sign_in(page, live_server.url)
        page.wait_for_selector(".pilot-tabs")
        page.goto(live_server.url + reverse("admin:integrations:run", args=[run.pk]))
        page.locator(".run-status", has_text="running").wait_for(timeout=WAIT_MS)
        shown = page.locator(".run-progress li").count()
        # Lines printed after the page was loaded appear on it without a reload.
        page.locator(".run-progress li").nth(shown + 1).wait_for(timeout=WAIT_MS)
        _shot(page, "run-page-live")

        page.get_by_role("button", name="Stop", exact=True).click()
        page.locator(".messagelist", has_text="Stop requested").wait_for(timeout=WAIT_MS)
        page.locator(".run-status", has_text="stopped").wait_for(timeout=WAIT_MS)
        procs.wait_for(lambda: not group_alive(group), what="the executor's process group to end")
        assert page.get_by_role("button", name="Stop", exact=True).count() == 0
        _shot(page, "run-page-stopped")

        row = ProcessedTask.objects.get(task_gid=gid)
        assert row.state == ProcessedTask.State.STOPPED
        run.refresh_from_db()
        assert run.outcome == Run.Outcome.STOPPED
        assert pilot.tag_names(gid) == []  # no pilot-done, no pilot-failed, nothing left
        texts = comment_texts(pilot, gid)
        assert texts[0].startswith(STARTED_TEXT)
        stops = [t for t in texts if t.startswith(STOPPED_PREFIX)]
        assert len(stops) == 1 and stops[0].startswith(
            "Stopped by Ada Admin (pressed Stop in pilotsite)"
        )
        assert not any(t.startswith(("Failed", "Successfully")) for t in texts)

        page.goto(
            live_server.url + reverse("admin:integrations_processedtask_change", args=[row.pk])
        )
        page.get_by_role("link", name="Run 1").wait_for()
        _shot(page, "processed-task")
    finally:
        procs.stop(proc)
