"""Rollout modes per connection: shadow runs and writes nothing to Asana; approval required
makes a claimed task wait until an approver approves it (in the admin, or with the
`pilot-approved` tag in Asana, read from the task's stories); automatic is as before.

Everything runs over real HTTP against the fake Asana, with a real executor subprocess
(a command that records each task it ran in a file), through both intake paths."""

import sys
import threading
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.db import connections
from django.urls import reverse

from integrations.models import (
    AsanaConnection,
    AsanaMapping,
    AuditLog,
    Employee,
    ProcessedTask,
    Run,
    WebhookRegistration,
)
from integrations.pipeline import approvals
from integrations.pipeline.approvals import AWAITING_PREFIX, REFUSED_MARK, REJECTED_PREFIX
from integrations.pipeline.convert import APPROVED_TAG, AWAITING_TAG
from integrations.pipeline.poll import poll_connection
from integrations.pipeline.report import DONE_TEXT, STARTED_TEXT
from integrations.pipeline.retry import retry_failed
from integrations.tests.pipeline_fixtures import comment_texts, interval_passes, process, tagged
from integrations.tests.webhook_support import drain_queue
from integrations.webhooks.jobs import handle_delivery

pytestmark = pytest.mark.django_db(transaction=True)
State = ProcessedTask.State
Mode = AsanaConnection.RolloutMode
WRITES = ("POST", "PUT", "DELETE")
LINK = "https://github.com/acme/app/pull/42"

EXECUTOR = """
import json, sys
task = json.load(sys.stdin)
with open(sys.argv[1], "a") as ran:
    ran.write(task["gid"] + "\\n")
if task["title"].startswith("Break"):
    print("the build is red", file=sys.stderr)
    sys.exit(3)
print(json.dumps({"summary": "Opened a pull request", "url": sys.argv[2], "url_title": "PR"}))
"""


@pytest.fixture
def ran(settings, tmp_path) -> Path:
    """A real command executor; the file lists the GID of every task it ran, one a line."""
    script, record = tmp_path / "executor.py", tmp_path / "ran"
    script.write_text(EXECUTOR)
    record.touch()
    settings.PILOT_EXECUTOR = ""
    settings.PILOT_EXECUTOR_COMMAND = f"{sys.executable} {script} {record} {LINK}"
    return record


def runs_of(record: Path) -> list[str]:
    return record.read_text().split()


def writes(fake) -> list[tuple[str, str]]:
    return [(method, path) for method, path, _ in fake.requests if method in WRITES]


def moded(connection: AsanaConnection, mode: str) -> AsanaConnection:
    connection.rollout_mode = mode
    connection.save()
    return connection


def poll(connection: AsanaConnection):
    interval_passes(connection) if connection.last_poll_at else None
    return poll_connection(connection)


# -- automatic ---------------------------------------------------------------------------


def test_a_connection_is_automatic_unless_changed(connection, pilot, ran):
    assert connection.rollout_mode == Mode.AUTOMATIC
    gid = tagged(pilot, "Fix the login loop")
    assert process(connection, gid).state == State.DONE
    assert runs_of(ran) == [gid] and "pilot-done" in pilot.tag_names(gid)


# -- shadow ------------------------------------------------------------------------------


@pytest.fixture
def shadow(connection) -> AsanaConnection:
    return moded(connection, Mode.SHADOW)


def test_shadow_runs_the_task_and_writes_nothing_to_asana(shadow, pilot, ran):
    gid = tagged(pilot, "Fix the login loop")
    assert poll(shadow).candidates == [gid]

    row = process(shadow, gid)

    assert (row.state, row.shadow, row.result_url) == (State.DONE, True, LINK)
    assert runs_of(ran) == [gid]
    assert writes(pilot) == []
    assert pilot.tag_names(gid) == ["pilot"] and pilot.comments(gid) == []
    assert not pilot.task(gid)["completed"]
    would = [(w["action"], w["detail"]) for w in Run.objects.get().would_post]
    assert would == [
        ("asana.add_tag", "pilot-in-progress"),
        ("asana.comment", STARTED_TEXT),
        ("asana.add_tag", "pilot-done"),
        ("asana.remove_tag", "pilot-in-progress"),
        (
            "asana.comment",
            f'<body>{DONE_TEXT} — <a href="{LINK}">PR</a>\nOpened a pull request</body>',
        ),
        ("asana.attach_link", LINK),
        ("asana.complete_task", "completed"),
    ]


