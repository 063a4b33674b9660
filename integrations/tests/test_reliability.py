"""The issue's reliability properties, in-process against the fake over HTTP.
(Killed processes and signals are in test_runpollers.py, PostgreSQL concurrency in
test_concurrency_pg.py.)"""

from datetime import datetime, timedelta

from django.contrib import admin
from django.contrib.auth.models import AnonymousUser
from django.core.management import call_command
from django.db.models import F
from django.utils import timezone

from integrations.admin import ProcessedTaskAdmin
from integrations.models import AuditLog, ProcessedTask, Run
from integrations.pipeline.claims import claim
from integrations.pipeline.outcome import INTERRUPTED
from integrations.pipeline.poll import poll_connection
from integrations.pipeline.recovery import recover_stale
from integrations.pipeline.report import STARTED_TEXT
from integrations.pipeline.run_views import elapsed_text, run_context
from integrations.pipeline.runs import run_claimed
from integrations.tests.pipeline_fixtures import (
    comment_texts,
    interval_passes,
    process,
    tag_gid,
    tagged,
)

State = ProcessedTask.State
DONE_TEXT = "Successfully completed: did {}"


def system_stories(fake, gid: str) -> list[str]:
    return [s["text"] for s in fake._records("story", target=gid, type="system")]


def assert_done_once(fake, gid: str, name: str) -> None:
    assert comment_texts(fake, gid) == [STARTED_TEXT, DONE_TEXT.format(name)]
    assert sorted(fake.tag_names(gid)) == ["pilot", "pilot-done"]
    assert system_stories(fake, gid) == [
        "added to pilot-in-progress",
        "added to pilot-done",
        "removed from pilot-in-progress",
    ]


# -- restart ------------------------------------------------------------------------------------


def test_restart_restores_dispatched_tasks_and_runs_nothing_again(
    transactional_db, connection, pilot, executor
):
    gids = [tagged(pilot, f"task {i}") for i in range(3)]
    call_command("runpollers", "--once")
    assert sorted(executor) == sorted(gids)
    comments = {gid: comment_texts(pilot, gid) for gid in gids}
    # A new process, polls due again: only the database remembers what was dispatched.
    interval_passes(connection)
    call_command("runpollers", "--once")
    interval_passes(connection)
    call_command("runpollers", "--once", "--workers", "2")
    assert pilot.requests[-1][1] == f"/workspaces/{pilot.workspace_gid}/tasks/search"  # polled
    assert sorted(executor) == sorted(gids)
    assert {gid: comment_texts(pilot, gid) for gid in gids} == comments


def test_restart_with_tags_removed_in_asana_still_runs_nothing_again(connection, pilot, executor):
    gid = tagged(pilot, "done, then someone removed pilot-done")
    process(connection, gid)
    pilot.person_changes_task(
        gid, pilot.user_gid, remove=["pilot-done", "pilot-in-progress"], completed=False
    )
    assert poll_connection(connection).candidates == []


# -- interrupted executions -------------------------------------------------------------------


def interrupted_run(connection, pilot, gid: str, *, lease_left: timedelta) -> ProcessedTask:
    """What a process killed mid-execution leaves: a running row, a started task in Asana."""
    poll_connection(connection)  # resolves and caches the status tags
    connection.refresh_from_db()
    pilot.tag_task(gid, tag_gid(connection, "pilot-in-progress"))
    now = timezone.now()
    return ProcessedTask.objects.create(
        connection=connection,
        task_gid=gid,
        state=State.RUNNING,
        claimed_by="runpollers@gone:1:dead",
        claimed_at=now - timedelta(minutes=5),
        started_at=now - timedelta(minutes=5),
        lease_expires_at=now + lease_left,
        report_steps=["tag:pilot-in-progress", "comment:started"],
        attempts=1,
    )


