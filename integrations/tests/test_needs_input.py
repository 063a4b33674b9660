"""Asking for input: an executor's question is posted in Asana mentioning who should answer,
the task waits (`pilot-needs-input`), and a person's reply — seen by a poll or a webhook story
event — starts the next run with the conversation so far. Everything runs over real HTTP
against the fake Asana, with a real database."""

import threading
from collections import deque
from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from integrations.asana.client import client_for
from integrations.models import (
    AsanaConnection,
    AsanaMapping,
    Employee,
    ProcessedTask,
    Run,
    WebhookRegistration,
)
from integrations.pipeline import claims, recovery, runs
from integrations.pipeline.card import card
from integrations.pipeline.cycle import poll_then_claim
from integrations.pipeline.needs_input import QUESTION_PREFIX, REMINDER_PREFIX, look_at_waiting
from integrations.pipeline.report import RESUMED_TEXT, STOPPED_PREFIX
from integrations.tests import procs
from integrations.tests.pipeline_fixtures import FAKE, comment_texts, interval_passes, process
from integrations.tests.test_run_control import example
from integrations.webhooks.jobs import handle_delivery

State = ProcessedTask.State
ASKER = "integrations.tests.test_needs_input:asks"
# What the asking executor saw in each run: the conversation of its input.
SEEN: list[list[dict[str, str]]] = []
QUESTIONS = ["Which environment should I deploy to?", "Which region?", "Which day?"]


def asks(task: dict[str, Any]) -> dict[str, Any]:
    """Asks QUESTIONS in turn (one per reply so far), then reports what it was told."""
    SEEN.append(task["conversation"])
    replies = [t for t in task["conversation"] if t["kind"] == "reply"]
    if len(replies) < len(QUESTIONS):
        return {"needs_input": QUESTIONS[len(replies)]}
    return {"summary": "deployed to " + ", ".join(t["text"] for t in replies)}


def asks_forever(task: dict[str, Any]) -> dict[str, Any]:
    return {"needs_input": f"Question {len(task['conversation']) // 2 + 1}?"}


def comments_while_running(task: dict[str, Any]) -> dict[str, Any]:
    """Like `asks`, but during its second run Ann writes her next answer before it asks."""
    replies = [t for t in task["conversation"] if t["kind"] == "reply"]
    if len(replies) == 1:
        fake = FAKE[0]
        fake.person_comments(task["gid"], fake.ann_gid, "eu-west-1")  # type: ignore[attr-defined]
    return asks(task)


@pytest.fixture
def asker(settings, connection):
    settings.PILOT_EXECUTOR, settings.PILOT_EXECUTOR_COMMAND = ASKER, ""
    settings.PILOT_STOP_CHECK_SECONDS = 0.05
    SEEN.clear()
    QUESTIONS[:] = ["Which environment should I deploy to?", "Which region?"]
    return SEEN


@pytest.fixture
def ann(connection, pilot) -> str:
    """Ann, a mapped employee who works in Asana."""
    user = pilot.add_user("Ann Asana", "ann@example.com", [pilot.workspace_gid])
    employee = Employee.objects.create(name="Ann Lee", email="ann@example.com")
    AsanaMapping.objects.create(employee=employee, connection=connection, asana_user_gid=user)
    pilot.ann_gid = user
    return user


def ask_task(pilot, name: str = "Deploy the site", *, assignee: str = "", **kwargs: Any) -> str:
    gid = pilot.add_task(pilot.workspace_gid, name, tags=["pilot"], **kwargs)
    if assignee:
        pilot.set_task(gid, assignee=assignee)
    return gid


def questions(pilot, gid: str) -> list[dict[str, Any]]:
    return [c for c in pilot.comments(gid) if QUESTION_PREFIX in c["text"]]


def run_here(pt: ProcessedTask) -> None:
    runs.run_claimed(pt.pk, pt.claimed_by)


def poll_and_run(connection) -> int:
    """One turn of the poll-then-claim loop, claims run here (as `runpollers` would)."""
    if connection.last_poll_at:
        interval_passes(connection)
    turn = poll_then_claim(
        connection,
        runner=ProcessedTask.Runner.IN_PROCESS,
        pending=deque(),
        names={},
        has_room=lambda: True,
        hand_over=run_here,
    )
    return turn.claimed