def test_shadow_keeps_each_task_to_one_run(shadow, pilot, ran):
    done = tagged(pilot, "Fix the login loop")
    failed = tagged(pilot, "Break the build")
    for gid in (done, failed):
        process(shadow, gid)
    assert ProcessedTask.objects.get(task_gid=failed).state == State.FAILED

    assert poll(shadow).candidates == []
    assert runs_of(ran) == [done, failed] and writes(pilot) == []


def test_retry_of_a_shadow_failure_runs_it_again_in_the_mode_of_that_moment(
    shadow, pilot, ran, admin_user
):
    gid = tagged(pilot, "Break the build")
    failed = process(shadow, gid)
    moded(shadow, Mode.AUTOMATIC)

    retry_failed(failed, actor=admin_user)

    assert writes(pilot) == []  # it carried no pilot-failed tag to remove
    assert poll(shadow).candidates == [gid]
    again = process(shadow, gid)
    assert (again.state, again.shadow, again.attempts) == (State.FAILED, False, 2)
    assert "pilot-failed" in pilot.tag_names(gid)


def test_the_admin_shows_what_a_shadow_run_would_have_posted(shadow, pilot, ran, admin_client):
    gid = tagged(pilot, "Fix the login loop")
    row = process(shadow, gid)
    run = Run.objects.get()

    page = admin_client.get(reverse("admin:integrations_processedtask_change", args=[row.pk]))
    run_page = admin_client.get(reverse("admin:integrations:run", args=[run.pk]))

    for content in (page.content.decode(), run_page.content.decode()):
        assert "would have been posted" in content
        assert "asana.attach_link" in content and LINK in content
    assert "Opened a pull request" in page.content.decode()


def test_the_card_marks_a_shadow_run_so_it_does_not_read_as_a_real_done_run(
    shadow, pilot, ran, admin_client
):
    process(shadow, tagged(pilot, "Fix the login loop"))
    moded(shadow, Mode.AUTOMATIC)
    process(shadow, tagged(pilot, "Fix the signup form"))

    page = admin_client.get(reverse("admin:index") + "?tab=integrations").content.decode()

    rows = page.split('<tr class="task-')[1:]
    badged = {row.split('data-task="')[1].split('"')[0]: "pilot-shadow" in row for row in rows}
    shadow_row, real_row = (ProcessedTask.objects.get(shadow=s) for s in (True, False))
    assert badged == {shadow_row.task_gid: True, real_row.task_gid: False}
    assert (shadow_row.state, real_row.state) == (State.DONE, State.DONE)


def test_the_processed_tasks_list_marks_a_shadow_run_like_the_card(
    shadow, pilot, ran, admin_client
):
    process(shadow, tagged(pilot, "Fix the login loop"))
    moded(shadow, Mode.AUTOMATIC)
    process(shadow, tagged(pilot, "Fix the signup form"))

    page = admin_client.get(reverse("admin:integrations_processedtask_changelist"))

    rows = page.content.decode().split("<tr")[2:]
    assert [("Fix the login loop" in r, "pilot-shadow" in r) for r in rows if "Fix the" in r] == [
        (False, False),
        (True, True),
    ]


def test_shadow_mode_creates_no_status_tag(shadow, pilot, ran):
    poll(shadow)
    names = {t["name"] for t in pilot._records("tag", workspace=pilot.workspace_gid)}
    assert names == {"pilot"} and writes(pilot) == []


# -- approval required -------------------------------------------------------------------


