"""The integrations models in the admin: masked tokens, read-only audit log, audited changes,
and changelists whose query count does not grow with the rows."""

import pytest
from django.urls import reverse

from integrations.audit import Action
from integrations.models import (
    AsanaConnection,
    AsanaMapping,
    AuditLog,
    Employee,
    ProcessedTask,
    Run,
    WebhookRegistration,
)

pytestmark = pytest.mark.django_db
TOKEN = "2/1/2:" + "ab" * 16


@pytest.fixture
def connection():
    return AsanaConnection.objects.create(
        workspace_gid="111", workspace_name="Acme", access_token=TOKEN
    )


def _rows(connection: AsanaConnection, n: int, django_user_model) -> None:
    boss = django_user_model.objects.create_user(f"boss{n}")
    for i in range(n):
        employee = Employee.objects.create(
            name=f"E{n}-{i}", email=f"e{n}-{i}@example.com", manager=boss
        )
        AsanaMapping.objects.create(
            connection=connection, employee=employee, asana_user_gid=f"{n}{i}"
        )
        row = ProcessedTask.objects.create(
            connection=connection, task_gid=f"{n}0{i}", state="running", attempts=2
        )
        # A finished run and a live one: the runs column links both and offers Stop.
        Run.objects.create(processed_task=row, number=1, trigger="poll", outcome="failed")
        Run.objects.create(processed_task=row, number=2, trigger="admin retry")
        WebhookRegistration.objects.create(
            connection=connection, resource_gid=f"{n}{i}", target_url="https://x.example/"
        )
        AsanaConnection.objects.create(workspace_gid=f"9{n}0{i}", access_token=TOKEN)
        AuditLog.objects.create(actor_label="system", action="test", connection=connection)


def test_connection_pages_show_only_the_masked_token(admin_client, connection):
    changelist = admin_client.get(reverse("admin:integrations_asanaconnection_changelist"))
    change = admin_client.get(
        reverse("admin:integrations_asanaconnection_change", args=[connection.pk])
    )
    for response in (changelist, change):
        page = response.content.decode()
        assert connection.masked_token in page and TOKEN not in page


def test_saving_a_connection_with_blank_token_keeps_the_token(admin_client, connection):
    url = reverse("admin:integrations_asanaconnection_change", args=[connection.pk])
    response = admin_client.post(
        url,
        {
            "new_token": "",
            "pilot_tag": "robot",
            "polling_enabled": "on",
            "poll_interval": "45",
            "goals_sync_interval": "86400",
            "watch_method": "auto",
            "rollout_mode": "automatic",
        },
    )
    assert response.status_code == 302
    connection.refresh_from_db()
    assert (connection.access_token, connection.pilot_tag) == (TOKEN, "robot")
    # One row, written by the service every path shares (not a second one by the admin).
    entry = AuditLog.objects.get(connection=connection)
    assert entry.action == Action.CONNECTION_SETTINGS
    assert "pilot_tag = 'robot'" in entry.detail and TOKEN not in entry.detail


def test_admin_new_token_is_verified_with_asana(fake_asana, admin_client, connection):
    connection.workspace_gid = fake_asana.workspace_gid
    connection.save()
    url = reverse("admin:integrations_asanaconnection_change", args=[connection.pk])
    data = {
        "pilot_tag": "pilot",
        "poll_interval": "30",
        "goals_sync_interval": "86400",
        "watch_method": "auto",
        "rollout_mode": "automatic",
    }
    bad_token = "2/9/9:" + "f" * 32
    response = admin_client.post(url, {**data, "new_token": bad_token})
    page = response.content.decode()
    assert "Asana did not accept the token (401)" in page
    assert bad_token not in page and TOKEN not in page
    admin_client.post(url, {**data, "new_token": fake_asana.token})
    connection.refresh_from_db()
    assert connection.access_token == fake_asana.token
    assert connection.workspace_name == "Pilot Workspace"


def test_employee_changes_in_the_admin_are_audited(admin_client, admin_user):
    admin_client.post(
        reverse("admin:integrations_employee_add"),
        {
            "name": "Ada",
            "email": "ada@example.com",
            "mappings-TOTAL_FORMS": "0",
            "mappings-INITIAL_FORMS": "0",
        },
    )
    employee = Employee.objects.get()
    admin_client.post(
        reverse("admin:integrations_employee_delete", args=[employee.pk]), {"post": "yes"}
    )
    actions = list(AuditLog.objects.filter(actor=admin_user).values_list("action", flat=True))
    assert sorted(actions) == ["admin.employee.add", "admin.employee.delete"]


def test_audit_log_cannot_be_added_changed_or_deleted_in_the_admin(admin_client):
    entry = AuditLog.objects.create(actor_label="system", action="test")
    assert admin_client.get(reverse("admin:integrations_auditlog_add")).status_code == 403
    change = admin_client.get(reverse("admin:integrations_auditlog_change", args=[entry.pk]))
    assert change.status_code == 200 and 'name="_save"' not in change.content.decode()
    delete = admin_client.post(
        reverse("admin:integrations_auditlog_delete", args=[entry.pk]), {"post": "yes"}
    )
    assert delete.status_code == 403 and AuditLog.objects.filter(pk=entry.pk).exists()


def test_webhook_registration_never_shows_its_secret(admin_client, connection):
    hook = WebhookRegistration.objects.create(
        connection=connection,
        resource_gid="5",
        target_url="https://example.com/webhooks/x/",
        secret="s3cr3t-webhook-secret-value",
    )
    page = admin_client.get(
        reverse("admin:integrations_webhookregistration_change", args=[hook.pk])
    ).content.decode()
    assert "s3cr3t-webhook-secret-value" not in page


@pytest.mark.parametrize(
    ("model", "queries"),
    [
        ("employee", 6),
        ("asanamapping", 6),
        ("asanaconnection", 5),
        ("processedtask", 11),
        ("webhookregistration", 6),
        ("auditlog", 9),
    ],
)
def test_changelist_query_count_does_not_grow_with_rows(
    admin_client, connection, django_user_model, django_assert_num_queries, model, queries
):
    _rows(connection, 3, django_user_model)
    url = reverse(f"admin:integrations_{model}_changelist")
    admin_client.get(url)  # warm the session and content type caches
    with django_assert_num_queries(queries):
        assert admin_client.get(url).status_code == 200
    _rows(connection, 30, django_user_model)
    with django_assert_num_queries(queries):
        admin_client.get(url)


def test_the_rollout_mode_is_chosen_in_the_connection_admin_and_audited(admin_client, connection):
    url = reverse("admin:integrations_asanaconnection_change", args=[connection.pk])
    page = admin_client.get(url).content.decode()
    assert "Shadow: it runs, nothing is written to Asana" in page
    data = {
        "pilot_tag": "pilot",
        "poll_interval": "30",
        "goals_sync_interval": "86400",
        "watch_method": "auto",
    }
    assert admin_client.post(url, {**data, "rollout_mode": "shadow"}).status_code == 302
    connection.refresh_from_db()
    assert connection.rollout_mode == AsanaConnection.RolloutMode.SHADOW
    entry = AuditLog.objects.get(connection=connection)
    assert "rollout_mode = 'shadow'" in entry.detail
    refused = admin_client.post(url, {**data, "rollout_mode": "yolo"})
    assert "Select a valid choice" in refused.content.decode()
    connection.refresh_from_db()
    assert connection.rollout_mode == AsanaConnection.RolloutMode.SHADOW
