"""In Chromium at 1,366 px: connect by picking the token's workspace, import a CSV through its
preview, retry a failed task, confirm a webhook deletion; a manager meets the styled 403 page.
Screenshots go to artifacts/ (the README shows copies from docs/screenshots/)."""

from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from integrations import audit
from integrations.audit import Action
from integrations.models import AsanaConnection, Employee, ProcessedTask, Run, WebhookRegistration

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _sign_in(page, base: str, username: str = "admin") -> None:
    page.set_viewport_size({"width": 1366, "height": 800})
    page.goto(f"{base}/admin/login/?next=/admin/%3Ftab%3Dintegrations")
    page.fill("#id_username", username)
    page.fill("#id_password", "password")
    page.click("input[type=submit]")


def test_connect_by_picking_a_workspace_then_import_employees(
    live_server, fake_asana, admin_user, chromium_page, tmp_path
):
    page = chromium_page
    other = fake_asana.add_workspace("Acme Research")
    fake_asana.add_user("Pilot Admin (2)", "x@example.com", [other])
    _sign_in(page, live_server.url)
    page.wait_for_selector("#connect-workspace[open]")
    _shot(page, "integrations-empty")

    page.get_by_label("Personal access token").fill(fake_asana.token)
    page.get_by_label("Personal access token").press("Tab")
    status = page.locator(".pilot-workspace-status")
    status.filter(has_text="can connect 1 workspace").wait_for()
    # The only workspace is picked for the person; the GID stays editable.
    assert page.get_by_label("Workspace GID").input_value() == fake_asana.workspace_gid
    _shot(page, "connect-picker")
    page.get_by_role("button", name="Connect", exact=True).click()
    page.wait_for_selector("text=Connected Pilot Workspace")

    people = tmp_path / "people.csv"
    people.write_text(
        "email,name\nada@example.com,Ada Lovelace\ngrace@example.com,Grace Hopper\n"
        "not-an-email,Typo Row\n"
    )
    page.set_input_files("#id_import_file", str(people))
    page.get_by_role("button", name="Preview import").click()
    page.wait_for_selector("#import-preview")
    assert "'not-an-email' is not a valid email address" in page.inner_text(".import-rejected")
    assert Employee.objects.count() == 0
    _shot(page, "import-preview")
    page.get_by_role("button", name="Import 2 rows").click()
    page.wait_for_selector("text=Imported people.csv: 2 created")
    assert set(Employee.objects.values_list("email", flat=True)) == {
        "ada@example.com",
        "grace@example.com",
    }
    page.locator("#unmapped-1 > summary, details[id^=unmapped] > summary").first.wait_for()
    _shot(page, "integrations-tab")


def test_deleting_a_webhook_asks_first(live_server, fake_asana, admin_user, chromium_page):
    connection = AsanaConnection.objects.create(
        workspace_gid=fake_asana.workspace_gid,
        workspace_name="Pilot Workspace",
        access_token=fake_asana.token,
    )
    WebhookRegistration.objects.create(
        connection=connection,
        resource_gid="4242",
        resource_name="Website relaunch",
        target_url="https://pilot.example.com/webhooks/asana/x/",
        state="active",
    )
    page = chromium_page
    _sign_in(page, live_server.url)
    page.locator(f"#webhooks-{connection.pk} > summary").click()
    page.get_by_text("Delete…").click()
    confirm = page.get_by_role("button", name="Yes, delete webhook")
    confirm.wait_for()
    _shot(page, "webhook-delete-confirm")
    assert WebhookRegistration.objects.count() == 1


def test_a_manager_sees_the_styled_403_page(live_server, manager_user, chromium_page):
    page = chromium_page
    _sign_in(page, live_server.url, "manager")
    page.goto(live_server.url + reverse("admin:integrations_asanaconnection_add"))
    page.wait_for_selector("#permission-denied")
    _shot(page, "manager-403")
    page.get_by_role("link", name="Back to the start page").click()
    page.wait_for_selector(".pilot-tabs")


