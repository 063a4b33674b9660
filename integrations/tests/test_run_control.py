"""Runs, progress and stop: a real `runpollers` process runs the example executor
(examples/progress_executor.py) against the fake Asana over HTTP; the test stops it from the
admin or from Asana (through a poll and through a webhook delivery) and checks that the whole
process group is gone, the task keeps no pilot tags, and exactly one stop comment is posted."""

import os
import sys
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from integrations.asana.client import client_for
from integrations.models import AsanaMapping, Employee, ProcessedTask, Run, WebhookRegistration
from integrations.pipeline.claims import claim
from integrations.pipeline.outcome import finish_report
from integrations.pipeline.poll import poll_connection
from integrations.pipeline.progress import PROGRESS_PREFIX, progress_comment_text
from integrations.pipeline.report import STARTED_TEXT, STOPPED_PREFIX
from integrations.pipeline.run_views import elapsed_text
from integrations.tests import procs
from integrations.tests.pipeline_fixtures import comment_texts, process, tagged
from integrations.tests.webhook_support import drain_queue
from integrations.webhooks.registration import register_webhook

State = ProcessedTask.State
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "progress_executor.py"
FAST = {"PILOT_PROGRESS_SECONDS": "0.3", "PILOT_STOP_CHECK_SECONDS": "0.1"}


def example(*args: str) -> str:
    return f"{sys.executable} {EXAMPLE} {' '.join(args)}"


def group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


# -- progress (in this process) ---------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_progress_lines_reach_the_run_and_one_edited_asana_comment(connection, pilot, settings):
    settings.PILOT_EXECUTOR, settings.PILOT_EXECUTOR_COMMAND = "", example("--pause", "0.4")
    settings.PILOT_PROGRESS_SECONDS, settings.PILOT_STOP_CHECK_SECONDS = 0.2, 0.05
    gid = tagged(pilot, "Write the docs")
    assert process(connection, gid).state == State.DONE
    run = Run.objects.get()
    assert [line["text"] for line in run.progress] == ["Step 1 of 3", "Step 2 of 3", "Step 3 of 3"]
    assert run.outcome == Run.Outcome.DONE and run.trigger == Run.Trigger.POLL
    progress = [c for c in pilot.comments(gid) if c["text"].startswith(PROGRESS_PREFIX)]
    assert len(progress) == 1 and progress[0]["gid"] == run.progress_story_gid
    assert progress[0]["is_edited"]


@pytest.mark.django_db(transaction=True)
def test_the_progress_comment_ends_with_the_runs_last_line(connection, pilot, settings):
    # One write per hour at most: the lines after the first wait for the run's end.
    settings.PILOT_EXECUTOR = ""
    settings.PILOT_EXECUTOR_COMMAND = example("--steps", "4", "--pause", "0.3")
    settings.PILOT_PROGRESS_SECONDS, settings.PILOT_STOP_CHECK_SECONDS = 3600, 0.05
    gid = tagged(pilot, "Long job")
    assert process(connection, gid).state == State.DONE
    run = Run.objects.get()
    [progress] = [c for c in pilot.comments(gid) if c["text"].startswith(PROGRESS_PREFIX)]
    assert progress["gid"] == run.progress_story_gid
    assert progress["text"].endswith("• Step 4 of 4") and progress["text"] == run.progress_shown
    # Brought up to date before the outcome is reported.
    assert comment_texts(pilot, gid)[-1].startswith("Successfully completed")


def _progress_comment(connection, pilot, gid: str, lines: list[str], shown: str) -> Run:
    """A run that reached the report with these progress lines and a progress comment in
    Asana that last showed `shown`."""
    story = pilot.person_comments(gid, pilot.user_gid, shown)
    row = claim(connection, gid, source="poll")
    assert row is not None
    ProcessedTask.objects.filter(pk=row.pk).update(
        state=State.RUNNING, started_at=timezone.now(), outcome="success", result_summary="ok"
    )
    return Run.objects.create(
        processed_task=row,
        number=row.attempts,
        trigger=Run.Trigger.POLL,
        progress=[{"at": "", "text": line} for line in lines],
        progress_story_gid=story,
        progress_shown=shown,
    )


