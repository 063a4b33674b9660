"""In Chromium: a manager opens the goals tab, sees only their report's goals, filters them."""

from pathlib import Path

import pytest

from goals import insight
from goals.forecast import OVERDUE, PROJECTED_TO_MISS, STALLED
from goals.sync import sync_goals
from goals.tests import history_data
from integrations.models import Employee

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def synced_team(fake_asana, connection, hire, asana_client, manager_user, django_user_model):
    """Ada reports to the manager, Bob to someone else; both own goals synced from the fake."""
    other = django_user_model.objects.create_user("other-manager")
    _, ada = hire("Ada Lovelace", manager=manager_user)
    _, bob = hire("Bob Builder", manager=other)
    workspace = fake_asana.workspace_gid
    launch = fake_asana.add_goal(
        workspace,
        "Launch the analytics engine",
        owner_gid=ada,
        status="yellow",
        due_on="2026-09-30",
        html_notes="<body>Ship the <strong>first</strong> public version.</body>",
        metric={
            "unit": "percentage",
            "initial_number_value": 0,
            "current_number_value": 0.4,
            "target_number_value": 1,
        },
    )
    fake_asana.add_goal(workspace, "Write the notes", status="achieved", parent_gid=launch)
    fake_asana.add_goal(workspace, "Find a publisher", status="red", parent_gid=launch)
    fake_asana.add_goal(workspace, "Hire an assistant", owner_gid=ada, status="red")
    fake_asana.add_goal(
        workspace,
        "Grow revenue",
        owner_gid=ada,
        status="green",
        metric={
            "unit": "currency",
            "currency_code": "EUR",
            "initial_number_value": 1000,
            "current_number_value": 4000,
            "target_number_value": 11000,
        },
    )
    fake_asana.add_goal(workspace, "Bob's secret plan", owner_gid=bob, status="red")
    assert sync_goals(connection, client=asana_client).ok


def test_a_manager_sees_and_filters_their_reports_goals(live_server, synced_team, chromium_page):
    page = chromium_page
    page.goto(f"{live_server.url}/admin/login/?next=/admin/%3Ftab%3Dgoals")
    page.fill("#id_username", "manager")
    page.fill("#id_password", "password")
    page.click("input[type=submit]")
    page.wait_for_selector("#goal-filters")

    goals = page.locator(".goal h3")
    assert goals.count() == 3
    assert "Bob" not in page.content()
    assert page.locator(".goal .badge-yellow").first.inner_text() == "At risk"
    assert page.locator(".key-results li", has_text="Write the notes").inner_text() == (
        "Write the notes Achieved closed"
    )
    analytics = page.locator(".goal", has_text="analytics").inner_text()
    assert "Progress 40%" in analytics and "of 100%" not in analytics
    assert "Progress 30% (4,000 EUR now, from 1,000 EUR to 11,000 EUR)" in page.content()
    # Badges are coloured: a status is never shown as plain text on the page background.
    background = page.locator(".goal .badge-red").first.evaluate(
        "e => getComputedStyle(e).backgroundColor"
    )
    assert background not in ("rgba(0, 0, 0, 0)", "transparent")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "goals-tab.png"), full_page=True)

    page.select_option("#goal-status", "red")
    page.click("#goal-filters button[type=submit]")
    page.wait_for_url("**status=red**")

    assert page.locator(".goal h3").all_inner_texts() == ["Hire an assistant Off track"]
    assert "Bob" not in page.content()


def test_a_manager_checks_the_summary_and_filters_to_projected_to_miss(
    live_server, connection, manager_user, django_user_model, chromium_page
):
    lead = django_user_model.objects.create_user("lead", first_name="Lea", last_name="Lead")
    lead.email = "lea.lead@example.com"
    lead.save()
    lea = history_data.employee("Lea Lead", manager_user, connection)
    ivy = history_data.employee("Ivy", lead, connection)
    other = history_data.employee("Oscar", django_user_model.objects.create_user("x"), connection)
    history_data.goal(
        connection,
        lea,
        "Grow subscriptions",
        [(21, 0.1), (14, 0.2), (7, 0.3), (0.01, 0.4)],
        42,
        status="green",
        time_period_name="Q1 FY27",
    )
    history_data.goal(
        connection,
        lea,
        "Cut churn",
        [(21, 0.0), (14, 0.05), (7, 0.1), (0.01, 0.2)],
        14,
        status="yellow",
    )
    history_data.goal(connection, ivy, "Ship the SDK", [(20, 0.3)], 60, status="red")
    history_data.goal(connection, ivy, "Write the handbook", due_in_days=-5)
    history_data.goal(connection, other, "Not the manager's", [(20, 0.1)], 10, status="red")

    page = chromium_page
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"{live_server.url}/admin/login/?next=/admin/%3Ftab%3Dgoals")
    page.fill("#id_username", "manager")
    page.fill("#id_password", "password")
    page.click("input[type=submit]")
    page.wait_for_selector("#goal-summary")

    # The counts against the data: the manager's scope is Lea and her report Ivy.
    rows = insight.flatten(insight.load(Employee.objects.filter(pk__in=[lea.pk, ivy.pk])))
    expected = {
        "green": 1,
        "yellow": 1,
        "red": 1,
        "none": 1,
        "miss": sum(PROJECTED_TO_MISS in r.flags for r in rows),
        "overdue": sum(OVERDUE in r.flags for r in rows),
        "stalled": sum(STALLED in r.flags for r in rows),
    }
    assert (expected["miss"], expected["overdue"], expected["stalled"]) == (2, 1, 1)
    for value, count in expected.items():
        kind = "flag" if value in ("miss", "overdue", "stalled") else "status"
        link = page.locator(f'#goal-summary a[data-{kind}="{value}"] strong')
        assert link.inner_text() == str(count), value
    assert "Not the manager" not in page.content()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "goals-managers-view.png"), full_page=True)

    page.click('#goal-summary a[data-flag="miss"]')
    page.wait_for_url("**flag=miss**")

    assert sorted(page.locator(".goal h3").all_inner_texts()) == [
        "Cut churn At risk projected to miss",
        "Ship the SDK Off track projected to miss stalled",
    ]
    page.locator(".goal-block summary").first.click()
    assert page.locator(".goal-block pre").first.inner_text().startswith("[GOALS]\n- ")
    page.screenshot(path=str(ARTIFACTS / "goals-projected-to-miss.png"), full_page=True)
