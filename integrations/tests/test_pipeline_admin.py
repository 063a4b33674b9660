"""The pipeline in the admin: the card on the integrations tab and the Retry/Release actions."""

import re
from datetime import UTC, datetime

from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from integrations.models import AuditLog, ProcessedTask, Run, WebhookRegistration
from integrations.pipeline.card import card, seconds
from integrations.pipeline.poll import poll_connection
from integrations.tests.pipeline_fixtures import process, tagged
from pilotsite.liveness import Kind, beat

State = ProcessedTask.State
CHANGELIST = "admin:integrations_processedtask_changelist"
TAB = reverse("admin:index") + "?tab=integrations"
# Some output with markup in it, then the result with a link.
LINK_COMMAND = (
    'echo \'<b>built</b>\'; echo \'{"summary": "Opened a pull request", '
    '"url": "https://github.com/acme/app/pull/42", "url_title": "PR #42"}\''
)


def run_link_command(connection, pilot, settings) -> ProcessedTask:
    settings.PILOT_EXECUTOR, settings.PILOT_EXECUTOR_COMMAND = "", LINK_COMMAND
    return process(connection, tagged(pilot, "Open a PR"))


def test_card_counts_tasks_by_state_and_links_to_asana(connection, pilot, executor):
    done = process(connection, tagged(pilot, "done one"))
    ProcessedTask.objects.create(connection=connection, task_gid="77", state=State.FAILED)
    ProcessedTask.objects.create(connection=connection, task_gid="78", state=State.RUNNING)
    ProcessedTask.objects.create(connection=connection, task_gid="79", state=State.WAITING)
    data = card(connection)
    assert data["executor_configured"] is True
    assert {c["label"]: c["count"] for c in data["counts"]} == {
        "in progress": 1,
        "waiting for input": 1,
        "done": 1,
        "failed": 1,
        "skipped": 0,
        "awaiting approval": 0,
    }
    assert [r["task"].task_gid for r in data["in_progress"]] == ["78"]
    row = next(r for r in data["recent"] if r["task"].pk == done.pk)
    assert row["asana_url"] == done.permalink_url
    assert row["ran"] is not None
    assert next(r for r in data["recent"] if r["task"].task_gid == "77")["asana_url"] == (
        "https://app.asana.com/0/0/77"
    )


def test_tab_shows_the_pipeline_card(admin_client, connection, pilot, settings):
    settings.PILOT_EXECUTOR = "integrations.tests.pipeline_fixtures:succeed_with_link"
    gid = tagged(pilot, "Shown on the tab")
    process(connection, gid)
    poll_connection(connection)
    page = admin_client.get(TAB).content.decode()
    assert "Task pipeline" in page
    assert "configured</span>: Python callable" in page
    assert "ok: 1 tagged, 0 new" in page
    assert f"ASANA-{gid}" in page
    assert 'href="https://github.com/acme/app/pull/42"' in page
    assert "1 done" in page


def test_tab_says_when_no_executor_is_configured(admin_client, connection, settings):
    settings.PILOT_EXECUTOR = settings.PILOT_EXECUTOR_COMMAND = ""
    page = admin_client.get(TAB).content.decode()
    assert "not configured" in page and "no task is claimed" in page


def test_retry_action_removes_pilot_failed(admin_client, admin_user, connection, pilot, settings):
    settings.PILOT_EXECUTOR = "integrations.tests.pipeline_fixtures:fail"
    gid = tagged(pilot, "retry from the admin")
    failed = process(connection, gid)
    beat(Kind.POLLERS, started_at=timezone.now())
    response = admin_client.post(
        reverse(CHANGELIST),
        {"action": "retry_failed_tasks", "_selected_action": [failed.pk]},
        follow=True,
    )
    assert "1 task(s) will run again at the next poll." in response.content.decode()
    assert "pilot-failed" not in pilot.tag_names(gid)
    assert AuditLog.objects.filter(
        action="asana.remove_tag", actor=admin_user, outcome="ok"
    ).exists()
    assert poll_connection(connection).candidates == [gid]