def person(connection, pilot, name: str, *, approver: bool) -> str:
    """A workspace member mapped to an employee (an approver or not); their Asana GID."""
    email = f"{name.split()[0].lower()}@example.com"
    user = pilot.add_user(f"{name} (Asana)", email, [pilot.workspace_gid])
    employee = Employee.objects.create(name=name, email=email, is_approver=approver)
    AsanaMapping.objects.create(employee=employee, connection=connection, asana_user_gid=user)
    return user


@pytest.fixture
def gated(connection) -> AsanaConnection:
    return moded(connection, Mode.APPROVAL)


@pytest.fixture
def ann(gated, pilot) -> str:
    return person(gated, pilot, "Ann Lee", approver=True)


@pytest.fixture
def bob(gated, pilot) -> str:
    return person(gated, pilot, "Bob Stone", approver=False)


@pytest.fixture
def waiting(gated, pilot, ran, ann) -> str:
    """A task claimed in approval mode, now waiting (its GID)."""
    gid = tagged(pilot, "Deploy the hotfix")
    assert poll(gated).candidates == [gid]
    assert process(gated, gid).state == State.AWAITING_APPROVAL
    return gid


def test_a_claimed_task_waits_with_a_comment_naming_the_approvers(gated, pilot, waiting, ran):
    assert runs_of(ran) == []
    assert sorted(pilot.tag_names(waiting)) == ["pilot", AWAITING_TAG]
    [comment] = comment_texts(pilot, waiting)
    assert comment.startswith(AWAITING_PREFIX) and "Ann Lee" in comment
    assert APPROVED_TAG in comment
    assert AuditLog.objects.filter(action="pipeline.awaiting_approval").count() == 1

    assert poll(gated).candidates == []  # the ledger and the tag keep it waiting
    assert ProcessedTask.objects.get(task_gid=waiting).state == State.AWAITING_APPROVAL
    assert runs_of(ran) == [] and len(comment_texts(pilot, waiting)) == 1


def test_an_approvers_tag_seen_by_a_poll_runs_the_task_once(gated, pilot, waiting, ran, ann):
    pilot.person_changes_task(waiting, ann, add=[APPROVED_TAG])

    result = poll(gated)

    assert result.approved == [waiting] and result.candidates == [waiting]
    row = process(gated, waiting)
    assert row.state == State.DONE and runs_of(ran) == [waiting]
    run = Run.objects.get()
    assert run.trigger == Run.Trigger.APPROVAL
    assert run.approved_by == f"Ann Lee (added {APPROVED_TAG} in Asana)"
    assert sorted(pilot.tag_names(waiting)) == ["pilot", "pilot-done"]
    texts = comment_texts(pilot, waiting)
    assert texts[1] == f"{STARTED_TEXT} (approved by Ann Lee (added {APPROVED_TAG} in Asana))"
    approved = AuditLog.objects.get(action="pipeline.approved")
    assert approved.detail.startswith("Ann Lee") and approved.created_at
    assert poll(gated).candidates == []


def test_a_tag_from_someone_who_is_not_an_approver_is_answered_and_the_task_keeps_waiting(
    gated, pilot, waiting, ran, bob
):
    outsider = pilot.add_user("Eve Unmapped", "eve@example.com", [pilot.workspace_gid])
    for who in (bob, outsider):
        pilot.person_changes_task(waiting, who, add=[APPROVED_TAG])
        assert poll(gated).approved == []
        assert APPROVED_TAG not in pilot.tag_names(waiting)
    refusals = [t for t in comment_texts(pilot, waiting) if REFUSED_MARK in t]
    assert [r.split(" added")[0] for r in refusals] == ["Bob Stone", "Eve Unmapped"]
    assert "Ann Lee" in refusals[0]

    poll(gated)  # nothing new: no second answer

    assert len([t for t in comment_texts(pilot, waiting) if REFUSED_MARK in t]) == 2
    assert ProcessedTask.objects.get(task_gid=waiting).state == State.AWAITING_APPROVAL
    assert runs_of(ran) == []
    assert AuditLog.objects.filter(action="pipeline.approval_refused").count() == 2


