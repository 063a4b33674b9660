"""Approval tasks are executed and reported, but never completed: completing an approval
through the API approves it (the spec's `approval_status`), and that decision is a person's."""

from integrations.models import AuditLog, ProcessedTask
from integrations.pipeline.poll import poll_connection
from integrations.pipeline.recovery import recover_stale
from integrations.pipeline.report import APPROVAL_NOTE, STARTED_TEXT
from integrations.tests.pipeline_fixtures import comment_texts, process, tagged

State = ProcessedTask.State


def puts(fake, gid: str) -> list[str]:
    return [p for m, p, _ in fake.requests if m == "PUT" and p == f"/tasks/{gid}"]


def test_an_approval_task_is_executed_and_reported_but_never_approved(connection, pilot, executor):
    gid = tagged(pilot, "Approve the Q3 budget", resource_subtype="approval")

    processed = process(connection, gid)

    assert processed.state == State.DONE and executor == [gid]
    assert processed.task_subtype == "approval"
    assert sorted(pilot.tag_names(gid)) == ["pilot", "pilot-done"]
    task = pilot.task(gid)
    assert (task["approval_status"], task["completed"]) == ("pending", False)
    assert puts(pilot, gid) == []
    assert comment_texts(pilot, gid) == [
        STARTED_TEXT,
        f"Successfully completed: did Approve the Q3 budget\n{APPROVAL_NOTE}",
    ]
    audit = AuditLog.objects.get(action="asana.complete_task", target=f"task {gid}")
    assert audit.detail == "left to the approver"


def test_an_approval_with_a_result_link_says_so_in_the_rich_comment(connection, pilot, settings):
    settings.PILOT_EXECUTOR = "integrations.tests.pipeline_fixtures:succeed_with_link"
    gid = tagged(pilot, "Approve the PR", resource_subtype="approval")

    assert process(connection, gid).state == State.DONE

    assert comment_texts(pilot, gid)[-1].endswith(APPROVAL_NOTE)
    assert pilot.task(gid)["approval_status"] == "pending"


def test_an_approval_report_finished_by_recovery_is_not_approved_either(
    connection, pilot, settings
):
    settings.ASANA_MAX_RETRIES = 0
    settings.PILOT_EXECUTOR = "integrations.tests.pipeline_fixtures:succeed_with_link"
    gid = tagged(pilot, "Approve after an outage", resource_subtype="approval")
    pilot.inject("503", times=3, method="POST", path=r"^/attachments$")
    assert process(connection, gid).state == State.RUNNING

    assert recover_stale() == 1

    assert ProcessedTask.objects.get(task_gid=gid).state == State.DONE
    assert pilot.task(gid)["approval_status"] == "pending"
    assert puts(pilot, gid) == []


def test_a_decided_approval_is_not_taken(connection, pilot):
    # Rejected (or changes requested) counts as completed in Asana.
    tagged(pilot, "Rejected", resource_subtype="approval", approval_status="rejected")

    assert poll_connection(connection).candidates == []


def test_a_milestone_is_completed_like_any_task(connection, pilot, executor):
    gid = tagged(pilot, "Launch", resource_subtype="milestone")

    assert process(connection, gid).state == State.DONE

    assert pilot.task(gid)["completed"] is True
