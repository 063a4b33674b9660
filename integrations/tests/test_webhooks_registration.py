"""Registering, listing, checking and deleting webhooks: service, admin and CLI, over real HTTP."""

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection as db_connection
from django.urls import reverse
from django_q.models import Schedule

from integrations.models import AuditLog, WebhookRegistration
from integrations.pipeline.jobs import ensure_schedules
from integrations.tests import webhook_support
from integrations.webhooks.health import check_webhook_health
from integrations.webhooks.jobs import HEALTH_SCHEDULE, check_all_webhooks
from integrations.webhooks.registration import (
    WebhookError,
    delete_webhook,
    register_webhook,
    reregister,
)

connection = webhook_support.connection
project = webhook_support.project
registration = webhook_support.registration
State = WebhookRegistration.State


def _run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_register_completes_the_handshake_over_http(fake_asana, connection, project, live_server):
    registration = register_webhook(connection, project, live_server.url + "/")

    [hook] = fake_asana.webhooks()
    assert registration.state == State.ACTIVE and registration.webhook_gid == hook["gid"]
    assert hook["target"] == registration.target_url
    assert registration.target_url == (f"{live_server.url}/webhooks/asana/{registration.hook_id}/")
    assert len(registration.hook_id) >= 32
    # The handshake stored Asana's secret, encrypted at rest.
    assert WebhookRegistration.objects.get().secret == hook["secret"]
    with db_connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM integrations_webhookregistration")
        assert hook["secret"] not in cursor.fetchone()[0]
    actions = list(AuditLog.objects.values_list("action", flat=True))
    assert {"webhook.register", "webhook.handshake", "webhook.registered"} <= set(actions)
    assert not any(hook["secret"] in e.detail for e in AuditLog.objects.all())
    # The hook id is only ever written down masked.
    [register] = AuditLog.objects.filter(action="webhook.register")
    assert register.detail == f"target {live_server.url}/webhooks/asana/{hook_id_start(hook)}…/"
    assert not any(registration.hook_id in f"{e.target} {e.detail}" for e in AuditLog.objects.all())


def hook_id_start(hook: dict) -> str:
    return hook["target"].rstrip("/").rsplit("/", 1)[1][:4]


def test_registering_a_workspace_explains_that_a_project_is_needed(fake_asana, connection):
    # Asana wants event filters on workspace-level webhooks; pilotsite registers projects.
    with pytest.raises(WebhookError, match=r"a project or a task: workspaces, teams"):
        register_webhook(connection, fake_asana.workspace_gid, "https://pilot.example.com")
    assert not WebhookRegistration.objects.exists()


def test_each_registration_gets_its_own_target_and_secret(
    fake_asana, connection, project, live_server
):
    first = register_webhook(connection, project, live_server.url)
    second = register_webhook(connection, project, live_server.url)
    assert first.target_url != second.target_url
    assert first.secret != second.secret


def test_failed_registration_is_removed_and_explained(fake_asana, connection, project):
    # Nothing listens on port 9, so the handshake cannot reach the site.
    with pytest.raises(WebhookError, match=r"did not create the webhook .*handshake"):
        register_webhook(connection, project, "http://127.0.0.1:9")
    assert not WebhookRegistration.objects.exists() and fake_asana.webhooks() == []
    assert AuditLog.objects.filter(action="webhook.register", outcome="error").exists()


def test_webhook_created_although_the_answer_was_lost_is_adopted(
    fake_asana, connection, project, live_server
):
    fake_asana.inject("timeout-after-apply", method="POST", path=r"^/webhooks$")
    registration = register_webhook(connection, project, live_server.url)
    [hook] = fake_asana.webhooks()
    assert registration.webhook_gid == hook["gid"] and registration.state == State.ACTIVE
    assert registration.secret == hook["secret"]


