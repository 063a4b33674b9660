"""The webhook endpoint and delivery handling, with the fake Asana as the sender over real HTTP."""

import hashlib
import hmac
import json
import logging
import threading
import time
from datetime import timedelta

from django.core.cache.backends import base as cache_base
from django.core.cache.backends import locmem as cache_locmem
from django.db import connections
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_q.models import OrmQ

from integrations.asana.client import client_for
from integrations.models import AuditLog, ProcessedTask, WebhookDelivery, WebhookRegistration
from integrations.pipeline import jobs
from integrations.tests import webhook_support
from integrations.tests.webhook_support import drain_queue, queued
from integrations.webhooks.health import check_webhook_health
from integrations.webhooks.jobs import handle_delivery
from integrations.webhooks.views import MAX_BODY_BYTES

connection = webhook_support.connection
project = webhook_support.project
registration = webhook_support.registration
executor = webhook_support.executor


def _pilot_task(fake, project_gid, name="Summarise the Q3 report", tags=("pilot",)):
    return fake.add_task(fake.workspace_gid, name, tags=tags, projects=[project_gid])


def _refusals(status: int) -> list[AuditLog]:
    return list(AuditLog.objects.filter(action="webhook.refused", detail__startswith=str(status)))


def _path(registration) -> str:
    return reverse("asana-webhook", args=[registration.hook_id])


def test_valid_delivery_is_queued_then_processes_the_task(
    fake_asana, registration, project, executor
):
    task = _pilot_task(fake_asana, project)
    event = fake_asana.event(task, "added", parent_gid=project)
    fake_asana.reset_requests()

    assert fake_asana.deliver(registration.webhook_gid, [event]) == 200

    # The request only queued the work: nothing ran and Asana was not asked about the task.
    assert fake_asana.requests == []
    assert [t["func"] for t in queued()] == [handle_delivery]
    assert executor == [] and not ProcessedTask.objects.exists()
    registration.refresh_from_db()
    assert registration.last_delivery_at is not None
    assert AuditLog.objects.filter(action="webhook.delivery").count() == 1

    drain_queue()
    processed = ProcessedTask.objects.get(task_gid=task)
    assert processed.source == "webhook" and processed.state == ProcessedTask.State.DONE
    assert executor == [task]
    assert "pilot-done" in fake_asana.tag_names(task)


def test_the_delivery_job_runs_the_task_it_claimed_itself_without_reading_it_again(
    fake_asana, registration, project, executor
):
    task = _pilot_task(fake_asana, project)
    event = fake_asana.event(task, "added", parent_gid=project)
    assert fake_asana.deliver(registration.webhook_gid, [event]) == 200
    fake_asana.reset_requests()

    assert drain_queue() == ["handle_delivery"]  # no second job for the run

    assert executor == [task]
    reads = [path for method, path, _ in fake_asana.requests if method == "GET"]
    assert reads.count(f"/tasks/{task}") == 1
    assert ProcessedTask.objects.get(task_gid=task).state == ProcessedTask.State.DONE


def test_a_delivery_of_several_tasks_queues_all_but_the_last_it_claimed(
    fake_asana, registration, project, executor
):
    first, second = _pilot_task(fake_asana, project), _pilot_task(fake_asana, project, "Other")
    events = [fake_asana.event(gid, "added", parent_gid=project) for gid in (first, second)]
    assert fake_asana.deliver(registration.webhook_gid, events) == 200

    assert drain_queue() == ["handle_delivery", "run_claimed_job"]

    assert executor == [second, first]  # the job ran the last itself, then the queue the first


def test_a_delivery_job_run_twice_runs_its_task_once(fake_asana, registration, project, executor):
    task = _pilot_task(fake_asana, project)
    assert fake_asana.deliver(registration.webhook_gid, [fake_asana.event(task, "added")]) == 200
    [delivery] = queued()

    handle_delivery(*delivery["args"])
    again = handle_delivery(*delivery["args"])

    assert executor == [task] and again.already_claimed == [task]


