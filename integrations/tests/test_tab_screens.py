"""The integrations card and admin pages as people read them: one place to change a
connection, truthful empty states, readable audit rows, confirmations, the 403 page."""

import re

import pytest
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from integrations import audit
from integrations.audit import Action
from integrations.connect import connect_workspace
from integrations.models import AsanaConnection, ProcessedTask, Run, WebhookRegistration
from integrations.tests.pipeline_fixtures import process, tagged

pytestmark = pytest.mark.django_db

TAB = reverse("admin:index") + "?tab=integrations"
WORKSPACES = reverse("admin:integrations:workspaces")
BAD_TOKEN = "2/999/888:ffffffffffffffffffffffffffffffff"


def test_the_workspace_picker_lists_the_pasted_tokens_workspaces(fake_asana, admin_client):
    answer = admin_client.post(WORKSPACES, {"token": fake_asana.token}).json()
    assert answer == {"workspaces": [{"gid": fake_asana.workspace_gid, "name": "Pilot Workspace"}]}
    assert not AsanaConnection.objects.exists()


def test_the_workspace_picker_says_what_to_check_for_a_rejected_token(fake_asana, admin_client):
    response = admin_client.post(WORKSPACES, {"token": BAD_TOKEN})
    assert response.status_code == 400
    assert "did not accept the token (401)" in response.json()["error"]


def test_the_workspace_picker_is_for_those_who_may_connect(fake_asana, client, manager_user):
    client.force_login(manager_user)
    assert client.post(WORKSPACES, {"token": fake_asana.token}).status_code == 403
    assert fake_asana.requests == []


def test_replace_token_changes_only_the_token(fake_asana, admin_client):
    connection = connect_workspace(
        fake_asana.token, fake_asana.workspace_gid, pilot_tag="robot", poll_interval=90
    )
    fresh = f"2/{fake_asana.user_gid}:{'a' * 32}"
    fake_asana.add_token(fresh, fake_asana.user_gid)
    url = reverse("admin:integrations:replace-token", args=[connection.pk])
    response = admin_client.post(url, {f"t{connection.pk}-token": fresh}, follow=True)
    connection.refresh_from_db()
    assert connection.access_token == fresh
    assert (connection.pilot_tag, connection.poll_interval) == ("robot", 90)
    assert "token replaced" in response.content.decode()
    assert fresh not in response.content.decode()


def test_replace_token_with_a_rejected_token_keeps_the_old_one_and_says_why(
    fake_asana, admin_client
):
    connection = connect_workspace(fake_asana.token, fake_asana.workspace_gid)
    url = reverse("admin:integrations:replace-token", args=[connection.pk])
    admin_client.post(url, {f"t{connection.pk}-token": BAD_TOKEN})
    page = admin_client.get(TAB).content.decode()
    connection.refresh_from_db()
    assert connection.access_token == fake_asana.token
    assert "did not accept the token (401)" in page
    assert f'id="settings-{connection.pk}" open' in page


def test_adding_another_workspace_is_collapsed_once_one_is_connected(fake_asana, admin_client):
    assert '<details class="pilot-card pilot-add" id="connect-workspace" open>' in (
        admin_client.get(TAB).content.decode()
    )
    connect_workspace(fake_asana.token, fake_asana.workspace_gid)
    page = admin_client.get(TAB).content.decode()
    assert '<details class="pilot-card pilot-add" id="connect-workspace">' in page
    assert "Add a workspace" in page
    assert "Edit in admin" not in page


def test_the_card_summary_says_when_no_worker_runs(connection, admin_client):
    page = admin_client.get(TAB).content.decode()
    assert '<dd class="pilot-workers"><span class="pilot-error">none running</span></dd>' in page
    # The workers' section is open then, so the reason is in sight.
    assert f'id="workers-{connection.pk}" open' in page


@pytest.mark.parametrize(
    ("mode", "said"),
    [
        ("shadow", "shadow — nothing is written to Asana"),
        ("approval", "approval required"),
    ],
)
def test_the_card_summary_names_a_rollout_mode_other_than_automatic(
    connection, admin_client, mode, said
):
    before = admin_client.get(TAB).content.decode()
    AsanaConnection.objects.filter(pk=connection.pk).update(rollout_mode=mode)

    page = admin_client.get(TAB).content.decode()

    assert 'class="pilot-rollout-summary"' not in before
    assert f' · <span class="pilot-rollout-summary">{said}</span></dd>' in page


def _rows_with_runs(connection, count: int) -> list[Run]:
    latest = []
    for n in range(count):
        row = ProcessedTask.objects.create(
            connection=connection, task_gid=str(1200000000000500 + n), state="done", attempts=2
        )
        Run.objects.create(processed_task=row, number=1, trigger="poll")
        latest.append(Run.objects.create(processed_task=row, number=2, trigger="retry"))
    return latest


def test_each_task_row_links_to_its_latest_runs_page(connection, admin_client):
    [latest] = _rows_with_runs(connection, 1)
    never_ran = ProcessedTask.objects.create(
        connection=connection, task_gid="1200000000000999", state="skipped"
    )

    page = admin_client.get(TAB).content.decode()

    run_links = re.findall(r'href="([^"]+)" class="pilot-run-link"', page)
    assert run_links == [reverse("admin:integrations:run", args=[latest.pk])]
    never_ran_row = page.split(f'data-task="{never_ran.task_gid}"')[1].split("</tr>")[0]
    assert "pilot-run-link" not in never_ran_row