def _webhook(connection) -> WebhookRegistration:
    return WebhookRegistration.objects.create(
        connection=connection,
        resource_gid="1",
        target_url="https://pilot.example.com/webhooks/asana/x/",
        state=WebhookRegistration.State.ACTIVE,
        secret="s",
    )


def test_an_approvers_tag_seen_by_a_webhook_event_reads_the_stories_and_runs_the_task(
    gated, pilot, waiting, ran, ann
):
    pilot.person_changes_task(waiting, ann, add=[APPROVED_TAG])
    tag = pilot._tag_gid(pilot.workspace_gid, APPROVED_TAG)
    event = pilot.event(waiting, "added", parent_gid=tag)
    pilot.reset_requests()

    outcome = handle_delivery(_webhook(gated).pk, [event])

    stories = [q for m, p, q in pilot.requests if p == f"/tasks/{waiting}/stories" and m == "GET"]
    assert stories and "tag.name" in stories[0]["opt_fields"].split(",")
    assert outcome.dispatched == [waiting]
    drain_queue()
    assert ProcessedTask.objects.get(task_gid=waiting).state == State.DONE
    assert runs_of(ran) == [waiting]


def test_a_webhook_event_for_a_tag_from_someone_else_keeps_it_waiting(
    gated, pilot, waiting, ran, bob
):
    pilot.person_changes_task(waiting, bob, add=[APPROVED_TAG])
    event = pilot.event(waiting, "changed", field="tags")

    outcome = handle_delivery(_webhook(gated).pk, [event])

    assert outcome.dispatched == [] and waiting in outcome.already_claimed
    assert any(REFUSED_MARK in t for t in comment_texts(pilot, waiting))
    assert runs_of(ran) == []


def _decide(client, pt: ProcessedTask, decision: str, note: str = ""):
    return client.post(
        reverse("admin:integrations:decide", args=[pt.pk]), {"decision": decision, "note": note}
    )


def test_approval_in_the_admin_posts_the_note_and_runs_the_task(
    gated, pilot, waiting, ran, admin_client
):
    pt = ProcessedTask.objects.get(task_gid=waiting)
    page = admin_client.get(reverse("admin:integrations_processedtask_change", args=[pt.pk]))
    assert b'id="approve"' in page.content and b"Ann Lee" in page.content

    assert _decide(admin_client, pt, "approve", "Go ahead, low risk").status_code == 302
    drain_queue()

    assert ProcessedTask.objects.get(pk=pt.pk).state == State.DONE
    assert runs_of(ran) == [waiting]
    started = comment_texts(pilot, waiting)[1]
    assert started == f"{STARTED_TEXT} (approved by admin (in pilotsite): Go ahead, low risk)"
    row = AuditLog.objects.get(action="pipeline.approved")
    assert (row.actor_label, row.detail) == (
        "admin",
        "admin (in pilotsite) — note: Go ahead, low risk",
    )


def test_the_admin_button_and_the_asana_tag_together_approve_once(
    gated, pilot, waiting, ran, ann, admin_client
):
    pt = ProcessedTask.objects.get(task_gid=waiting)
    barrier = threading.Barrier(2)
    won: list[bool] = []

    def approve(by: str) -> None:
        barrier.wait()
        try:
            won.append(approvals.approve(pt, by=by))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=approve, args=(who,)) for who in ("admin", "Ann")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(won) == [False, True]

    # The tag arrives as well, and the button is pressed again: neither counts twice.
    pilot.person_changes_task(waiting, ann, add=[APPROVED_TAG])
    result = poll(gated)
    assert result.approved == [] and result.candidates == [waiting]
    _decide(admin_client, pt, "approve")
    assert drain_queue() == []  # a refused button queues nothing
    process(gated, waiting)
    assert runs_of(ran) == [waiting]
    assert AuditLog.objects.filter(action="pipeline.approved").count() == 1
    assert Run.objects.filter(processed_task=pt).count() == 1