def row(gid: str) -> ProcessedTask:
    return ProcessedTask.objects.get(task_gid=gid)


# -- asking ------------------------------------------------------------------------------


def test_a_question_is_posted_mentioning_the_assignee_and_the_task_waits(
    asker, connection, pilot, ann
):
    gid = ask_task(pilot, assignee=ann)
    pt = process(connection, gid)
    assert pt.state == State.WAITING and pt.waiting_since is not None
    assert sorted(pilot.tag_names(gid)) == ["pilot", "pilot-needs-input"]
    [question] = questions(pilot, gid)
    assert f'data-asana-gid="{ann}"' in question["html_text"]
    assert question["text"].startswith(f"@Ann Asana {QUESTION_PREFIX}\n{QUESTIONS[0]}")
    run = Run.objects.get()
    assert run.outcome == Run.Outcome.NEEDS_INPUT and run.finished_at
    [turn] = pt.conversation
    assert turn["kind"] == "question" and turn["story_gid"] == question["gid"]
    waiting = {c["label"]: c["count"] for c in card(connection)["counts"]}["waiting for input"]
    assert waiting == 1


def test_in_shadow_mode_a_question_ends_the_run_instead_of_waiting_for_a_reply(
    asker, connection, pilot, ann
):
    connection.rollout_mode = connection.RolloutMode.SHADOW
    connection.save()
    gid = ask_task(pilot, assignee=ann)
    pt = process(connection, gid)
    # Nobody was shown the question, so no comment may be taken as its answer.
    assert pt.state == State.FAILED and pt.waiting_since is None
    assert QUESTIONS[0] in pt.error and "shadow" in pt.error
    assert Run.objects.get().outcome == Run.Outcome.FAILED
    assert pilot.comments(gid) == [] and pilot.tag_names(gid) == ["pilot"]
    pilot.person_comments(gid, ann, "Any news on this?")
    assert poll_and_run(connection) == 0


@pytest.mark.parametrize("who", ["tagger", "creator"])
def test_without_an_assignee_the_tagger_else_the_creator_is_mentioned(
    asker, connection, pilot, ann, who
):
    bob = pilot.add_user("Bob Creator", "bob@example.com", [pilot.workspace_gid])
    if who == "tagger":
        gid = pilot.add_task(pilot.workspace_gid, "Tagged by Ann", created_by=bob)
        pilot.person_changes_task(gid, ann, add=["pilot"])
    else:
        gid = ask_task(pilot, created_by=bob)
    process(connection, gid)
    [question] = questions(pilot, gid)
    expected = ann if who == "tagger" else bob
    assert f'data-asana-gid="{expected}"' in question["html_text"]


# transaction=True: the example prints progress, which a thread of the run's own writes (its
# own database connection must see the rows this test made).
@pytest.mark.django_db(transaction=True)
def test_the_example_executor_asks_and_finishes_with_the_reply(connection, pilot, ann, settings):
    settings.PILOT_EXECUTOR, settings.PILOT_STOP_CHECK_SECONDS = "", 0.05
    settings.PILOT_EXECUTOR_COMMAND = example(
        "--steps", "1", "--pause", "0", "--ask", "'Which day?'"
    )
    gid = ask_task(pilot, assignee=ann)
    assert process(connection, gid).state == State.WAITING
    pilot.person_comments(gid, ann, "Friday")
    assert poll_and_run(connection) == 1
    pt = row(gid)
    assert pt.state == State.DONE
    assert pt.result_summary == "Finished 1 steps on Deploy the site; Ann Lee said 'Friday'"


# -- replying ----------------------------------------------------------------------------