def _progress_edits(pilot) -> list[str]:
    return [p for method, p, _ in pilot.requests if method == "PUT" and p.startswith("/stories/")]


def test_the_runs_end_edits_a_progress_comment_that_lags_once_even_if_reported_again(
    connection, pilot
):
    poll_connection(connection)
    gid = tagged(pilot, "Lagging comment")
    run = _progress_comment(connection, pilot, gid, ["one", "two"], progress_comment_text(["one"]))
    row = ProcessedTask.objects.get(task_gid=gid)
    with client_for(connection) as client:
        assert finish_report(row, client)
        row.refresh_from_db()
        assert row.state == State.DONE
        # A retried report (recovery after a crash, say) sends nothing again.
        finish_report(row, client)
    assert _progress_edits(pilot) == [f"/stories/{run.progress_story_gid}"]
    assert pilot.comments(gid)[0]["text"] == progress_comment_text(["one", "two"])


def test_a_progress_comment_already_showing_the_last_line_costs_no_request_at_the_end(
    connection, pilot
):
    poll_connection(connection)
    gid = tagged(pilot, "Comment up to date")
    _progress_comment(connection, pilot, gid, ["one", "two"], progress_comment_text(["one", "two"]))
    row = ProcessedTask.objects.get(task_gid=gid)
    with client_for(connection) as client:
        assert finish_report(row, client)
    assert _progress_edits(pilot) == []


@pytest.mark.django_db(transaction=True)
def test_progress_edits_asana_fails_leave_progress_in_the_admin(connection, pilot, settings):
    settings.PILOT_EXECUTOR, settings.PILOT_EXECUTOR_COMMAND = "", example("--pause", "0.3")
    settings.PILOT_PROGRESS_SECONDS, settings.PILOT_STOP_CHECK_SECONDS = 0.1, 0.05
    settings.ASANA_MAX_RETRIES = 0
    pilot.misbehave("500", path=r"^/stories/", method="PUT")
    gid = tagged(pilot, "Edits refused")
    assert process(connection, gid).state == State.DONE
    assert len(Run.objects.get().progress) == 3
    assert sum(t.startswith(PROGRESS_PREFIX) for t in comment_texts(pilot, gid)) == 1


def test_a_python_executor_gets_a_progress_callable(connection, pilot, settings):
    settings.PILOT_EXECUTOR = "integrations.tests.test_run_control:reports_progress"
    settings.PILOT_STOP_CHECK_SECONDS = 0.05
    gid = tagged(pilot, "In-process")
    assert process(connection, gid).state == State.DONE
    assert [line["text"] for line in Run.objects.get().progress] == ["reading", "writing"]


def reports_progress(task, progress):
    progress("reading")
    progress("writing")
    return {"summary": "done"}


# -- stop (a real runpollers process runs the executor) ------------------------------------


@pytest.fixture
def running(connection, pilot, tmp_path):
    """A task being executed by a `runpollers` process: (task gid, its run, process group).
    The process polls once (and claims the task): the stop under test is the only one."""
    connection.poll_interval = 3600
    connection.save()
    pid_file = tmp_path / "group"
    command = example("--steps", "100", "--pause", "0.2", "--child", "--pid-file", str(pid_file))
    gid = tagged(pilot, "Long job")
    env = procs.child_env(pilot.base_url, PILOT_EXECUTOR_COMMAND=command, **FAST)
    proc = procs.start(["runpollers"], env, tmp_path / "runpollers.log")
    try:
        run = _first_progress()
        group = int(procs.wait_for(lambda: pid_file.exists() and pid_file.read_text().strip()))
        yield gid, run, group
    finally:
        procs.stop(proc)


def _first_progress() -> Run:
    def found():
        run = Run.objects.first()
        return run if run is not None and run.progress else None

    return procs.wait_for(found, what="the run's first progress line")


def _stopped(gid: str, group: int) -> ProcessedTask:
    row = procs.wait_for(
        lambda: ProcessedTask.objects.filter(task_gid=gid, state=State.STOPPED).first(),
        what="the task to be stopped",
    )
    procs.wait_for(lambda: not group_alive(group), timeout=15, what="the process group to end")
    return row