def test_rejection_in_the_admin_is_reported_and_the_task_never_runs(
    gated, pilot, waiting, ran, admin_client
):
    pt = ProcessedTask.objects.get(task_gid=waiting)

    _decide(admin_client, pt, "reject", "Not this sprint")
    drain_queue()

    row = ProcessedTask.objects.get(pk=pt.pk)
    assert (row.state, row.decided_by) == (State.REJECTED, "admin (in pilotsite)")
    assert pilot.tag_names(waiting) == []
    assert comment_texts(pilot, waiting)[-1] == (
        f"{REJECTED_PREFIX}admin (in pilotsite): Not this sprint. pilotsite did not run this "
        "task. To ask again, tag it 'pilot' again."
    )
    assert Run.objects.get().outcome == Run.Outcome.REJECTED
    assert AuditLog.objects.get(action="pipeline.rejected").actor_label == "admin"
    assert poll(gated).candidates == [] and runs_of(ran) == []
    # The button cannot approve it afterwards either.
    _decide(admin_client, pt, "approve")
    assert ProcessedTask.objects.get(pk=pt.pk).state == State.REJECTED


def test_a_rejected_task_asks_again_when_tagged_again(gated, pilot, waiting, ran, admin_client):
    pt = ProcessedTask.objects.get(task_gid=waiting)
    _decide(admin_client, pt, "reject")
    drain_queue()

    pilot.person_changes_task(waiting, pilot.user_gid, add=["pilot"])

    assert poll(gated).candidates == [waiting]
    again = process(gated, waiting)
    assert (again.state, again.attempts, again.decision) == (State.AWAITING_APPROVAL, 2, "")
    assert runs_of(ran) == []


def test_a_rejection_not_reported_yet_is_reported_by_the_next_poll(
    gated, pilot, waiting, ran, admin_user
):
    pt = ProcessedTask.objects.get(task_gid=waiting)
    assert approvals.reject(pt, by="admin (in pilotsite)", actor=admin_user)

    poll(gated)

    assert pilot.tag_names(waiting) == []
    assert comment_texts(pilot, waiting)[-1].startswith(REJECTED_PREFIX)
    assert ProcessedTask.objects.get(pk=pt.pk).finished_at is not None


@pytest.mark.parametrize(
    "change, how",
    [
        ({"remove": ["pilot"]}, "removed the pilot tag in Asana"),
        ({"completed": True}, "completed the task in Asana"),
        ({"add": ["pilot-stop"]}, "added the pilot-stop tag in Asana"),
    ],
)
def test_a_stop_signal_while_waiting_ends_the_wait(gated, pilot, waiting, ran, ann, change, how):
    pilot.person_changes_task(waiting, ann, **change)

    poll(gated)

    assert ProcessedTask.objects.get(task_gid=waiting).state == State.STOPPED
    assert AWAITING_TAG not in pilot.tag_names(waiting)
    assert "pilot" not in pilot.tag_names(waiting)
    assert comment_texts(pilot, waiting)[-1].startswith(
        f"Stopped by Ann Lee ({how}) while it waited for approval"
    )
    assert runs_of(ran) == []


# -- who may decide ------------------------------------------------------------------------


