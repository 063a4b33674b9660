"""The tour: the README's main path in Chromium at 1,366 px, against the demo fake Asana and
real worker processes.

A new admin connects by picking the workspace among the token's, picks one of the
operator's named executors, imports employees through the CSV preview, maps the one the
file left unmapped, tags a task in the demo (through the fake's control endpoint, as a person
would in Asana) and watches the card's pipeline pick it up, run it and report, without a
reload; then stops the workers and sees the card say so. A manager then sees only their
reports' goals. Every screen is saved to artifacts/tour/ (the README shows copies from
docs/screenshots/).
"""

import json
import os
import sys
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.urls import reverse

from integrations.models import AsanaMapping, ProcessedTask
from integrations.tests import procs
from pilotsite.liveness import liveness

SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "tour"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Reads the task from stdin like a real agent, takes a moment, answers with a summary.
AGENT = """\
#!{python}
import json, sys, time
task = json.load(sys.stdin)
time.sleep(1.5)
print(json.dumps({{"summary": "Fixed: " + task["title"] + " (demo agent)"}}))
"""


@pytest.fixture
def agent_path(tmp_path) -> str:
    """A PATH on which `demo-agent` is the agent above, as an operator would install it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    agent = bin_dir / "demo-agent"
    agent.write_text(AGENT.format(python=sys.executable))
    agent.chmod(0o755)
    return f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}"


@pytest.fixture
def executors(settings) -> str:
    """The operator's named executors (PILOT_EXECUTORS), as JSON; no default is defined, so
    nothing runs until the admin picks one."""
    definitions = json.dumps(
        {
            "demo-agent": {"command": "demo-agent", "timeout": 60},
            "docs-agent": {"command": "demo-agent --docs", "timeout": 600},
        }
    )
    settings.PILOT_EXECUTORS = definitions
    return definitions


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _sign_in(page, base: str, username: str, tab: str) -> None:
    page.goto(f"{base}/admin/login/?next=/admin/%3Ftab%3D{tab}")
    page.fill("#id_username", username)
    page.fill("#id_password", "password")
    page.click("input[type=submit]")


def _open(page, section: str) -> None:
    """Open a card's collapsible section (`#id` of its <details>) unless it is open."""
    if page.locator(section).get_attribute("open") is None:
        page.locator(f"{section} > summary").click()