def _asana_after_stop(pilot, gid: str) -> list[str]:
    assert pilot.tag_names(gid) == []  # pilot, pilot-stop and pilot-in-progress are gone
    texts = comment_texts(pilot, gid)
    assert texts[0] == STARTED_TEXT
    stops = [t for t in texts if t.startswith(STOPPED_PREFIX)]
    assert len(stops) == 1 and not any(t.startswith(("Failed", "Successfully")) for t in texts)
    return stops


@pytest.mark.django_db(transaction=True)
def test_stop_button_ends_the_process_group_and_says_who(running, pilot, admin_client):
    gid, run, group = running
    page = admin_client.get(reverse("admin:integrations:run", args=[run.pk]))
    assert b"Step 1 of 100" in page.content and b'id="run-stop"' in page.content
    admin_client.post(reverse("admin:integrations:run-stop", args=[run.pk]))
    _stopped(gid, group)
    [stop] = _asana_after_stop(pilot, gid)
    assert stop.startswith("Stopped by admin (pressed Stop in pilotsite)")
    run.refresh_from_db()
    assert run.outcome == Run.Outcome.STOPPED and run.finished_at


@pytest.fixture
def ann(connection, pilot) -> str:
    """Ann, a mapped employee who works in Asana."""
    user = pilot.add_user("Ann Asana", "ann@example.com", [pilot.workspace_gid])
    employee = Employee.objects.create(name="Ann Lee", email="ann@example.com")
    AsanaMapping.objects.create(employee=employee, connection=connection, asana_user_gid=user)
    return user


@pytest.fixture
def hook(connection, pilot, live_server) -> WebhookRegistration:
    """A webhook Asana delivers to over HTTP (the fake posts to the live server)."""
    project = pilot.add_project(pilot.workspace_gid, "Pilot requests")
    return register_webhook(connection, project, live_server.url)


# Each Asana signal: what Ann does in Asana, the event Asana delivers for it, and how the
# stop comment names it.
UNTAGGED = ({"remove": ["pilot"]}, "tags", "removed the pilot tag in Asana")
COMPLETED = ({"completed": True}, "completed", "completed the task in Asana")
STOP_TAGGED = ({"add": ["pilot-stop"]}, "tags", "added the pilot-stop tag in Asana")


def _stop_through_a_poll(running, connection, pilot, ann, signal) -> None:
    gid, _, group = running
    change, _, how = signal
    pilot.person_changes_task(gid, ann, **change)
    assert poll_connection(connection).stops == [gid]
    _stopped(gid, group)
    [stop] = _asana_after_stop(pilot, gid)
    assert stop.startswith(f"Stopped by Ann Lee ({how})")


def _stop_through_a_webhook_delivery(running, hook, pilot, ann, signal) -> None:
    gid, run, group = running
    change, field, how = signal
    pilot.person_changes_task(gid, ann, **change)
    event = pilot.event(gid, "changed", field=field) | {
        "user": {"gid": ann, "resource_type": "user"}
    }
    assert pilot.deliver(hook.webhook_gid, [event]) == 200
    assert drain_queue() == ["handle_delivery"]
    run.refresh_from_db()
    assert run.stop_requested_by == f"Ann Lee ({how})"
    _stopped(gid, group)
    [stop] = _asana_after_stop(pilot, gid)
    assert stop.startswith(f"Stopped by Ann Lee ({how})")


@pytest.mark.django_db(transaction=True)
def test_removing_the_pilot_tag_stops_the_run_through_a_poll(running, connection, pilot, ann):
    _stop_through_a_poll(running, connection, pilot, ann, UNTAGGED)


@pytest.mark.django_db(transaction=True)
def test_completing_the_task_stops_the_run_through_a_poll(running, connection, pilot, ann):
    _stop_through_a_poll(running, connection, pilot, ann, COMPLETED)


@pytest.mark.django_db(transaction=True)
def test_adding_pilot_stop_stops_the_run_through_a_poll(running, connection, pilot, ann):
    _stop_through_a_poll(running, connection, pilot, ann, STOP_TAGGED)


@pytest.mark.django_db(transaction=True)
def test_removing_the_pilot_tag_stops_the_run_through_a_webhook_delivery(running, hook, pilot, ann):
    _stop_through_a_webhook_delivery(running, hook, pilot, ann, UNTAGGED)