def test_stale_running_task_is_reported_interrupted_and_becomes_retryable(
    connection, pilot, executor
):
    gid = tagged(pilot, "killed mid-run")
    interrupted_run(connection, pilot, gid, lease_left=timedelta(seconds=-1))
    assert recover_stale() == 1
    row = ProcessedTask.objects.get(task_gid=gid)
    assert row.state == State.FAILED and row.error.startswith("interrupted")
    assert sorted(pilot.tag_names(gid)) == ["pilot", "pilot-failed"]
    assert comment_texts(pilot, gid) == [f"Failed: {INTERRUPTED}"]
    assert executor == []  # reported, not silently re-run

    pilot.person_changes_task(gid, pilot.user_gid, remove=["pilot-failed"])
    assert poll_connection(connection).candidates == [gid]
    assert process(connection, gid).state == State.DONE
    assert executor == [gid]


def test_running_task_within_its_lease_is_left_alone(connection, pilot, executor):
    gid = tagged(pilot, "still running elsewhere")
    interrupted_run(connection, pilot, gid, lease_left=timedelta(seconds=60))
    assert recover_stale() == 0
    assert ProcessedTask.objects.get(task_gid=gid).state == State.RUNNING
    assert comment_texts(pilot, gid) == []
    assert poll_connection(connection).candidates == []