def test_a_slow_asana_does_not_hold_up_the_acknowledgement(
    fake_asana, registration, project, executor
):
    task = _pilot_task(fake_asana, project)
    event = fake_asana.event(task, "added", parent_gid=project)
    # Every API call would now take a minute; the endpoint must not make any.
    fake_asana.misbehave("slow", delay=60)
    fake_asana.reset_requests()

    assert fake_asana.deliver(registration.webhook_gid, [event]) == 200

    assert fake_asana.requests == []
    assert [t["func"] for t in queued()] == [handle_delivery]


def test_changed_event_for_a_task_tagged_later_dispatches_it(
    fake_asana, registration, project, executor
):
    pilot = fake_asana.add_tag(fake_asana.workspace_gid, "pilot")
    task = _pilot_task(fake_asana, project, tags=())
    fake_asana.deliver(
        registration.webhook_gid, [fake_asana.event(task, "added", parent_gid=project)]
    )
    drain_queue()
    assert not ProcessedTask.objects.exists()  # no pilot tag yet

    with client_for(registration.connection) as person:  # someone tags the task in Asana
        person.add_tag(task, pilot)
    fake_asana.deliver(registration.webhook_gid, [fake_asana.event(task, "changed", field="tags")])
    drain_queue()
    assert executor == [task]


def test_tag_added_to_a_task_event_dispatches_the_task(fake_asana, registration, project, executor):
    task = _pilot_task(fake_asana, project)
    pilot = fake_asana.task(task)["tags"][0]["gid"]
    event = fake_asana.event(pilot, "added", parent_gid=task)
    assert fake_asana.deliver(registration.webhook_gid, [event]) == 200
    drain_queue()
    assert executor == [task]


def test_changes_to_other_fields_are_not_worth_a_read(fake_asana, registration, project, executor):
    task = _pilot_task(fake_asana, project)
    fake_asana.deliver(registration.webhook_gid, [fake_asana.event(task, "changed", field="name")])
    fake_asana.reset_requests()
    drain_queue()
    assert not [r for r in fake_asana.requests if r[1] == f"/tasks/{task}"]
    assert executor == []


def test_removing_pilot_failed_makes_a_failed_task_run_again(
    fake_asana, registration, project, executor, settings
):
    task = _pilot_task(fake_asana, project)
    ProcessedTask.objects.create(
        connection=registration.connection,
        task_gid=task,
        state=ProcessedTask.State.FAILED,
        attempts=1,
    )
    fake_asana.deliver(registration.webhook_gid, [fake_asana.event(task, "changed", field="tags")])
    drain_queue()
    processed = ProcessedTask.objects.get(task_gid=task)
    assert processed.attempts == 2 and processed.state == ProcessedTask.State.DONE
    assert executor == [task]


def test_task_removed_from_the_pilot_failed_tag_runs_again(
    fake_asana, registration, project, executor
):
    # The same change as above in the other shape Asana uses for tag membership: the task
    # `removed` with the tag as parent (not a removal of the task from the project).
    task = _pilot_task(fake_asana, project)
    failed_tag = fake_asana.add_tag(fake_asana.workspace_gid, "pilot-failed")
    ProcessedTask.objects.create(
        connection=registration.connection,
        task_gid=task,
        state=ProcessedTask.State.FAILED,
        attempts=1,
    )
    event = fake_asana.event(task, "removed", parent_gid=failed_tag)
    assert fake_asana.deliver(registration.webhook_gid, [event]) == 200
    drain_queue()
    assert executor == [task]
    assert ProcessedTask.objects.get(task_gid=task).state == ProcessedTask.State.DONE


def test_several_events_out_of_order_run_each_task_once(
    fake_asana, registration, project, executor
):
    first, second = _pilot_task(fake_asana, project), _pilot_task(fake_asana, project, "Other")
    untagged = _pilot_task(fake_asana, project, "Not for the pilot", tags=())
    now = timezone.now()

    def event(task, action, minutes_ago, **kwargs):
        made = fake_asana.event(task, action, **kwargs)
        made["created_at"] = (now - timedelta(minutes=minutes_ago)).isoformat()
        return made

    # Newest first, each pilot task mentioned twice, an ignored event in between.
    events = [
        event(second, "changed", 1, field="tags"),
        event(untagged, "removed", 2, parent_gid=project),
        event(first, "changed", 3, field="completed"),
        event(second, "added", 4, parent_gid=project),
        event(first, "added", 5, parent_gid=project),
        event(untagged, "added", 6, parent_gid=project),
    ]
    assert fake_asana.deliver(registration.webhook_gid, events) == 200
    drain_queue()
    assert sorted(executor) == sorted([first, second])
    # An older event for a task already done arrives late, in a delivery of its own.
    late = [event(first, "added", 10, parent_gid=project)]
    assert fake_asana.deliver(registration.webhook_gid, late) == 200
    drain_queue()
    assert sorted(executor) == sorted([first, second])
    [handled, _] = AuditLog.objects.filter(action="webhook.handled")  # newest first
    assert handled.detail == f"1 event(s); 0 ignored; already claimed: {first}"