def test_the_run_links_cost_no_query_per_task_row(connection, admin_client):
    _rows_with_runs(connection, 1)
    admin_client.get(TAB)  # warm the session and content type caches
    with CaptureQueriesContext(db_connection) as one_row:
        admin_client.get(TAB)
    for n in range(1, 12):
        row = ProcessedTask.objects.create(
            connection=connection, task_gid=str(1200000000000600 + n), state="done"
        )
        Run.objects.create(processed_task=row, trigger="poll")
    with CaptureQueriesContext(db_connection) as twelve_rows:
        page = admin_client.get(TAB).content.decode()

    assert page.count('class="pilot-run-link"') == 12
    assert len(twelve_rows) == len(one_row)


def test_retry_on_a_failed_row_makes_the_task_run_again(admin_client, connection, pilot, settings):
    settings.PILOT_EXECUTOR = "integrations.tests.pipeline_fixtures:fail"
    gid = tagged(pilot, "retry me from the card")
    failed = process(connection, gid)
    page = admin_client.get(TAB).content.decode()
    assert 'aria-label="Retry retry me from the card"' in page
    response = admin_client.post(reverse("admin:integrations:retry", args=[failed.pk]), follow=True)
    # The admin's message list starts every message with a capital.
    assert "Retry me from the card will run again at the next poll." in response.content.decode()
    assert "pilot-failed" not in pilot.tag_names(gid)


def test_retry_of_a_task_that_did_not_fail_says_so(admin_client, connection):
    done = ProcessedTask.objects.create(
        connection=connection, task_gid="5", task_name="Done already", state="done"
    )
    response = admin_client.post(reverse("admin:integrations:retry", args=[done.pk]), follow=True)
    assert "Done already was not retried: it is done, not failed." in response.content.decode()


def test_without_employees_the_card_says_so_instead_of_all_mapped(connection, admin_client):
    page = admin_client.get(TAB).content.decode()
    assert "No employees yet — add them or" in page
    assert "mapped in this workspace" not in page


def test_audit_rows_read_as_sentences_and_never_as_html(connection, admin_client):
    audit.record(
        Action.ASANA_COMMENT,
        target="task 42",
        detail="<body><strong>Successfully completed</strong> <script>x()</script></body>",
        connection=connection,
    )
    page = admin_client.get(TAB).content.decode()
    assert "system commented in Asana on task 42. Successfully completed x()" in page
    assert "<strong>Successfully" not in page and "&lt;strong&gt;" not in page


def test_a_webhook_shows_its_project_name_and_asks_before_deleting(connection, admin_client):
    WebhookRegistration.objects.create(
        connection=connection,
        resource_gid="777",
        resource_name="Website relaunch",
        target_url="https://pilot.example.com/webhooks/asana/x/",
        state="active",
    )
    page = admin_client.get(TAB).content.decode()
    assert "Website relaunch" in page
    assert "Delete the webhook on Website relaunch?" in page
    assert '<summary class="button">Delete…</summary>' in page


def test_a_manager_opening_a_forbidden_page_gets_the_admins_page_with_a_way_back(
    client, manager_user
):
    client.force_login(manager_user)
    response = client.get(reverse("admin:integrations_asanaconnection_add"))
    page = response.content.decode()
    assert response.status_code == 403
    assert "You may not see this page" in page and 'id="site-name"' in page
    assert f'href="{reverse("admin:index")}"' in page and "Back to the start page" in page


def test_all_data_keeps_the_tab_bar(admin_client):
    page = admin_client.get(reverse("admin:index") + "?tab=models").content.decode()
    assert 'class="pilot-tabs"' in page and "?tab=integrations" in page
    assert 'class="pilot-tab current" aria-current="page">All data' in page


def test_admin_pages_carry_a_favicon(admin_client, client):
    icon = 'rel="icon" href="/static/pilotsite/favicon.svg"'
    for url in (TAB, reverse("admin:integrations_auditlog_changelist")):
        assert icon in admin_client.get(url).content.decode()
    assert icon in client.get(reverse("admin:login")).content.decode()


def test_a_ledger_row_is_shown_without_save_or_delete_buttons(admin_client, connection):
    row = ProcessedTask.objects.create(connection=connection, task_gid="5", state="done")
    page = admin_client.get(
        reverse("admin:integrations_processedtask_change", args=[row.pk])
    ).content.decode()
    assert 'name="_save"' not in page and 'name="_continue"' not in page
    assert "deletelink" not in page


def test_the_audit_list_has_plain_column_names_and_the_detail(admin_client, connection):
    audit.record(Action.CONNECTION_TEST, target=str(connection), detail="Connected as Pilot Admin.")
    page = admin_client.get(reverse("admin:integrations_auditlog_changelist")).content.decode()
    for column in ("When", "Who", "What happened", "Outcome", "Detail"):
        assert f">{column}</a>" in page or f">{column}</span>" in page
    assert "Tested the connection to Pilot Workspace" in page
    assert "Connected as Pilot Admin." in page