def test_retry_says_so_when_no_worker_is_running_to_pick_it_up(
    admin_client, connection, pilot, settings
):
    settings.PILOT_EXECUTOR = "integrations.tests.pipeline_fixtures:fail"
    failed = process(connection, tagged(pilot, "retry with nothing running"))
    response = admin_client.post(
        reverse(CHANGELIST),
        {"action": "retry_failed_tasks", "_selected_action": [failed.pk]},
        follow=True,
    )
    page = response.content.decode()
    assert "will run again at the next poll, but no worker is running to pick it up" in page
    assert "will run again at the next poll." not in page


def test_webhooks_section_says_deliveries_wait_when_no_cluster_runs(admin_client, connection):
    WebhookRegistration.objects.create(
        connection=connection,
        resource_gid="42",
        target_url="https://x.test/webhooks/asana/1/",
        last_delivery_at=timezone.now(),
    )
    assert "pilot-deliveries-waiting" in admin_client.get(TAB).content.decode()
    beat(Kind.QCLUSTER, started_at=timezone.now())
    assert "pilot-deliveries-waiting" not in admin_client.get(TAB).content.decode()


def test_retry_action_refuses_tasks_that_did_not_fail(admin_client, connection):
    done = ProcessedTask.objects.create(connection=connection, task_gid="5", state=State.DONE)
    response = admin_client.post(
        reverse(CHANGELIST),
        {"action": "retry_failed_tasks", "_selected_action": [done.pk]},
        follow=True,
    )
    assert "only failed tasks can be" in response.content.decode()


def test_release_action_frees_a_skipped_task(admin_client, connection, pilot):
    connection.skip_backlog = True
    connection.save()
    gid = tagged(pilot, "backlog")
    poll_connection(connection)
    skipped = ProcessedTask.objects.get(task_gid=gid)
    response = admin_client.post(
        reverse(CHANGELIST),
        {"action": "release_skipped_tasks", "_selected_action": [skipped.pk]},
        follow=True,
    )
    assert "1 task(s) released." in response.content.decode()
    assert poll_connection(connection).candidates == [gid]
    assert AuditLog.objects.filter(action="pipeline.release").exists()


def test_processed_task_list_shows_state_timings_and_result_link(
    admin_client, connection, pilot, settings
):
    done = run_link_command(connection, pilot, settings)
    page = admin_client.get(reverse(CHANGELIST)).content.decode()
    assert '<td class="field-state_column">done</td>' in page
    assert f'<td class="field-ran">{seconds(done.started_at, done.executed_at)}</td>' in page
    assert '<a href="https://github.com/acme/app/pull/42" rel="noopener noreferrer"' in page
    assert ">PR #42</a>" in page


def test_processed_task_page_shows_the_output_preformatted_and_escaped(
    admin_client, connection, pilot, settings
):
    done = run_link_command(connection, pilot, settings)
    change = reverse("admin:integrations_processedtask_change", args=[done.pk])
    page = admin_client.get(change).content.decode()
    assert "<pre>--- stdout ---\n&lt;b&gt;built&lt;/b&gt;\n{" in page
    assert "<b>built</b>" not in page


def test_processed_task_page_is_titled_for_the_task_and_shows_the_output_once(
    admin_client, connection, pilot, settings
):
    done = run_link_command(connection, pilot, settings)
    change = reverse("admin:integrations_processedtask_change", args=[done.pk])
    page = admin_client.get(change).content.decode()
    assert f"<title>Open a PR | Processed task ASANA-{done.task_gid} |" in page
    assert "<h2>Open a PR</h2>" in page and "Change processed task" not in page
    assert page.count("&lt;b&gt;built&lt;/b&gt;") == 1 and "<textarea" not in page
    assert f'href="{done.permalink_url}"' in page  # the task in Asana


def test_processed_task_page_shows_moments_as_the_tabs_do(admin_client, connection):
    moment = datetime(2026, 11, 30, 9, 5, 7, tzinfo=UTC)
    row = ProcessedTask.objects.create(
        connection=connection, task_gid="5", state=State.DONE, claimed_at=moment
    )
    page = admin_client.get(
        reverse("admin:integrations_processedtask_change", args=[row.pk])
    ).content.decode()
    assert "2026-11-30 09:05:07" in page and "a.m." not in page