def test_removed_deleted_and_undeleted_events_are_recorded_and_ignored(
    fake_asana, registration, project, executor
):
    task = _pilot_task(fake_asana, project)
    events = [
        fake_asana.event(task, action, parent_gid=project)
        for action in ("removed", "deleted", "undeleted")
    ]
    assert fake_asana.deliver(registration.webhook_gid, events) == 200
    fake_asana.reset_requests()
    drain_queue()
    assert fake_asana.requests == [] and executor == []
    handled = AuditLog.objects.get(action="webhook.handled")
    assert handled.detail.startswith("3 event(s); 3 ignored")


def test_forged_signature_is_refused_and_nothing_is_processed(
    fake_asana, registration, project, executor
):
    event = fake_asana.event(_pilot_task(fake_asana, project), "added", parent_gid=project)
    status = fake_asana.deliver(registration.webhook_gid, [event], secret="not-the-secret")
    assert status == 401
    assert queued() == [] and not WebhookDelivery.objects.exists()
    assert len(_refusals(401)) == 1
    registration.refresh_from_db()
    assert registration.last_delivery_at is None


def test_signature_over_different_bytes_is_refused(fake_asana, registration, project, executor):
    task = _pilot_task(fake_asana, project)
    signed = json.dumps({"events": [fake_asana.event(task, "added")]}).encode()
    sent = json.dumps({"events": [fake_asana.event(task, "added")], "x": 1}).encode()
    secret = fake_asana.webhooks()[0]["secret"]
    signature = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    assert fake_asana.deliver(registration.webhook_gid, [], body=sent, signature=signature) == 401
    assert queued() == []


def test_missing_signature_is_refused(registration, live_server):
    response = Client().post(
        _path(registration), b'{"events": []}', content_type="application/json"
    )
    assert response.status_code == 401 and queued() == []
    assert "missing signature" in _refusals(401)[0].detail


def test_replayed_delivery_is_acknowledged_but_processed_once(
    fake_asana, registration, project, executor
):
    task = _pilot_task(fake_asana, project)
    body = json.dumps({"events": [fake_asana.event(task, "added", parent_gid=project)]}).encode()
    assert fake_asana.deliver(registration.webhook_gid, [], body=body) == 200
    assert fake_asana.deliver(registration.webhook_gid, [], body=body) == 200
    assert len(queued()) == 1 and WebhookDelivery.objects.count() == 1
    assert AuditLog.objects.filter(action="webhook.replay").count() == 1
    drain_queue()
    assert executor == [task]


def test_delivery_of_old_events_is_dropped_as_stale(fake_asana, registration, project):
    event = fake_asana.event(_pilot_task(fake_asana, project), "added")
    event["created_at"] = (timezone.now() - timedelta(days=30)).isoformat()
    assert fake_asana.deliver(registration.webhook_gid, [event]) == 200
    assert queued() == [] and AuditLog.objects.filter(action="webhook.stale").exists()