def test_stale_claim_that_never_started_is_released(connection, pilot, executor):
    gid = tagged(pilot, "claimed, never started")
    processed = claim(connection, gid, source="poll")
    assert processed is not None
    ProcessedTask.objects.filter(pk=processed.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert recover_stale() == 1
    assert not ProcessedTask.objects.exists()
    assert comment_texts(pilot, gid) == []
    assert run_claimed(processed.pk, processed.claimed_by) is None


# -- Asana faults in the middle of reporting ------------------------------------------------


def test_rate_limit_while_commenting_is_retried_without_duplicates(connection, pilot, executor):
    gid = tagged(pilot, "rate limited")
    pilot.inject("429", times=2, method="POST", path=r"/stories$", retry_after=0)
    assert process(connection, gid).state == State.DONE
    assert_done_once(pilot, gid, "rate limited")


def test_server_errors_while_tagging_are_retried_without_duplicates(
    connection, pilot, executor, settings
):
    settings.ASANA_MAX_RETRIES = 0  # the reporter's own retries, not the client's
    gid = tagged(pilot, "flaky tags")
    pilot.inject("500", times=2, method="POST", path=r"/addTag$")
    pilot.inject("503", times=1, method="POST", path=r"/removeTag$")
    assert process(connection, gid).state == State.DONE
    assert_done_once(pilot, gid, "flaky tags")
    failures = AuditLog.objects.filter(outcome="error").values_list("action", flat=True)
    assert sorted(failures) == ["asana.add_tag", "asana.add_tag", "asana.remove_tag"]


def test_comment_that_timed_out_after_landing_is_not_posted_again(
    connection, pilot, executor, settings
):
    settings.ASANA_TIMEOUT = 0.5
    gid = tagged(pilot, "slow comment")
    pilot.inject("timeout-after-apply", times=2, method="POST", path=r"/stories$", delay=0.8)
    assert process(connection, gid).state == State.DONE
    assert_done_once(pilot, gid, "slow comment")


def test_comment_whose_connection_dropped_before_landing_is_posted_once(
    connection, pilot, executor
):
    gid = tagged(pilot, "dropped comment")
    pilot.inject("drop", times=2, method="POST", path=r"/stories$")
    assert process(connection, gid).state == State.DONE
    assert_done_once(pilot, gid, "dropped comment")


def test_attachment_that_timed_out_after_landing_is_not_added_again(
    connection, pilot, executor, settings
):
    settings.PILOT_EXECUTOR = "integrations.tests.pipeline_fixtures:succeed_with_link"
    gid = tagged(pilot, "slow attachment")
    pilot.inject("timeout-after-apply", times=1, method="POST", path=r"^/attachments$")
    assert process(connection, gid).state == State.DONE
    assert len(pilot.attachments(gid)) == 1


def test_failure_report_under_faults_ends_failed_exactly_once(connection, pilot, settings):
    settings.PILOT_EXECUTOR = "integrations.tests.pipeline_fixtures:fail"
    gid = tagged(pilot, "fails under faults")
    pilot.inject("500", times=1, method="POST", path=r"/addTag$")
    pilot.inject("drop", times=1, method="POST", path=r"/stories$")
    pilot.inject("timeout-after-apply", times=1, method="POST", path=r"/stories$")
    assert process(connection, gid).state == State.FAILED
    assert comment_texts(pilot, gid) == [STARTED_TEXT, "Failed: RuntimeError: the build is red"]
    assert sorted(pilot.tag_names(gid)) == ["pilot", "pilot-failed"]


def test_report_cut_short_by_an_outage_is_finished_by_recovery(
    connection, pilot, executor, settings
):
    settings.ASANA_MAX_RETRIES = 0
    settings.PILOT_EXECUTOR = "integrations.tests.pipeline_fixtures:succeed_with_link"
    gid = tagged(pilot, "outage")
    pilot.inject("503", times=3, method="POST", path=r"^/attachments$")
    row = process(connection, gid)
    assert row.state == State.RUNNING and row.outcome == "success"
    assert recover_stale() == 1
    row.refresh_from_db()
    assert row.state == State.DONE
    assert executor == [gid]
    assert len(pilot.attachments(gid)) == 1
    assert [c for c in comment_texts(pilot, gid) if c.startswith("Successfully")] == [
        "Successfully completed — PR #42\nOpened a pull request"
    ]
    assert pilot.task(gid)["completed"] is True


def test_a_report_finished_by_recovery_keeps_the_run_duration_to_when_the_executor_ended(
    connection, pilot, executor, settings, rf
):
    settings.ASANA_MAX_RETRIES = 0
    settings.PILOT_EXECUTOR = "integrations.tests.pipeline_fixtures:succeed_with_link"
    gid = tagged(pilot, "outage, then downtime")
    pilot.inject("503", times=3, method="POST", path=r"^/attachments$")
    row = process(connection, gid)
    assert row.state == State.RUNNING
    took = _span(row.started_at, row.executed_at)
    # The process died there and recovery comes ten minutes later.
    downtime = timedelta(minutes=10)
    moved = {f: F(f) - downtime for f in ("claimed_at", "started_at", "executed_at")}
    ProcessedTask.objects.filter(pk=row.pk).update(**moved)
    Run.objects.filter(processed_task=row).update(
        started_at=F("started_at") - downtime, executed_at=F("executed_at") - downtime
    )

    assert recover_stale() == 1

    row.refresh_from_db()
    run = row.runs.get()
    assert row.state == State.DONE and _span(row.started_at, row.finished_at) >= downtime
    assert _span(run.started_at, run.finished_at) >= downtime
    ran = ProcessedTaskAdmin(ProcessedTask, admin.site).ran(row)
    assert ran == f"{took.total_seconds():.1f} s"
    request = rf.get("/")
    request.user = AnonymousUser()
    expected = elapsed_text(_span(run.started_at, run.executed_at).total_seconds())
    assert run_context(run, request)["elapsed"] == expected != elapsed_text(downtime.seconds)


def _span(start: datetime | None, end: datetime | None) -> timedelta:
    assert start is not None and end is not None
    return end - start


# -- tasks that disappear ---------------------------------------------------------------------


def test_task_deleted_between_listing_and_claiming_is_skipped_and_the_cycle_goes_on(
    connection, pilot, executor
):
    gids = [tagged(pilot, f"task {i}") for i in range(3)]
    candidates = poll_connection(connection).candidates
    pilot.delete_task(gids[1])
    for gid in candidates:
        process(connection, gid)
    states = dict(ProcessedTask.objects.values_list("task_gid", "state"))
    assert states == {gids[0]: State.DONE, gids[1]: State.SKIPPED, gids[2]: State.DONE}
    skipped = ProcessedTask.objects.get(task_gid=gids[1])
    assert skipped.skip_reason.startswith("deleted or not accessible in Asana")
    assert sorted(executor) == sorted([gids[0], gids[2]])


def test_task_deleted_during_execution_is_closed_with_a_note(connection, pilot, settings):
    settings.PILOT_EXECUTOR = "integrations.tests.pipeline_fixtures:delete_the_task"
    gid = tagged(pilot, "deleted while running")
    row = process(connection, gid)
    assert row.state == State.DONE
    assert "could not report in Asana" in row.error
    assert recover_stale() == 0