def _staff(django_user_model, name: str, *codenames: str):
    user = django_user_model.objects.create_user(name, password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


@pytest.mark.parametrize(
    "who, allowed",
    [
        ("admin", True),
        ("approver", True),
        ("changer", False),
        ("manager", False),
        ("outsider", False),
    ],
)
def test_who_may_approve_in_the_admin(
    who, allowed, gated, pilot, waiting, client, admin_user, manager_user, django_user_model
):
    users = {
        "admin": lambda: admin_user,
        "approver": lambda: _staff(
            django_user_model, "approver", "view_processedtask", "approve_processedtask"
        ),
        "changer": lambda: _staff(
            django_user_model, "changer", "view_processedtask", "change_processedtask"
        ),
        "manager": lambda: manager_user,
        "outsider": lambda: _staff(django_user_model, "outsider"),
    }
    client.force_login(users[who]())
    pt = ProcessedTask.objects.get(task_gid=waiting)

    response = _decide(client, pt, "approve")

    assert response.status_code == (302 if allowed else 403)
    state = ProcessedTask.objects.get(pk=pt.pk).state
    assert state == (State.APPROVED if allowed else State.AWAITING_APPROVAL)
    if who == "changer":
        page = client.get(reverse("admin:integrations_processedtask_change", args=[pt.pk]))
        assert b'id="approve"' not in page.content and b"may not approve" in page.content


def test_shadow_through_a_webhook_delivery_writes_nothing_either(shadow, pilot, ran):
    gid = tagged(pilot, "Fix the login loop")
    pilot.reset_requests()

    outcome = handle_delivery(_webhook(shadow).pk, [pilot.event(gid, "changed", field="tags")])
    drain_queue()

    assert outcome.dispatched == [gid] and runs_of(ran) == [gid]
    assert ProcessedTask.objects.get(task_gid=gid).shadow
    assert writes(pilot) == [] and pilot.tag_names(gid) == ["pilot"]


def test_a_poll_reads_each_waiting_task_once_and_its_stories_only_when_tagged_approved(
    gated, pilot, waiting, ran, ann
):
    other = tagged(pilot, "Rotate the keys")
    poll(gated)
    process(gated, other)
    pilot.reset_requests()

    poll(gated)

    reads = [p for m, p, _ in pilot.requests if m == "GET" and p.startswith("/tasks/")]
    assert sorted(reads) == sorted([f"/tasks/{waiting}", f"/tasks/{other}"])

    pilot.person_changes_task(waiting, ann, add=[APPROVED_TAG])
    pilot.reset_requests()
    poll(gated)
    reads = [p for m, p, _ in pilot.requests if m == "GET" and p.startswith("/tasks/")]
    assert sorted(reads) == sorted(
        [f"/tasks/{waiting}", f"/tasks/{waiting}/stories", f"/tasks/{other}"]
    )


def test_the_employee_admin_marks_approvers(db, admin_client):
    ann = Employee.objects.create(name="Ann Lee", email="ann@example.com")
    url = reverse("admin:integrations_employee_change", args=[ann.pk])
    data = {"name": ann.name, "email": ann.email, "is_approver": "on"}
    data |= {"mappings-TOTAL_FORMS": "0", "mappings-INITIAL_FORMS": "0"}
    assert admin_client.post(url, data).status_code == 302
    ann.refresh_from_db()
    assert ann.is_approver
    listing = admin_client.get(reverse("admin:integrations_employee_changelist")).content
    assert b"Approver" in listing


def test_a_task_untagged_after_its_approval_ends_its_wait_instead_of_running(
    gated, pilot, waiting, ran, ann
):
    pt = ProcessedTask.objects.get(task_gid=waiting)
    assert approvals.approve(pt, by="Ann Lee (in pilotsite)")
    pilot.person_changes_task(waiting, ann, remove=["pilot"])

    row = process(gated, waiting)

    assert row.state == State.STOPPED and runs_of(ran) == []
    assert pilot.tag_names(waiting) == []
    assert "while it waited for approval" in comment_texts(pilot, waiting)[-1]


def test_claiming_a_task_to_wait_costs_one_read_a_tag_and_a_comment(gated, pilot, ran, ann):
    gid = tagged(pilot, "Deploy the hotfix")
    poll(gated)
    pilot.reset_requests()

    process(gated, gid)

    assert [(m, p) for m, p, _ in pilot.requests] == [
        ("GET", f"/tasks/{gid}"),
        ("POST", f"/tasks/{gid}/addTag"),
        ("POST", f"/tasks/{gid}/stories"),
    ]


def test_an_approval_in_the_admin_removes_only_the_waiting_tag(
    gated, pilot, waiting, ran, admin_client
):
    _decide(admin_client, ProcessedTask.objects.get(task_gid=waiting), "approve")
    pilot.reset_requests()
    drain_queue()
    removed = [p for m, p, _ in pilot.requests if p.endswith("/removeTag")]
    assert len(removed) == 2  # pilot-awaiting-approval, then pilot-in-progress at the end