def test_the_tour_as_a_new_admin_then_as_a_manager(
    live_server, demo, executors, agent_path, admin_user, manager_user, chromium_page, tmp_path
):
    fake, control = demo
    workers_env = procs.child_env(
        settings.ASANA_API_BASE_URL,
        PILOT_EXECUTORS=executors,
        PATH=agent_path,
        PILOT_HEARTBEAT_SECONDS="1",
        Q_WORKERS="1",
    )
    # What `make run` starts besides the web server: the q cluster and the pollers.
    workers = [
        procs.start(["qcluster"], workers_env, tmp_path / "qcluster.log"),
        procs.start(["runpollers"], workers_env, tmp_path / "runpollers.log"),
    ]
    try:
        procs.wait_for(
            lambda: liveness().cluster_alive and liveness().pollers_alive,
            what="heartbeats of the q cluster and the pollers",
        )
        page = chromium_page
        page.set_viewport_size({"width": 1366, "height": 800})
        page.goto(f"{live_server.url}/admin/login/?next=/admin/%3Ftab%3Dintegrations")
        _shot(page, "01-sign-in")
        _sign_in(page, live_server.url, "admin", "integrations")

        # Nothing connected yet: the tab offers to connect and shows what runs.
        page.wait_for_selector("#connect-workspace[open]")
        assert page.locator(".worker-pollers.worker-alive").count() == 1
        assert page.locator(".worker-qcluster.worker-alive").count() == 1
        _shot(page, "02-nothing-connected")

        # Connect: paste the token, pick the workspace from the token's workspaces.
        page.get_by_label("Personal access token").fill(fake.token)
        page.get_by_label("Personal access token").press("Tab")
        page.locator(".pilot-workspace-status").filter(has_text="can connect").wait_for()
        page.get_by_label("Workspace", exact=True).select_option(fake.workspace_gid)
        assert page.get_by_label("Workspace GID").input_value() == fake.workspace_gid
        page.get_by_label("Poll interval (seconds)").fill("5")
        _shot(page, "03-connect-pick-workspace")
        page.get_by_role("button", name="Connect", exact=True).click()
        page.wait_for_selector("text=Connected Acme (demo)")
        card = page.locator(".pilot-card[data-workspace]")
        pk = card.get_attribute("id").removeprefix("connection-")
        assert "not configured" in card.locator(".pilot-summary").inner_text()
        # Nothing can run yet, so the executor section is open, offering the operator's.
        assert page.locator(f"#executor-section-{pk}[open]").count() == 1
        assert page.locator(f"#executor-{pk}-choose[open]").count() == 1
        _shot(page, "04-connected")

        # Pick an executor among the operator's, and send tasks also tagged `docs` elsewhere.
        page.get_by_role("combobox", name="Executor", exact=True).select_option("demo-agent")
        page.get_by_label("Tag of rule 1").fill("docs")
        page.get_by_label("Executor of rule 1").select_option("docs-agent")
        _shot(page, "05-pick-executor")
        page.get_by_role("button", name="Save executor").click()
        page.locator(f"#executor-{pk} [data-executor=demo-agent]").wait_for()
        assert "configured" in card.locator(".pilot-summary").inner_text()

        # Import employees through the preview: the demo's people, one without a GID, two
        # reporting to the manager.
        gids = {u["email"]: u["gid"] for u in fake._records("user") if u.get("email")}
        people = tmp_path / "employees.csv"
        people.write_text(
            "email,name,asana_user_gid,manager\n"
            f"ada@example.com,Ada Lovelace,{gids['ada@example.com']},manager\n"
            "grace@example.com,Grace Hopper,,manager\n"
            f"alan@example.com,Alan Turing,{gids['alan@example.com']},\n"
            f"katherine@example.com,Katherine Johnson,{gids['katherine@example.com']},\n"
        )
        page.set_input_files("#id_import_file", str(people))
        page.get_by_role("button", name="Preview import").click()
        page.wait_for_selector("#import-preview")
        _shot(page, "06-import-preview")
        page.get_by_role("button", name="Import 4 rows").click()
        page.wait_for_selector("text=Imported employees.csv: 4 created")

        # Map the one the file left unmapped, picking her among the workspace's users.
        _open(page, f"#unmapped-{pk}")
        page.get_by_label("Asana user for Grace Hopper").select_option(gids["grace@example.com"])
        _shot(page, "07-map-an-employee")
        page.get_by_role("button", name="Map Grace Hopper").click()
        page.locator(f"#unmapped-{pk} > summary", has_text="all mapped").wait_for()
        assert AsanaMapping.objects.count() == 4

        # Someone tags a task in Asana; the card's pipeline shows it run without a reload.
        _open(page, f"#pipeline-{pk}")
        tagged = httpx.post(control + "tag-task", json={"task": "login redirect"}).json()
        docs = httpx.post(control + "tag-task", json={"task": "pricing page copy"}).json()
        for name in ("Fix the login redirect loop", "Write the pricing page copy"):
            row = page.locator(f"#pipeline-{pk} tr", has_text=name)
            row.filter(has_text="done").wait_for(timeout=60000)
        task = ProcessedTask.objects.get(task_gid=tagged["task"])
        assert (task.state, task.executor) == ("done", "demo-agent")
        # The pricing copy also carries `docs`: the rule sent it to the docs agent.
        assert ProcessedTask.objects.get(task_gid=docs["task"]).executor == "docs-agent"
        assert "pilot-done" in fake.tag_names(tagged["task"])
        assert any("(demo agent)" in c["text"] for c in fake.comments(tagged["task"]))
        _shot(page, "08-task-done")

        # Goals: the admin syncs now; the q cluster runs it.
        page.goto(f"{live_server.url}/admin/?tab=goals")
        page.get_by_role("button", name="Sync now: Acme (demo)").click()
        page.locator("#goal-syncs td", has_text="Succeeded").wait_for(timeout=60000)
        page.reload()
        _shot(page, "09-goals-admin")

        # Stop the workers: the card says nothing will pick up tagged tasks.
        page.goto(f"{live_server.url}/admin/?tab=integrations")
        for worker in workers:
            procs.stop(worker)
        page.locator(f"#live-{pk} .pilot-no-worker").wait_for(timeout=60000)
        assert "no worker is running" in page.locator(f"#live-{pk} .pilot-no-worker").inner_text()
        _shot(page, "10-no-worker")
    finally:
        for worker in workers:
            procs.stop(worker)

    # The manager: only Ada's and Grace's goals.
    page.context.clear_cookies()
    _sign_in(page, live_server.url, "manager", "goals")
    page.wait_for_selector("#goal-filters")
    employees = page.locator(".goal-employee h2").all_inner_texts()
    assert [e.split(" ")[0] for e in employees] == ["Ada", "Grace"], employees
    assert "Alan" not in page.content() and "on-call" not in page.content()
    assert page.locator(".goal h3", has_text="Grow subscription revenue").count() == 1
    _shot(page, "11-manager-goals")
    page.goto(live_server.url + reverse("admin:integrations_asanaconnection_changelist"))
    _shot(page, "12-manager-connections")