def test_the_pipeline_offers_retry_on_failed_rows_and_lists_fit_the_screen(
    live_server, fake_asana, admin_user, chromium_page
):
    connection = AsanaConnection.objects.create(
        workspace_gid=fake_asana.workspace_gid,
        workspace_name="Pilot Workspace",
        access_token=fake_asana.token,
    )
    now = timezone.now()
    for n, (name, state, error) in enumerate(
        [
            ("Fix the login redirect", "done", ""),
            ("Update the pricing page copy", "failed", "Failed: exit status 2: tests failed"),
            ("Translate onboarding emails", "running", ""),
        ]
    ):
        row = ProcessedTask.objects.create(
            connection=connection,
            task_gid=str(1200000000000100 + n),
            task_name=name,
            state=state,
            error=error,
            source="poll",
            attempts=1,
            claimed_at=now,
            started_at=now,
            finished_at=now if state != "running" else None,
        )
        Run.objects.create(
            processed_task=row,
            trigger="poll",
            started_at=now,
            outcome="" if state == "running" else state,
            finished_at=now if state != "running" else None,
        )
    audit.record(
        Action.CONNECTION_TEST,
        target=str(connection),
        detail="Connected as Pilot Admin.",
        actor=admin_user,
        connection=connection,
    )
    audit.record(
        Action.ASANA_COMMENT,
        target="task 1200000000000100",
        connection=connection,
        detail="<body><strong>Successfully completed</strong>: opened pull request #42 with the "
        "redirect fix, the tests for it and a note in the changelog for the next release.</body>",
    )
    audit.record(
        Action.EMPLOYEES_IMPORT,
        target="people.csv",
        outcome="warning",
        actor=admin_user,
        detail="Imported people.csv: 2 created, 0 updated, 0 unchanged, 1 rejected. Rejected "
        "line 4 (not-an-email): 'not-an-email' is not a valid email address.",
    )
    page = chromium_page
    _sign_in(page, live_server.url)
    page.locator(f"#pipeline-{connection.pk} > summary").click()
    page.get_by_role("button", name="Retry Update the pricing page copy").wait_for()
    _shot(page, "pipeline-retry")
    for name, url in [
        ("ledger-list", reverse("admin:integrations_processedtask_changelist")),
        ("audit-list", reverse("admin:integrations_auditlog_changelist")),
        ("all-data", reverse("admin:index") + "?tab=models"),
    ]:
        page.goto(live_server.url + url)
        _shot(page, name)
        # Nothing sticks out to the right of a 1,366 px window, and no list scrolls sideways.
        assert page.evaluate("document.documentElement.scrollWidth") <= 1366
        overflow = page.evaluate(
            "[...document.querySelectorAll('#changelist .results')]"
            ".map(r => r.scrollWidth - r.clientWidth)"
        )
        assert all(extra <= 1 for extra in overflow), (name, overflow)


def test_a_paused_connection_is_red_with_its_reason_and_resumes_from_the_card(
    live_server, fake_asana, admin_user, chromium_page
):
    from integrations.pipeline import breaker

    connection = AsanaConnection.objects.create(
        workspace_gid=fake_asana.workspace_gid,
        workspace_name="Pilot Workspace",
        access_token=fake_asana.token,
    )
    AsanaConnection.objects.filter(pk=connection.pk).update(
        last_checked_at=timezone.now(),
        last_poll_at=timezone.now(),
        last_poll_result="ok: 1 tagged, 1 new — waiting for Resume",
    )
    breaker.pause(
        connection,
        AsanaConnection.PauseKind.CLAIMS,
        "50 tasks were claimed within the last hour, the limit is 50 (was a whole project tagged?)",
    )
    page = chromium_page
    _sign_in(page, live_server.url)
    banner = page.locator(f"#paused-{connection.pk}")
    banner.wait_for()
    color = banner.evaluate("el => getComputedStyle(el).color")
    assert color == "rgb(183, 28, 28)", color
    badge = page.locator(f"#connection-{connection.pk} .pilot-status").first
    assert badge.inner_text() == "paused"
    assert badge.evaluate("el => getComputedStyle(el).backgroundColor") == "rgb(198, 40, 40)"
    page.get_by_text("Last poll: ok: 1 tagged, 1 new — waiting for Resume").wait_for()
    page.locator(f"#rails-{connection.pk} > summary").click()
    _shot(page, "paused-connection")

    banner.get_by_role("button", name="Resume").click()
    page.wait_for_selector("text=automation resumed")
    connection.refresh_from_db()
    assert connection.paused_at is None
    assert page.locator(f"#paused-{connection.pk}").count() == 0