def test_a_task_not_yet_started_shows_dashes_for_its_timings_and_its_state_in_words(
    admin_client, connection
):
    row = ProcessedTask.objects.create(
        connection=connection,
        task_gid="6",
        state=State.AWAITING_APPROVAL,
        claimed_at=timezone.now(),
    )
    page = admin_client.get(
        reverse("admin:integrations_processedtask_change", args=[row.pk])
    ).content.decode()
    assert "None" not in page
    assert "ASANA-6 (awaiting approval)" in page and "awaiting_approval)" not in page


def test_the_card_names_each_task_state_in_words(admin_client, connection):
    ProcessedTask.objects.create(
        connection=connection, task_gid="7", task_name="Waits", state=State.AWAITING_APPROVAL
    )
    ProcessedTask.objects.create(
        connection=connection, task_gid="8", task_name="Asks", state=State.WAITING
    )
    page = admin_client.get(TAB).content.decode()
    states = re.findall(r'<td class="[^"]*">([^<]*?)\s*<', page)
    assert "awaiting approval" in states and "waiting for input" in states
    assert "awaiting_approval" not in states and "waiting" not in states


def _live_task(connection) -> tuple[ProcessedTask, Run]:
    row = ProcessedTask.objects.create(
        connection=connection, task_gid="61", task_name="Long job", state=State.RUNNING, attempts=2
    )
    Run.objects.create(processed_task=row, number=1, trigger="poll", outcome="failed")
    return row, Run.objects.create(processed_task=row, number=2, trigger="admin retry")


def test_the_ledger_list_links_each_run_and_offers_stop_for_the_live_one(admin_client, connection):
    row, live = _live_task(connection)
    page = admin_client.get(reverse(CHANGELIST)).content.decode()
    first = row.runs.get(number=1)
    assert f'<a href="{reverse("admin:integrations:run", args=[first.pk])}">Run 1</a>' in page
    assert f'<a href="{reverse("admin:integrations:run", args=[live.pk])}">Run 2 (running)</a>' in (
        page
    )
    stop = reverse("admin:integrations:run-stop", args=[live.pk])
    assert f'formaction="{stop}"' in page and 'aria-label="Stop run 2 of ASANA-61"' in page


def test_staff_who_may_only_view_see_the_runs_but_no_stop_button(
    client, django_user_model, connection
):
    _live_task(connection)
    viewer = django_user_model.objects.create_user("viewer", is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename="view_processedtask"))
    client.force_login(viewer)
    page = client.get(reverse(CHANGELIST)).content.decode()
    assert "Run 2 (running)" in page and "formaction=" not in page


def test_stop_on_the_processed_task_page_asks_the_live_run_and_comes_back(admin_client, connection):
    row, live = _live_task(connection)
    change = reverse("admin:integrations_processedtask_change", args=[row.pk])
    page = admin_client.get(change).content.decode()
    stop = reverse("admin:integrations:run-stop", args=[live.pk])
    assert f'formaction="{stop}" name="next" value="{change}"' in page
    response = admin_client.post(stop, {"next": change})
    assert response.status_code == 302 and response["Location"] == change
    live.refresh_from_db()
    assert live.stop_requested_by == "admin (pressed Stop in pilotsite)"
    page = admin_client.get(change).content.decode()
    assert "is stopping (requested by admin (pressed Stop in pilotsite))" in page
    assert "formaction=" not in page


def test_card_shows_the_output(admin_client, connection, pilot, settings):
    run_link_command(connection, pilot, settings)
    page = admin_client.get(TAB).content.decode()
    assert "<pre>--- stdout ---\n&lt;b&gt;built&lt;/b&gt;" in page


def test_asana_status_says_when_no_executor_is_configured(connection, settings, capsys):
    settings.PILOT_EXECUTOR = settings.PILOT_EXECUTOR_COMMAND = ""
    call_command("asana", "status")
    assert "Executor: no executor configured" in capsys.readouterr().out