class _CacheClock:
    """Stands in for the `time` module of Django's cache backends, so a test moves the cache's
    clock forward instead of sleeping (a short real window is missed on a loaded machine)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset


def test_repeated_refusals_are_audited_once_per_window_then_counted(
    fake_asana, registration, project, settings, monkeypatch
):
    settings.WEBHOOK_REFUSAL_AUDIT_SECONDS = 60
    clock = _CacheClock()
    monkeypatch.setattr(cache_base, "time", clock)
    monkeypatch.setattr(cache_locmem, "time", clock)
    event = fake_asana.event(_pilot_task(fake_asana, project), "added")
    for _ in range(4):
        assert fake_asana.deliver(registration.webhook_gid, [event], secret="forged") == 401
    assert len(_refusals(401)) == 1
    # Another kind of refusal is not hidden behind the first.
    assert fake_asana.deliver(registration.webhook_gid, [], body=b"[") == 400
    assert len(_refusals(400)) == 1

    clock.offset = 61  # the window has passed
    assert fake_asana.deliver(registration.webhook_gid, [event], secret="forged") == 401
    latest = _refusals(401)[0]
    assert len(_refusals(401)) == 2
    assert "(3 more like this not recorded since the previous row)" in latest.detail


def test_requests_to_unknown_ids_share_one_audit_row_per_window(transactional_db):
    for n in range(5):
        response = Client().post(
            reverse("asana-webhook", args=[f"guess-{n}"]), b"{}", content_type="application/json"
        )
        assert response.status_code == 404
    [row] = _refusals(404)
    assert row.target == "unknown webhook id" and row.connection is None


def test_hook_id_is_masked_in_request_logs(fake_asana, registration, caplog):
    caplog.set_level(logging.INFO)
    fake_asana.deliver(registration.webhook_gid, [], secret="forged")  # logged by Django: 401
    Client().get(_path(registration))  # 405
    # The web server's access log line, as gunicorn writes it.
    atoms = {"h": "127.0.0.1", "r": f"POST {_path(registration)} HTTP/1.1", "s": "200"}
    logging.getLogger("gunicorn.access").info('%(h)s "%(r)s" %(s)s', atoms)

    hidden = f"/webhooks/asana/{registration.hook_id[:4]}…/"
    lines = [r.getMessage() for r in caplog.records]
    assert f"Unauthorized: {hidden}" in lines
    assert f"Method Not Allowed (GET): {hidden}" in lines
    assert f'127.0.0.1 "POST {hidden} HTTP/1.1" 200' in lines
    assert registration.hook_id not in caplog.text
    assert not any(registration.hook_id in row.detail for row in AuditLog.objects.all())


def test_heartbeat_is_answered_and_recorded_as_last_contact(fake_asana, registration):
    before = registration.last_contact_at
    assert fake_asana.heartbeat(registration.webhook_gid) == 200
    registration.refresh_from_db()
    assert registration.last_contact_at > before
    assert registration.last_delivery_at is None and queued() == []
    assert AuditLog.objects.filter(action="webhook.heartbeat").count() == 1


def test_resent_heartbeats_update_last_contact_but_are_audited_once_per_window(
    fake_asana, registration
):
    contacts = []
    for _ in range(3):
        assert fake_asana.heartbeat(registration.webhook_gid) == 200
        registration.refresh_from_db()
        contacts.append(registration.last_contact_at)
    assert contacts == sorted(set(contacts))
    assert AuditLog.objects.filter(action="webhook.heartbeat").count() == 1


def test_malformed_json_is_refused(fake_asana, registration):
    assert fake_asana.deliver(registration.webhook_gid, [], body=b'{"events": [') == 400
    assert fake_asana.deliver(registration.webhook_gid, [], body=b'{"events": "x"}') == 400
    assert queued() == [] and len(_refusals(400)) == 1  # one audit row per window


def test_oversized_body_is_refused(fake_asana, registration):
    body = json.dumps({"events": [], "pad": "x" * MAX_BODY_BYTES}).encode()
    assert fake_asana.deliver(registration.webhook_gid, [], body=body) == 413
    assert queued() == [] and len(_refusals(413)) == 1


def test_unknown_webhook_id_is_404(transactional_db):
    response = Client().post(
        reverse("asana-webhook", args=["no-such-hook"]), b"{}", content_type="application/json"
    )
    assert response.status_code == 404


def test_only_post_is_allowed(registration):
    assert Client().get(_path(registration)).status_code == 405
    assert Client().put(_path(registration)).status_code == 405


def test_view_is_csrf_exempt_while_the_admin_is_not(registration):
    client = Client(enforce_csrf_checks=True)
    response = client.post(_path(registration), b"{}", content_type="application/json")
    assert response.status_code == 401  # reached the view: refused for the signature, not CSRF
    assert client.post(reverse("admin:login"), {}).status_code == 403


def test_delivery_and_poll_racing_for_a_task_execute_it_once(
    fake_asana, registration, project, executor
):
    task = _pilot_task(fake_asana, project)
    assert fake_asana.deliver(registration.webhook_gid, [fake_asana.event(task, "added")]) == 200
    [delivery] = queued()
    OrmQ.objects.all().delete()  # the delivery's job runs below, at the same time as a poll
    # The webhook path's re-read is slow, so both paths see the task eligible and unclaimed.
    fake_asana.inject("slow", method="GET", path=rf"^/tasks/{task}$", delay=0.5)
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def run(work):
        try:
            start.wait()
            work()
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=run, args=(lambda: handle_delivery(*delivery["args"]),)),
        threading.Thread(target=run, args=(jobs.poll_all,)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    # The webhook path lost to the poll: either it read the task and its claim failed, or (on a
    # slow machine) the poll's claim was already in the ledger when the delivery looked.
    detail = AuditLog.objects.get(action="webhook.handled").detail
    assert f"not eligible: {task}" in detail or f"already claimed: {task}" in detail
    drain_queue()
    assert executor == [task]
    processed = ProcessedTask.objects.get(task_gid=task)
    assert processed.source == "poll" and processed.state == ProcessedTask.State.DONE


def test_polling_still_picks_up_tasks_when_the_webhook_is_gone(
    fake_asana, registration, project, executor
):
    fake_asana.forget_webhook(registration.webhook_gid)
    check_webhook_health(registration.connection)
    registration.refresh_from_db()
    assert registration.state == WebhookRegistration.State.GONE
    task = _pilot_task(fake_asana, project)
    jobs.poll_all()
    drain_queue()
    assert executor == [task]
    assert ProcessedTask.objects.get(task_gid=task).source == "poll"


def test_handshake_for_an_unknown_id_is_refused(transactional_db):
    response = Client().post(reverse("asana-webhook", args=["nope"]), HTTP_X_HOOK_SECRET="s" * 64)
    assert response.status_code == 404 and "X-Hook-Secret" not in response


def test_second_handshake_is_refused_and_keeps_the_first_secret(registration):
    secret = registration.secret
    response = Client().post(_path(registration), HTTP_X_HOOK_SECRET="a" * 64)
    assert response.status_code == 409 and "X-Hook-Secret" not in response
    registration.refresh_from_db()
    assert registration.secret == secret
    assert WebhookRegistration.objects.get().state == WebhookRegistration.State.ACTIVE


def test_signed_but_deeply_nested_json_is_refused_with_400(fake_asana, registration):
    depth = 200_000  # json.loads recurses: this deep a body raises RecursionError
    body = b'{"events": [' + b"[" * depth + b"]" * depth + b"]}"
    assert fake_asana.deliver(registration.webhook_gid, [], body=body) == 400
    assert queued() == [] and len(_refusals(400)) == 1


def test_signed_events_nested_deeper_than_asana_sends_are_refused(fake_asana, registration):
    resource: dict = {"gid": "1", "resource_type": "task"}
    for _ in range(40):
        resource = {"gid": "1", "resource_type": "task", "parent": resource}
    event = {"action": "changed", "resource": resource, "created_at": timezone.now().isoformat()}
    assert fake_asana.deliver(registration.webhook_gid, [event]) == 400
    assert queued() == []


def test_a_delivery_whose_job_cannot_be_sent_answers_503_and_asanas_retry_is_not_a_replay(
    fake_asana, registration, project, monkeypatch
):
    import django_q.tasks

    def broker_down(*args, **kwargs):
        raise ConnectionError("broker unavailable")

    task = _pilot_task(fake_asana, project)
    event = fake_asana.event(task, "added", parent_gid=project)
    # The job is sent after the digest commits; the broker fails then.
    monkeypatch.setattr(django_q.tasks, "async_task", broker_down)
    assert fake_asana.deliver(registration.webhook_gid, [event]) == 503
    assert not WebhookDelivery.objects.exists()

    monkeypatch.undo()
    assert fake_asana.deliver(registration.webhook_gid, [event]) == 200
    assert [t["func"] for t in queued()] == [handle_delivery]