def test_a_reply_starts_a_new_run_carrying_the_conversation(asker, connection, pilot, ann):
    QUESTIONS[:] = QUESTIONS[:1]
    gid = ask_task(pilot, assignee=ann)
    process(connection, gid)
    reply = pilot.person_comments(gid, ann, "staging")
    assert poll_and_run(connection) == 1
    pt = row(gid)
    assert pt.state == State.DONE and pt.result_summary == "deployed to staging"
    question, answer = SEEN[-1]
    assert question["kind"] == "question" and question["text"] == QUESTIONS[0]
    assert answer == {
        "kind": "reply",
        "text": "staging",
        "author": "Ann Lee",
        "at": next(s for s in pilot.stories(gid) if s["gid"] == reply)["created_at"],
    }
    first, second = Run.objects.order_by("number")
    assert first.outcome == Run.Outcome.NEEDS_INPUT and first.trigger == Run.Trigger.POLL
    assert second.outcome == Run.Outcome.DONE and second.trigger == Run.Trigger.REPLY
    assert sorted(pilot.tag_names(gid)) == ["pilot", "pilot-done"]
    assert any(t.startswith(RESUMED_TEXT) for t in comment_texts(pilot, gid))


def test_own_comments_and_system_stories_are_not_replies(asker, connection, pilot, ann):
    gid = ask_task(pilot, assignee=ann)
    process(connection, gid)
    with client_for(connection) as client:
        client.add_comment(gid, text="a note pilotsite itself wrote")
    pilot.person_changes_task(gid, ann, add=["urgent"])
    assert poll_and_run(connection) == 0
    assert row(gid).state == State.WAITING
    pilot.person_comments(gid, ann, "production")
    assert poll_and_run(connection) == 1
    assert [t["text"] for t in row(gid).conversation if t["kind"] == "reply"] == ["production"]


def test_the_executor_asks_again_until_the_rounds_run_out(asker, connection, pilot, ann, settings):
    settings.PILOT_EXECUTOR = "integrations.tests.test_needs_input:asks_forever"
    settings.PILOT_INPUT_MAX_ROUNDS = 2
    gid = ask_task(pilot, assignee=ann)
    process(connection, gid)
    pilot.person_comments(gid, ann, "one")
    poll_and_run(connection)
    assert row(gid).state == State.WAITING and len(questions(pilot, gid)) == 2
    pilot.person_comments(gid, ann, "two")
    poll_and_run(connection)
    pt = row(gid)
    assert pt.state == State.FAILED and len(questions(pilot, gid)) == 2
    failed = [t for t in comment_texts(pilot, gid) if t.startswith("Failed: ")]
    assert failed == [
        "Failed: the executor asked for input more than 2 time(s) (PILOT_INPUT_MAX_ROUNDS); "
        "its last question was: Question 3?"
    ]
    assert sorted(pilot.tag_names(gid)) == ["pilot", "pilot-failed"]


def _registration(connection) -> WebhookRegistration:
    return WebhookRegistration.objects.create(
        connection=connection,
        resource_gid="1",
        target_url="https://pilot.example.com/webhooks/asana/x/",
        state=WebhookRegistration.State.ACTIVE,
        secret="s",
    )


def story_event(pilot, story_gid: str, task_gid: str, user: str) -> dict[str, Any]:
    return pilot.event(story_gid, "added", parent_gid=task_gid) | {
        "user": {"gid": user, "resource_type": "user"}
    }


@pytest.mark.django_db(transaction=True)
def test_a_webhook_story_event_reads_the_waiting_tasks_stories_once(
    asker, connection, pilot, ann, settings
):
    gid = ask_task(pilot, assignee=ann)
    process(connection, gid)
    other = ask_task(pilot, "Not waiting")
    reply = pilot.person_comments(gid, ann, "staging")
    chatter = pilot.person_comments(other, ann, "unrelated")
    pilot.reset_requests()
    events = [story_event(pilot, reply, gid, ann), story_event(pilot, chatter, other, ann)]
    outcome = handle_delivery(_registration(connection).pk, events)
    assert outcome.resumed == [gid] and outcome.dispatched == []
    reads = [(m, p) for m, p, _ in pilot.requests if m == "GET"]
    assert reads == [("GET", f"/tasks/{gid}/stories")]
    pt = row(gid)
    assert pt.state == State.CLAIMED and pt.runner == ProcessedTask.Runner.QUEUE
    runs.run_claimed(pt.pk, pt.claimed_by)
    assert row(gid).state == State.WAITING and len(questions(pilot, gid)) == 2


