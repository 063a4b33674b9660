"""Claim, execute and report, in-process against the fake Asana over HTTP."""

from django_q.models import OrmQ, Schedule

from integrations.models import AuditLog, ProcessedTask
from integrations.pipeline import jobs
from integrations.pipeline.claims import claim
from integrations.pipeline.dispatch import dispatch_task
from integrations.pipeline.poll import poll_connection
from integrations.pipeline.report import STARTED_TEXT, success_html
from integrations.pipeline.retry import release_skipped, retry_failed
from integrations.pipeline.runs import run_claimed
from integrations.tests.pipeline_fixtures import comment_texts, process, tagged

State = ProcessedTask.State
PR_URL = "https://github.com/acme/app/pull/42"


def audited(gid: str) -> list[tuple[str, str]]:
    rows = AuditLog.objects.filter(target=f"task {gid}").order_by("id")
    return list(rows.values_list("action", "detail"))


def run_now(processed: ProcessedTask) -> None:
    run_claimed(processed.pk, processed.claimed_by)


# -- claiming ---------------------------------------------------------------------------


def test_first_claim_wins_and_a_second_gets_nothing(connection):
    assert claim(connection, "111", source="poll") is not None
    assert claim(connection, "111", source="poll") is None
    assert ProcessedTask.objects.filter(task_gid="111").count() == 1


def test_failed_task_is_claimed_again_by_one_claimant_only(connection):
    ProcessedTask.objects.create(connection=connection, task_gid="111", state=State.FAILED)
    again = claim(connection, "111", source="poll")
    assert again is not None and again.state == State.CLAIMED and again.attempts == 1
    assert claim(connection, "111", source="poll") is None


def test_done_running_and_skipped_tasks_are_not_claimed(connection):
    for gid, state in (("1", State.DONE), ("2", State.RUNNING), ("3", State.SKIPPED)):
        ProcessedTask.objects.create(connection=connection, task_gid=gid, state=state)
        assert claim(connection, gid, source="poll") is None


# -- success ------------------------------------------------------------------------------


def test_successful_task_is_reported_done_and_completed(connection, pilot, executor):
    gid = tagged(pilot, "Write the release notes")
    processed = process(connection, gid)
    assert processed.state == State.DONE
    assert executor == [gid]
    assert sorted(pilot.tag_names(gid)) == ["pilot", "pilot-done"]
    assert comment_texts(pilot, gid) == [
        "Pilot started working on this task",
        "Successfully completed: did Write the release notes",
    ]
    assert pilot.task(gid)["completed"] is True
    assert processed.result_summary == "did Write the release notes"
    assert processed.task_name == "Write the release notes"
    assert processed.permalink_url == pilot.task(gid)["permalink_url"]
    assert processed.started_at and processed.finished_at and processed.lease_expires_at is None


def test_every_mutation_is_audited(connection, pilot, executor):
    gid = tagged(pilot, "audited")
    process(connection, gid)
    actions = list(
        AuditLog.objects.filter(target=f"task {gid}")
        .order_by("id")
        .values_list("action", "outcome")
    )
    assert actions == [
        ("asana.add_tag", "ok"),
        ("asana.comment", "ok"),
        ("asana.add_tag", "ok"),
        ("asana.remove_tag", "ok"),
        ("asana.comment", "ok"),
        ("asana.complete_task", "ok"),
    ]


def test_every_mutation_of_a_failure_and_of_a_link_is_audited(connection, pilot, settings):
    settings.PILOT_EXECUTOR = "integrations.tests.pipeline_fixtures:fail"
    failed = tagged(pilot, "fails")
    process(connection, failed)
    settings.PILOT_EXECUTOR = "integrations.tests.pipeline_fixtures:succeed_with_link"
    linked = tagged(pilot, "links")
    process(connection, linked)
    started = [("asana.add_tag", "pilot-in-progress"), ("asana.comment", STARTED_TEXT)]
    assert audited(failed) == [
        *started,
        ("asana.add_tag", "pilot-failed"),
        ("asana.remove_tag", "pilot-in-progress"),
        ("asana.comment", "Failed: RuntimeError: the build is red"),
    ]
    assert audited(linked)[2:] == [
        ("asana.add_tag", "pilot-done"),
        ("asana.remove_tag", "pilot-in-progress"),
        ("asana.comment", success_html("Opened a pull request", PR_URL, "PR #42")),
        ("asana.attach_link", PR_URL),
        ("asana.complete_task", "completed"),
    ]
    assert not AuditLog.objects.exclude(outcome="ok").exists()