def test_registration_needs_a_numeric_gid_and_a_plain_url(connection):
    with pytest.raises(WebhookError, match="GID is a number"):
        register_webhook(connection, "proj-1", "https://pilot.example.com")
    with pytest.raises(WebhookError, match="must not contain a query"):
        register_webhook(connection, "123", "https://pilot.example.com/?x=1")
    with pytest.raises(WebhookError, match="must start with https://"):
        register_webhook(connection, "123", "ftp://pilot.example.com")
    assert not WebhookRegistration.objects.exists()


def test_delete_removes_the_webhook_in_asana_and_here(fake_asana, registration):
    delete_webhook(registration)
    assert fake_asana.webhooks() == [] and not WebhookRegistration.objects.exists()
    assert AuditLog.objects.filter(action="webhook.delete", outcome="ok").exists()


def test_delete_of_a_webhook_asana_already_dropped_still_removes_it_here(fake_asana, registration):
    fake_asana.forget_webhook(registration.webhook_gid)
    delete_webhook(registration)
    assert not WebhookRegistration.objects.exists()


def test_health_check_marks_a_webhook_asana_deleted_as_gone(fake_asana, connection, registration):
    fake_asana.forget_webhook(registration.webhook_gid)
    summary = check_webhook_health(connection)
    registration.refresh_from_db()
    assert registration.state == State.GONE and "no longer has" in registration.last_error
    assert summary.states["gone"] == 1 and summary.changed
    assert AuditLog.objects.filter(action="webhook.state", outcome="warning").exists()


def test_health_check_marks_an_inactive_webhook_as_failing(fake_asana, connection, registration):
    fake_asana.set_webhook_inactive(registration.webhook_gid)
    check_webhook_health(connection)
    registration.refresh_from_db()
    assert registration.state == State.FAILING
    assert "Target did not respond" in registration.last_error


def test_health_check_marks_failed_deliveries_then_recovery(
    fake_asana, connection, registration, project
):
    event = fake_asana.event(project, "changed")
    assert fake_asana.deliver(registration.webhook_gid, [event], secret="wrong") == 401
    check_webhook_health(connection)
    registration.refresh_from_db()
    assert registration.state == State.FAILING and "401" in registration.last_error

    assert fake_asana.heartbeat(registration.webhook_gid) == 200
    check_webhook_health(connection)
    registration.refresh_from_db()
    assert registration.state == State.ACTIVE and registration.last_error == ""


def test_pending_registration_that_never_completed_is_marked_gone(connection):
    stale = WebhookRegistration.objects.create(
        connection=connection, resource_gid="42", target_url="https://pilot.example.com/x/"
    )
    WebhookRegistration.objects.filter(pk=stale.pk).update(
        created_at=stale.created_at - timedelta(hours=1)
    )
    check_webhook_health(connection)
    stale.refresh_from_db()
    assert stale.state == State.GONE and "never completed" in stale.last_error


def test_reregister_replaces_a_gone_webhook(fake_asana, connection, registration):
    fake_asana.forget_webhook(registration.webhook_gid)
    check_webhook_health(connection)
    new = reregister(WebhookRegistration.objects.get())
    assert new.state == State.ACTIVE and new.hook_id != registration.hook_id
    assert list(WebhookRegistration.objects.all()) == [new]
    assert [h["gid"] for h in fake_asana.webhooks()] == [new.webhook_gid]
    assert new.target_url.startswith(registration.target_url.split("/webhooks/")[0])


def test_scheduled_check_covers_every_connection_and_prunes_digests(
    fake_asana, connection, registration
):
    fake_asana.forget_webhook(registration.webhook_gid)
    result = check_all_webhooks()
    assert "1 gone" in result.connections[connection.workspace_gid]
    assert result.pruned_deliveries == 0


def test_health_schedule_is_created_once(transactional_db):
    ensure_schedules()
    ensure_schedules()
    [schedule] = Schedule.objects.filter(name=HEALTH_SCHEDULE)
    assert schedule.func == "integrations.webhooks.jobs.check_all_webhooks"
    assert schedule.schedule_type == Schedule.MINUTES and schedule.minutes == 15


