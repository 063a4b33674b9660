"""What one signed delivery may start: a task of another workspace is never claimed, and
thousands of events cost a bounded number of reads, claims and jobs (the rest waits for the
next poll). The delivery job runs here against the fake Asana over HTTP."""

import re

import pytest
from django_q.models import OrmQ

from integrations.models import AsanaConnection, ProcessedTask, WebhookRegistration
from integrations.pipeline import jobs
from integrations.pipeline.poll import poll_connection
from integrations.tests.pipeline_fixtures import tagged
from integrations.tests.webhook_support import drain_queue
from integrations.webhooks.delivery import TASKS_PER_DELIVERY
from integrations.webhooks.jobs import handle_delivery

State = ProcessedTask.State


@pytest.fixture
def registration(connection) -> WebhookRegistration:
    return WebhookRegistration.objects.create(
        connection=connection,
        resource_gid="1",
        target_url="https://pilot.example.com/webhooks/asana/x/",
        state=WebhookRegistration.State.ACTIVE,
        secret="s",
    )


def task_reads(fake) -> list[str]:
    return [p for m, p, _ in fake.requests if m == "GET" and re.fullmatch(r"/tasks/\d+", p)]


def test_an_event_for_a_task_in_another_workspace_is_never_claimed(pilot, registration, executor):
    other = pilot.add_workspace("Another company")
    pilot.join_workspace(pilot.user_gid, other)
    foreign = pilot.add_task(other, "Not ours", tags=["pilot"])  # that workspace's own `pilot`

    summary = handle_delivery(registration.pk, [pilot.event(foreign, field="tags")])

    assert summary.not_eligible == [foreign]
    assert not ProcessedTask.objects.exists()


def test_a_task_is_handled_by_the_connection_of_its_own_workspace(pilot, registration, executor):
    other = pilot.add_workspace("Another company")
    pilot.join_workspace(pilot.user_gid, other)
    foreign = pilot.add_task(other, "Theirs", tags=["pilot"])
    theirs = AsanaConnection.objects.create(workspace_gid=other, access_token=pilot.token)

    handle_delivery(registration.pk, [pilot.event(foreign, field="tags")])

    assert poll_connection(theirs).candidates == [foreign]


def test_events_are_coalesced_per_task(
    pilot, registration, executor, django_capture_on_commit_callbacks
):
    gid = tagged(pilot, "Mentioned 2,000 times")
    pilot.reset_requests()

    with django_capture_on_commit_callbacks(execute=True):
        summary = handle_delivery(registration.pk, [pilot.event(gid, field="tags")] * 2000)

    assert task_reads(pilot) == [f"/tasks/{gid}"]  # the job runs what it read: no second read
    assert summary.dispatched == [gid]
    assert ProcessedTask.objects.get().state == State.DONE


def test_a_delivery_of_2000_tasks_starts_bounded_work_and_the_next_poll_takes_more(
    connection, pilot, registration, executor, settings, django_capture_on_commit_callbacks
):
    settings.Q_CLUSTER = settings.Q_CLUSTER | {"workers": 2}  # the queue takes 4 claims
    gids = [tagged(pilot, f"Task {i}") for i in range(2000)]
    pilot.reset_requests()

    with django_capture_on_commit_callbacks(execute=True):
        summary = handle_delivery(registration.pk, [pilot.event(g, field="tags") for g in gids])

    assert len(task_reads(pilot)) <= TASKS_PER_DELIVERY
    assert summary.dispatched == gids[:4]
    assert len(summary.deferred) == 2000 - 4
    # Three wait in the queue; the job ran the fourth itself.
    assert ProcessedTask.objects.count() == 4 and OrmQ.objects.count() == 3

    drain_queue()  # the cluster runs the four
    with django_capture_on_commit_callbacks(execute=True):
        assert jobs.poll_all()[connection.workspace_gid].endswith("4 claimed")
    assert ProcessedTask.objects.count() == 8


def test_a_delivery_reads_no_task_when_the_queue_is_full(
    connection, pilot, registration, executor, settings
):
    settings.Q_CLUSTER = settings.Q_CLUSTER | {"workers": 1}
    tagged(pilot, "Task 0")
    tagged(pilot, "Task 1")
    assert jobs.poll_all()[connection.workspace_gid].endswith("2 claimed")  # the queue is full
    third = tagged(pilot, "Task 2")
    pilot.reset_requests()

    summary = handle_delivery(registration.pk, [pilot.event(third, field="tags")])

    assert task_reads(pilot) == []
    assert summary.deferred == [third]