def test_result_link_becomes_a_rich_comment_and_an_attachment(
    connection, pilot, executor, settings
):
    settings.PILOT_EXECUTOR = "integrations.tests.pipeline_fixtures:succeed_with_link"
    gid = tagged(pilot, "Open a PR")
    processed = process(connection, gid)
    assert processed.state == State.DONE
    done = pilot.comments(gid)[-1]
    assert done["html_text"] == (
        '<body>Successfully completed — <a href="https://github.com/acme/app/pull/42">PR #42</a>'
        "\nOpened a pull request</body>"
    )
    assert done["text"].startswith("Successfully completed — PR #42")
    [attachment] = pilot.attachments(gid)
    assert attachment["view_url"] == "https://github.com/acme/app/pull/42"
    assert attachment["name"] == "PR #42"


def test_rich_comment_escapes_markup_in_the_result():
    html = success_html('a <b> & "c"', "https://x.test/?a=1&b=2", "PR <1> & co")
    assert html == (
        '<body>Successfully completed — <a href="https://x.test/?a=1&amp;b=2">PR &lt;1&gt; &amp; co'
        '</a>\na &lt;b&gt; &amp; "c"</body>'
    )


def test_failing_completion_does_not_block(connection, pilot, executor, settings, caplog):
    settings.ASANA_MAX_RETRIES = 0
    gid = tagged(pilot, "cannot complete")
    pilot.inject("500", times=3, method="PUT", path=rf"^/tasks/{gid}$")
    processed = process(connection, gid)
    assert processed.state == State.DONE
    assert "pilot-done" in pilot.tag_names(gid)
    assert pilot.task(gid)["completed"] is False
    assert AuditLog.objects.filter(action="asana.complete_task", outcome="warning").exists()
    assert any(
        r.levelname == "WARNING" and "could not mark the task completed" in r.getMessage()
        for r in caplog.records
    )


# -- failure ------------------------------------------------------------------------------


def test_failed_task_is_reported_and_becomes_eligible_when_the_tag_is_removed(
    connection, pilot, executor, settings
):
    settings.PILOT_EXECUTOR = "integrations.tests.pipeline_fixtures:fail"
    gid = tagged(pilot, "Doomed")
    processed = process(connection, gid)
    assert processed.state == State.FAILED
    assert sorted(pilot.tag_names(gid)) == ["pilot", "pilot-failed"]
    assert comment_texts(pilot, gid)[-1] == "Failed: RuntimeError: the build is red"
    assert pilot.task(gid)["completed"] is False
    assert poll_connection(connection).candidates == []

    pilot.person_changes_task(gid, pilot.user_gid, remove=["pilot-failed"])
    assert poll_connection(connection).candidates == [gid]
    settings.PILOT_EXECUTOR = "integrations.tests.pipeline_fixtures:succeed"
    assert process(connection, gid).state == State.DONE
    assert executor == [gid, gid]


def test_failure_comment_is_bounded_and_redacted(connection, pilot, settings, tmp_path):
    token = "2/1234567890/1234567890:0123456789abcdef0123456789abcdef"
    settings.PILOT_EXECUTOR = ""
    settings.PILOT_EXECUTOR_COMMAND = (
        f"echo 'token {token}' >&2; head -c 5000 /dev/zero | tr '\\0' x >&2; exit 2"
    )
    gid = tagged(pilot, "Leaky")
    process(connection, gid)
    text = comment_texts(pilot, gid)[-1]
    assert text.startswith("Failed: the command exited with status 2")
    assert token not in text
    assert len(text) <= len("Failed: ") + 1000


# -- dispatch_task (the webhook interface) --------------------------------------------------


def test_dispatch_runs_an_eligible_task(connection, pilot, executor):
    gid = tagged(pilot, "From a webhook")
    processed = dispatch_task(connection, gid, source="webhook", runner=run_now)
    assert processed is not None and processed.source == "webhook"
    assert ProcessedTask.objects.get(pk=processed.pk).state == State.DONE


def test_dispatch_ignores_ineligible_tasks(connection, pilot, executor):
    completed = tagged(pilot, "done already", completed=True)
    untagged = pilot.add_task(pilot.workspace_gid, "no tag")
    in_progress = tagged(pilot, "busy", tags=["pilot-in-progress"])
    for gid in (completed, untagged, in_progress, "999999"):
        assert dispatch_task(connection, gid, source="webhook", runner=run_now) is None
    assert not ProcessedTask.objects.exists()