# -- command line -------------------------------------------------------------------------


def test_cli_registers_lists_and_deletes(fake_asana, connection, project, live_server):
    out = _run(
        "asana", "webhook", "register", "--workspace", connection.workspace_gid,
        "--resource", project, "--public-url", live_server.url,
    )  # fmt: skip
    gid = WebhookRegistration.objects.get().webhook_gid
    assert f"Webhook {gid} registered for resource {project}: active" in out

    listing = _run("asana", "webhook", "list", "--check")
    assert gid in listing and "active" in listing and "last delivery never" in listing
    assert fake_asana.webhooks()[0]["secret"] not in listing

    assert f"Webhook {gid} on resource {project} deleted." in _run(
        "asana", "webhook", "delete", gid
    )
    assert fake_asana.webhooks() == []
    assert "No webhooks registered." in _run("asana", "webhook", "list")


def test_cli_register_output_masks_the_hook_id(fake_asana, connection, project, live_server):
    out = _run(
        "asana", "webhook", "register", "--workspace", connection.workspace_gid,
        "--resource", project, "--public-url", live_server.url,
    )  # fmt: skip
    registration = WebhookRegistration.objects.get()
    assert registration.hook_id not in out
    assert f"target {live_server.url}/webhooks/asana/{registration.hook_id[:4]}…/" in out


def test_cli_register_failure_is_a_command_error(fake_asana, connection, project):
    with pytest.raises(CommandError, match="did not create the webhook"):
        _run(
            "asana", "webhook", "register", "--workspace", connection.workspace_gid,
            "--resource", project, "--public-url", "http://127.0.0.1:9",
        )  # fmt: skip


def test_cli_delete_of_an_unknown_gid_says_so(transactional_db):
    with pytest.raises(CommandError, match="No webhook 123 is registered here"):
        _run("asana", "webhook", "delete", "123")


# -- admin ----------------------------------------------------------------------------------


def test_admin_registers_lists_and_deletes_from_the_card(
    fake_asana, connection, project, live_server, admin_client
):
    response = admin_client.post(
        reverse("admin:integrations:webhook-register", args=[connection.pk]),
        {"resource_gid": project, "public_url": live_server.url},
        follow=True,
    )
    registration = WebhookRegistration.objects.get()
    assert registration.state == State.ACTIVE
    page = response.content.decode()
    assert f"Webhook {registration.webhook_gid} registered" in page
    assert project in page and "Register webhook" in page and "Delete" in page
    assert registration.secret not in page and registration.hook_id not in page

    admin_client.post(reverse("admin:integrations:webhook-delete", args=[registration.pk]))
    assert not WebhookRegistration.objects.exists() and fake_asana.webhooks() == []


def test_admin_offers_reregistration_when_gone(fake_asana, connection, registration, admin_client):
    fake_asana.forget_webhook(registration.webhook_gid)
    check_webhook_health(connection)
    page = admin_client.get(reverse("admin:index") + "?tab=integrations").content.decode()
    assert "deleted by Asana" in page and "Re-register" in page
    admin_client.post(reverse("admin:integrations:webhook-reregister", args=[registration.pk]))
    assert WebhookRegistration.objects.get().state == State.ACTIVE


def test_admin_register_error_is_shown(fake_asana, connection, project, admin_client):
    response = admin_client.post(
        reverse("admin:integrations:webhook-register", args=[connection.pk]),
        {"resource_gid": project, "public_url": "http://127.0.0.1:9"},
        follow=True,
    )
    assert "did not create the webhook" in response.content.decode()
    assert not WebhookRegistration.objects.exists()


def test_admin_webhook_actions_need_permission(connection, client, django_user_model):
    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    client.force_login(user)
    url = reverse("admin:integrations:webhook-register", args=[connection.pk])
    assert (
        client.post(url, {"resource_gid": "1", "public_url": "https://x.test"}).status_code == 403
    )
    assert client.get(url).status_code in (403, 405)
    assert not WebhookRegistration.objects.exists()