@pytest.mark.django_db(transaction=True)
def test_completing_the_task_stops_the_run_through_a_webhook_delivery(running, hook, pilot, ann):
    _stop_through_a_webhook_delivery(running, hook, pilot, ann, COMPLETED)


@pytest.mark.django_db(transaction=True)
def test_adding_pilot_stop_stops_the_run_through_a_webhook_delivery(running, hook, pilot, ann):
    _stop_through_a_webhook_delivery(running, hook, pilot, ann, STOP_TAGGED)


@pytest.mark.django_db(transaction=True)
def test_a_stop_that_arrives_while_the_run_reports_neither_undoes_nor_repeats_the_report(
    connection, pilot, ann, admin_client, tmp_path
):
    connection.poll_interval = 3600
    connection.save()
    gid = tagged(pilot, "Quick job")
    # The report's second step (pilot-in-progress removed, after pilot-done was added) waits
    # in Asana while the stops arrive.
    held = pilot.hold(method="POST", path=rf"^/tasks/{gid}/removeTag$")
    env = procs.child_env(pilot.base_url, PILOT_EXECUTOR_COMMAND=example("--steps", "1"), **FAST)
    proc = procs.start(["runpollers"], env, tmp_path / "runpollers.log")
    try:
        assert held.arrived.wait(60), "the report never reached Asana"
        run = Run.objects.get()
        assert ProcessedTask.objects.get(task_gid=gid).outcome == "success"
        pilot.person_changes_task(gid, ann, add=["pilot-stop"])
        assert poll_connection(connection).stops == []
        admin_client.post(reverse("admin:integrations:run-stop", args=[run.pk]))
        held.release()
        procs.wait_for(
            lambda: ProcessedTask.objects.filter(task_gid=gid, state=State.DONE).exists(),
            what="the report to finish",
        )
    finally:
        held.release()
        procs.stop(proc)
    run.refresh_from_db()
    assert run.outcome == Run.Outcome.DONE and run.stop_requested_at is None
    texts = comment_texts(pilot, gid)
    assert [t for t in texts if t.startswith("Successfully")] == [
        "Successfully completed: Finished 1 steps on Quick job"
    ]
    assert not any(t.startswith(STOPPED_PREFIX) for t in texts)
    assert set(pilot.tag_names(gid)) == {"pilot", "pilot-done", "pilot-stop"}
    assert pilot.task(gid)["completed"]


@pytest.mark.django_db(transaction=True)
def test_a_stopped_task_runs_again_only_when_tagged_again(running, connection, pilot, admin_client):
    gid, run, group = running
    admin_client.post(reverse("admin:integrations:run-stop", args=[run.pk]))
    _stopped(gid, group)
    assert poll_connection(connection).candidates == []
    pilot.person_changes_task(gid, pilot.user_gid, add=["pilot"])
    connection.last_poll_at = None
    assert poll_connection(connection).candidates == [gid]


def test_stop_is_refused_once_the_outcome_is_recorded(connection, pilot, executor, admin_client):
    gid = tagged(pilot, "Quick")
    process(connection, gid)
    run = Run.objects.get()
    response = admin_client.post(reverse("admin:integrations:run-stop", args=[run.pk]))
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.stop_requested_at is None and run.outcome == Run.Outcome.DONE
    assert not any(t.startswith(STOPPED_PREFIX) for t in comment_texts(pilot, gid))


def test_the_run_page_needs_the_view_permission(
    connection, pilot, executor, client, django_user_model
):
    gid = tagged(pilot, "Private")
    process(connection, gid)
    run = Run.objects.get()
    outsider = django_user_model.objects.create_user("outsider", password="pw", is_staff=True)
    client.force_login(outsider)
    assert client.get(reverse("admin:integrations:run", args=[run.pk])).status_code == 403
    assert client.post(reverse("admin:integrations:run-stop", args=[run.pk])).status_code == 403


def test_the_run_page_gives_elapsed_time_in_hours_minutes_and_seconds():
    assert [elapsed_text(s) for s in (0, 45.9, 125, 3725, 90000)] == [
        "0 s",
        "45 s",
        "2 min 05 s",
        "1 h 02 min",
        "25 h 00 min",
    ]