def test_dispatch_of_a_claimed_task_returns_none(connection, pilot, executor):
    gid = tagged(pilot, "twice")
    assert dispatch_task(connection, gid, source="webhook", runner=lambda pt: None)
    assert dispatch_task(connection, gid, source="webhook", runner=run_now) is None


def test_dispatch_enqueues_on_the_cluster_by_default(
    connection, pilot, executor, django_capture_on_commit_callbacks
):
    gid = tagged(pilot, "queued")
    # Sent once the claim is committed (a worker runs this outside any transaction).
    with django_capture_on_commit_callbacks(execute=True):
        processed = dispatch_task(connection, gid, source="webhook")
    assert processed is not None
    assert processed.state == State.CLAIMED and processed.claimed_by.startswith("q@")
    assert OrmQ.objects.count() == 1


def test_nothing_is_claimed_without_an_executor(connection, pilot, settings):
    settings.PILOT_EXECUTOR = settings.PILOT_EXECUTOR_COMMAND = ""
    gid = tagged(pilot, "nobody to run it")
    assert dispatch_task(connection, gid, source="webhook", runner=run_now) is None
    assert not ProcessedTask.objects.exists()


def test_claimed_task_that_became_ineligible_is_released(connection, pilot, executor):
    gid = tagged(pilot, "completed meanwhile")
    processed = claim(connection, gid, source="poll")
    assert processed is not None
    pilot._objects[gid]["completed"] = True
    assert run_claimed(processed.pk, processed.claimed_by) is None
    assert not ProcessedTask.objects.exists()
    assert executor == [] and comment_texts(pilot, gid) == []


def test_run_with_a_stale_token_does_nothing(connection, pilot, executor):
    gid = tagged(pilot, "someone else's")
    processed = claim(connection, gid, source="poll")
    assert processed is not None
    assert run_claimed(processed.pk, "q@elsewhere:1:abc") is None
    assert executor == []


# -- admin actions ----------------------------------------------------------------------------


def test_retry_removes_pilot_failed_and_the_next_poll_takes_it(
    connection, pilot, executor, settings, admin_user
):
    settings.PILOT_EXECUTOR = "integrations.tests.pipeline_fixtures:fail"
    gid = tagged(pilot, "retry me")
    processed = process(connection, gid)
    retry_failed(processed, actor=admin_user)
    assert "pilot-failed" not in pilot.tag_names(gid)
    assert AuditLog.objects.filter(action="pipeline.retry", actor=admin_user).exists()
    assert poll_connection(connection).candidates == [gid]


def test_release_forgets_a_skipped_task(connection, pilot, admin_user):
    connection.skip_backlog = True
    connection.save()
    gid = tagged(pilot, "backlog")
    poll_connection(connection)
    release_skipped(ProcessedTask.objects.get(task_gid=gid), actor=admin_user)
    assert poll_connection(connection).candidates == [gid]


# -- django-q2 ------------------------------------------------------------------------------


def test_schedules_are_created_once_however_often_set_up(db):
    for _ in range(3):
        jobs.ensure_schedules()
    assert Schedule.objects.filter(name=jobs.POLL_SCHEDULE).count() == 1


def test_poll_all_claims_for_the_cluster_and_the_job_runs_them(
    connection, pilot, executor, django_capture_on_commit_callbacks
):
    gids = [tagged(pilot, f"q task {i}") for i in range(2)]
    with django_capture_on_commit_callbacks(execute=True):
        jobs.poll_all()
    claimed = ProcessedTask.objects.filter(state=State.CLAIMED)
    assert sorted(claimed.values_list("task_gid", flat=True)) == sorted(gids)
    assert OrmQ.objects.count() == 2
    for processed in claimed:
        assert jobs.run_claimed_job(processed.pk, processed.claimed_by).endswith("done")
    assert sorted(executor) == sorted(gids)


def test_poll_all_polls_each_connection_at_most_once_per_interval(connection, pilot, executor):
    tagged(pilot, "one")
    jobs.poll_all()
    pilot.reset_requests()
    assert jobs.poll_all()[pilot.workspace_gid] == "not due"
    assert pilot.requests == []
    assert ProcessedTask.objects.count() == 1


def test_poll_all_keeps_the_cluster_queue_short(connection, pilot, executor, settings):
    settings.Q_CLUSTER = settings.Q_CLUSTER | {"workers": 1}
    for i in range(5):
        tagged(pilot, f"many {i}")
    jobs.poll_all()
    assert ProcessedTask.objects.filter(state=State.CLAIMED).count() == 2