@pytest.mark.django_db(transaction=True)
def test_a_reply_seen_by_a_webhook_and_a_poll_at_once_starts_one_run(asker, connection, pilot, ann):
    gid = ask_task(pilot, assignee=ann)
    process(connection, gid)
    reply = pilot.person_comments(gid, ann, "staging")
    registration = _registration(connection)
    interval_passes(connection)
    start = threading.Barrier(2)
    claims: list[str] = []

    def by_webhook() -> None:
        start.wait()
        claims.extend(
            handle_delivery(registration.pk, [story_event(pilot, reply, gid, ann)]).resumed
        )

    def by_poll() -> None:
        start.wait()
        turn = poll_then_claim(
            connection,
            runner=ProcessedTask.Runner.IN_PROCESS,
            pending=deque(),
            names={},
            has_room=lambda: True,
            hand_over=lambda pt: claims.append(pt.task_gid),
        )
        assert turn.polled is not None

    threads = [threading.Thread(target=by_webhook), threading.Thread(target=by_poll)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert claims == [gid]
    pt = row(gid)
    assert pt.state == State.CLAIMED and pt.attempts == 2
    assert [t["kind"] for t in pt.conversation] == ["question", "reply"]


def test_a_reply_written_while_the_run_is_going_is_kept_for_the_next_round(
    asker, connection, pilot, ann, settings
):
    settings.PILOT_EXECUTOR = "integrations.tests.test_needs_input:comments_while_running"
    gid = ask_task(pilot, assignee=ann)
    process(connection, gid)
    pilot.person_comments(gid, ann, "staging")
    # The second run finds Ann's next answer (written while it ran) as soon as it asks, and
    # the third run finishes with both answers.
    assert poll_and_run(connection) == 1
    pt = row(gid)
    assert pt.state == State.DONE and pt.result_summary == "deployed to staging, eu-west-1"
    assert [(t["kind"], t["text"]) for t in pt.conversation] == [
        ("question", QUESTIONS[0]),
        ("reply", "staging"),
        ("question", QUESTIONS[1]),
        ("reply", "eu-west-1"),
    ]
    assert [r.trigger for r in Run.objects.order_by("number")] == ["poll", "reply", "reply"]


def test_a_reply_during_a_run_is_not_taken_by_a_webhook_before_the_question(
    asker, connection, pilot, ann
):
    gid = ask_task(pilot, assignee=ann)
    process(connection, gid)
    reply = pilot.person_comments(gid, ann, "staging")
    ProcessedTask.objects.filter(task_gid=gid).update(state=State.RUNNING)
    outcome = handle_delivery(_registration(connection).pk, [story_event(pilot, reply, gid, ann)])
    assert outcome.resumed == []
    ProcessedTask.objects.filter(task_gid=gid).update(state=State.WAITING)
    assert poll_and_run(connection) == 1


def test_a_reply_claim_that_never_ran_waits_again_and_keeps_the_reply(
    asker, connection, pilot, ann
):
    gid = ask_task(pilot, assignee=ann)
    process(connection, gid)
    pilot.person_comments(gid, ann, "staging")
    with client_for(connection) as client:
        [(pt, reply)] = look_at_waiting(connection, client).replies
    from integrations.pipeline.needs_input import resume

    claimed = resume(pt, reply, runner=ProcessedTask.Runner.QUEUE)
    assert claimed is not None and claimed.state == State.CLAIMED
    # The process holding the claim died: its lease runs out and recovery gives it back.
    assert recovery.recover_stale(timezone.now() + timedelta(hours=1)) == 1
    pt = row(gid)
    assert pt.state == State.WAITING and pt.attempts == 1
    assert [t["kind"] for t in pt.conversation] == ["question"]
    assert poll_and_run(connection) == 1
    assert row(gid).state == State.WAITING and len(questions(pilot, gid)) == 2


@pytest.mark.django_db(transaction=True)
def test_a_restart_while_waiting_loses_nothing(connection, pilot, ann, tmp_path):
    command = example("--steps", "1", "--pause", "0", "--ask", "'Which day?'")
    env = procs.child_env(
        pilot.base_url, PILOT_EXECUTOR_COMMAND=command, PILOT_STOP_CHECK_SECONDS="0.1"
    )
    gid = ask_task(pilot, assignee=ann)
    connection.poll_interval = 5
    connection.save()
    first = procs.start(["runpollers"], env, tmp_path / "first.log")
    try:
        procs.wait_for(
            lambda: ProcessedTask.objects.filter(task_gid=gid, state=State.WAITING).exists(),
            what="the task to wait for input",
        )
    finally:
        procs.stop(first)
    pilot.person_comments(gid, ann, "Friday")
    second = procs.start(["runpollers"], env, tmp_path / "second.log")
    try:
        done = procs.wait_for(
            lambda: ProcessedTask.objects.filter(task_gid=gid, state=State.DONE).first(),
            what="the reply to finish the task",
        )
    finally:
        procs.stop(second)
    assert done.result_summary.endswith("Ann Lee said 'Friday'")
    assert len(questions(pilot, gid)) == 1


# -- stopping, reminding, releasing -------------------------------------------------------

SIGNALS = {
    "untagged": ({"remove": ["pilot"]}, "removed the pilot tag in Asana"),
    "completed": ({"completed": True}, "completed the task in Asana"),
    "stop-tagged": ({"add": ["pilot-stop"]}, "added the pilot-stop tag in Asana"),
}


def _stopped_in_asana(pilot, gid: str) -> str:
    pt = row(gid)
    assert pt.state == State.STOPPED
    assert pilot.tag_names(gid) == []
    [stop] = [t for t in comment_texts(pilot, gid) if t.startswith(STOPPED_PREFIX)]
    assert Run.objects.get(processed_task=pt).outcome == Run.Outcome.STOPPED
    return stop


@pytest.mark.parametrize("signal_name", list(SIGNALS))
def test_a_poll_stops_a_waiting_task_asana_asks_to_stop(asker, connection, pilot, ann, signal_name):
    gid = ask_task(pilot, assignee=ann)
    process(connection, gid)
    change, how = SIGNALS[signal_name]
    pilot.person_changes_task(gid, ann, **change)
    pilot.person_comments(gid, ann, "too late")
    assert poll_and_run(connection) == 0
    assert _stopped_in_asana(pilot, gid).startswith(f"Stopped by Ann Lee ({how})")


def test_removing_a_tag_other_than_the_pilot_tag_does_not_stop_a_waiting_task(
    asker, connection, pilot, ann
):
    gid = ask_task(pilot, assignee=ann)
    process(connection, gid)
    pilot.person_changes_task(gid, ann, add=["urgent"])
    pilot.person_changes_task(gid, ann, remove=["urgent"])
    assert poll_and_run(connection) == 0
    assert row(gid).state == State.WAITING
    pilot.person_comments(gid, ann, "production")
    assert poll_and_run(connection) == 1


@pytest.mark.django_db(transaction=True)
def test_a_webhook_event_stops_a_waiting_task(asker, connection, pilot, ann):
    gid = ask_task(pilot, assignee=ann)
    process(connection, gid)
    pilot.person_changes_task(gid, ann, remove=["pilot"])
    event = pilot.event(gid, "changed", field="tags") | {
        "user": {"gid": ann, "resource_type": "user"}
    }
    assert handle_delivery(_registration(connection).pk, [event]).stopped == [gid]
    assert _stopped_in_asana(pilot, gid).startswith("Stopped by Ann Lee (removed the pilot tag")


def test_the_stop_button_stops_a_waiting_task(asker, connection, pilot, ann, admin_client):
    gid = ask_task(pilot, assignee=ann)
    process(connection, gid)
    run = Run.objects.get()
    page = admin_client.get(reverse("admin:integrations:run", args=[run.pk]))
    assert b"waiting for input" in page.content and QUESTIONS[0].encode() in page.content
    assert b'id="run-stop"' in page.content
    admin_client.post(reverse("admin:integrations:run-stop", args=[run.pk]))
    assert _stopped_in_asana(pilot, gid).startswith("Stopped by admin (pressed Stop in pilotsite)")


def test_the_run_page_shows_the_conversations_times_like_its_other_times(
    asker, connection, pilot, ann, admin_client
):
    gid = ask_task(pilot, assignee=ann)
    process(connection, gid)
    [question] = row(gid).conversation
    asked = timezone.localtime(parse_datetime(question["at"])).strftime("%Y-%m-%d %H:%M:%S")

    page = admin_client.get(reverse("admin:integrations:run", args=[Run.objects.get().pk]))

    assert f'Question</strong> <small class="pilot-nowrap">{asked}</small>' in page.content.decode()
    assert b"Waiting for input from Ann Asana since " in page.content


def test_a_waiting_task_is_reminded_once_then_released(asker, connection, pilot, ann, settings):
    settings.PILOT_INPUT_REMIND_HOURS, settings.PILOT_INPUT_RELEASE_HOURS = 24, 72
    gid = ask_task(pilot, assignee=ann)
    process(connection, gid)

    def waited(hours: float) -> None:
        since = timezone.now() - timedelta(hours=hours)
        ProcessedTask.objects.filter(task_gid=gid).update(waiting_since=since)

    waited(23)
    poll_and_run(connection)
    assert not [t for t in comment_texts(pilot, gid) if t.startswith(REMINDER_PREFIX)]
    waited(25)
    poll_and_run(connection)
    poll_and_run(connection)
    reminders = [c for c in pilot.comments(gid) if REMINDER_PREFIX in c["text"]]
    assert len(reminders) == 1 and f'data-asana-gid="{ann}"' in reminders[0]["html_text"]
    assert row(gid).state == State.WAITING
    waited(73)
    poll_and_run(connection)
    pt = row(gid)
    assert pt.state == State.FAILED
    assert sorted(pilot.tag_names(gid)) == ["pilot", "pilot-failed"]
    [failed] = [t for t in comment_texts(pilot, gid) if t.startswith("Failed: ")]
    assert failed.startswith("Failed: no reply came within 72 hours of the question")
    assert "remove the pilot-failed tag or retry from the admin" in failed


def test_a_reply_waits_while_the_connection_is_paused_and_is_taken_on_resume(
    asker, connection, pilot, ann, admin_user
):
    from integrations.pipeline import breaker

    QUESTIONS[:] = QUESTIONS[:1]
    gid = ask_task(pilot, assignee=ann)
    process(connection, gid)
    assert breaker.pause(connection, AsanaConnection.PauseKind.FAILURES, "5 failed runs")
    pilot.person_comments(gid, ann, "staging")
    assert poll_and_run(connection) == 0
    assert row(gid).state == State.WAITING
    assert breaker.resume(connection, actor=admin_user)
    assert poll_and_run(connection) == 1
    assert row(gid).state == State.DONE and row(gid).result_summary == "deployed to staging"


def test_a_reply_to_an_approved_task_goes_on_without_a_new_approval(asker, connection, pilot, ann):
    from integrations.pipeline import approvals

    QUESTIONS[:] = QUESTIONS[:1]
    connection.rollout_mode = AsanaConnection.RolloutMode.APPROVAL
    connection.save()
    gid = ask_task(pilot, assignee=ann)
    waiting = claims.claim(connection, gid, source="poll")
    assert waiting is not None
    runs.run_claimed(waiting.pk, waiting.claimed_by)
    assert approvals.approve(row(gid), by="Ann Lee (in pilotsite)")
    assert poll_and_run(connection) == 1
    assert row(gid).state == State.WAITING
    pilot.person_comments(gid, ann, "staging")
    assert poll_and_run(connection) == 1
    assert row(gid).state == State.DONE
    triggers = [r.trigger for r in Run.objects.order_by("number")]
    assert triggers == [Run.Trigger.APPROVAL, Run.Trigger.REPLY]
    assert sorted(pilot.tag_names(gid)) == ["pilot", "pilot-done"]