def test_a_shadow_connection_says_so_in_its_summary_and_marks_shadow_runs(
    live_server, fake_asana, admin_user, chromium_page
):
    connection = AsanaConnection.objects.create(
        workspace_gid=fake_asana.workspace_gid,
        workspace_name="Pilot Workspace",
        access_token=fake_asana.token,
        rollout_mode=AsanaConnection.RolloutMode.SHADOW,
        last_checked_at=timezone.now(),
    )
    now = timezone.now()
    for n, (name, shadow) in enumerate(
        [("Fix the login redirect", True), ("Update the pricing page copy", False)]
    ):
        row = ProcessedTask.objects.create(
            connection=connection,
            task_gid=str(1200000000000200 + n),
            task_name=name,
            state="done",
            shadow=shadow,
            source="poll",
            attempts=1,
            claimed_at=now,
            started_at=now,
            finished_at=now,
            result_summary="Opened a pull request",
        )
        Run.objects.create(
            processed_task=row, trigger="poll", started_at=now, outcome="done", finished_at=now
        )
    page = chromium_page
    _sign_in(page, live_server.url)
    page.get_by_text("shadow — nothing is written to Asana").wait_for()
    page.locator(f"#pipeline-{connection.pk} > summary").click()
    shadow_row = page.locator('tr[data-task="1200000000000200"]')
    assert shadow_row.locator(".pilot-shadow").inner_text() == "shadow"
    assert page.locator('tr[data-task="1200000000000201"] .pilot-shadow').count() == 0
    _shot(page, "card-shadow-mode")
    shadow_row.get_by_role("link", name="run page").click()
    page.wait_for_url("**/runs/*/")
    assert page.locator("#run-page h2").inner_text() == "Fix the login redirect — run 1"


def test_the_processed_tasks_list_fits_1280_px_with_long_results(
    live_server, fake_asana, admin_user, chromium_page
):
    connection = AsanaConnection.objects.create(
        workspace_gid=fake_asana.workspace_gid,
        workspace_name="Example Incorporated Engineering Workspace",
        access_token=fake_asana.token,
    )
    now = timezone.now()
    long_url = "https://github.com/example-incorporated/customer-portal/pull/4242/files?diff=split"
    rows = [
        ("Fix the login redirect loop on the customer portal", "done", "", long_url, ""),
        ("Update the pricing page copy", "done", "", long_url, "Opened pull request #4242"),
        (
            "Translate the onboarding emails",
            "failed",
            "Failed: exit status 2: the executor could not run the test suite because "
            "/srv/pilot/checkouts/customer-portal/node_modules/.bin/jest was not found",
            "",
            "",
        ),
        ("Write the release notes", "waiting", "", "", ""),
        ("Migrate the billing database", "running", "", "", ""),
    ]
    for n, (name, state, error, url, title) in enumerate(rows):
        row = ProcessedTask.objects.create(
            connection=connection,
            task_gid=str(1200000000000200 + n),
            task_name=name,
            state=state,
            error=error,
            result_url=url,
            result_url_title=title,
            result_summary="Opened a pull request with the fix and its tests" if url else "",
            executor="claude-code-large",
            source="webhook",
            attempts=4,
            claimed_at=now,
            started_at=now,
            executed_at=now if state != "running" else None,
            finished_at=now if state != "running" else None,
        )
        for number in range(1, 5):
            live = state == "running" and number == 4
            Run.objects.create(
                processed_task=row,
                number=number,
                trigger="poll",
                started_at=now,
                outcome="" if live else "failed",
                finished_at=None if live else now,
            )
    page = chromium_page
    _sign_in(page, live_server.url)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(live_server.url + reverse("admin:integrations_processedtask_changelist"))
    _shot(page, "ledger-list-1280")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    overflow = page.evaluate(
        "[...document.querySelectorAll('#changelist .results')]"
        ".map(r => r.scrollWidth - r.clientWidth)"
    )
    assert all(extra <= 1 for extra in overflow), overflow
    # The Result column ends inside the window.
    right = page.evaluate(
        "Math.max(...[...document.querySelectorAll('#changelist td.field-result')]"
        ".map(td => td.getBoundingClientRect().right))"
    )
    assert right <= 1280
    # What is cut short is whole in the cell's title.
    titles = page.locator("#changelist td.field-result span[title]").evaluate_all(
        "spans => spans.map(s => s.title)"
    )
    assert rows[2][2] in titles and long_url in titles
