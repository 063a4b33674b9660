"""The managers' view on the goals tab: summary, flags, filters, risk order, charts, the
[GOALS] block per employee, reporting lines, CSV export, and a query count that does not grow
with the number of goals."""

import csv
import datetime
import io

import pytest
from django.template.loader import render_to_string
from django.test import RequestFactory

from goals import tab
from goals.models import Goal, GoalStatus, KeyResult
from goals.tests.history_data import employee as _employee
from goals.tests.history_data import goal as _goal
from integrations.models import AsanaConnection, Employee

TAB = "/admin/?tab=goals"
EXPORT = "/admin/tabs/goals/export.csv"


@pytest.fixture
def connection(db) -> AsanaConnection:
    return AsanaConnection.objects.create(
        workspace_gid="1234", workspace_name="Acme", access_token="1/123:" + "a" * 32
    )


@pytest.fixture
def team(connection, manager_user):
    """Ada reports to the manager and owns four goals:
    - "On pace": 10 % a week for 3 weeks, at 40 %, 6 weeks left -> projected 100 %, likely;
    - "Slipping": 0 -> 20 % in 3 weeks (least squares: 6.5 % a week), 2 weeks left ->
      projected 33 %: projected to miss;
    - "Stuck": 30 % unchanged for 20 days, 60 days left -> stalled and projected to miss;
    - "Late": no metric, due 5 days ago, At risk -> overdue.
    """
    ada = _employee("Ada", manager_user, connection)
    _goal(
        connection,
        ada,
        "On pace",
        [(21, 0.1), (14, 0.2), (7, 0.3), (0.01, 0.4)],
        due_in_days=42,
        status=GoalStatus.ON_TRACK,
    )
    _goal(
        connection,
        ada,
        "Slipping",
        [(21, 0.0), (14, 0.05), (7, 0.1), (0.01, 0.2)],
        due_in_days=14,
        status=GoalStatus.ON_TRACK,
    )
    _goal(connection, ada, "Stuck", [(20, 0.3)], due_in_days=60, status=GoalStatus.OFF_TRACK)
    _goal(connection, ada, "Late", due_in_days=-5, status=GoalStatus.AT_RISK)
    return ada


def _page(client, user, query="") -> str:
    client.force_login(user)
    return client.get(TAB + query).content.decode()


def _count(page: str, attribute: str) -> int:
    start = page.index(attribute)
    strong = page.index("<strong>", start) + len("<strong>")
    return int(page[strong : page.index("</strong>", strong)])


def test_the_summary_counts_goals_by_asana_status_and_by_flag(client, manager_user, team):
    page = _page(client, manager_user)

    assert _count(page, 'data-status="green"') == 2
    assert _count(page, 'data-status="red"') == 1
    assert _count(page, 'data-status="yellow"') == 1
    assert _count(page, 'data-status="none"') == 0
    assert _count(page, 'data-flag="miss"') == 2
    assert _count(page, 'data-flag="stalled"') == 1
    assert _count(page, 'data-flag="overdue"') == 1


def test_filtering_by_projected_to_miss_shows_only_those_goals(client, manager_user, team):
    page = _page(client, manager_user, "&flag=miss")

    assert "<h3>Slipping" in page and "<h3>Stuck" in page
    assert "<h3>On pace" not in page and "<h3>Late" not in page


def test_a_goal_on_pace_shows_its_pace_and_likely_projection(client, manager_user, team):
    page = _page(client, manager_user)

    assert "Pace +10%/week (needed +10%/week) · projected 100% by the deadline (likely)" in page


def test_sorting_by_risk_puts_overdue_then_the_furthest_from_target_first(
    client, manager_user, team
):
    page = _page(client, manager_user, "&sort=risk")

    order = sorted(("On pace", "Slipping", "Stuck", "Late"), key=lambda n: page.index(f"<h3>{n}"))
    assert order == ["Late", "Stuck", "Slipping", "On pace"]  # Stuck projects 30 %, below 33 %


def test_each_goal_with_history_has_a_chart_with_its_pace_line(client, manager_user, team):
    page = _page(client, manager_user)

    assert page.count('<svg class="goal-chart"') == 3  # "Late" has no metric
    assert page.count('class="goal-chart-pace"') == 3
    assert "http" not in page[page.index("<svg") : page.index("</svg>")]


def test_the_goals_block_of_each_employee_is_on_the_tab(client, manager_user, team):
    page = _page(client, manager_user)

    block = page[page.index(f'id="goal-block-{team.pk}">') :]
    block = block[block.index(">") + 1 : block.index("</pre>")]
    assert block.startswith("[GOALS]\n- Late — status: At risk — due ")
    assert "flags: overdue" in block
    assert "- Stuck — status: Off track" in block and "flags: projected to miss, stalled" in block


def test_the_time_periods_name_is_shown_beside_the_deadline(admin_client, connection):
    ada = _employee("Ada", connection=connection)
    _goal(
        connection,
        ada,
        "Quarterly",
        time_period_name="Q4 FY26",
        time_period_end_on=datetime.date(2026, 12, 31),
    )

    page = admin_client.get(TAB).content.decode()

    assert 'Due 2026-12-31 <span class="goal-period">(Q4 FY26)</span>' in page


def test_a_manager_sees_their_reports_reports_grouped_by_manager(
    client, manager_user, connection, django_user_model
):
    lead = django_user_model.objects.create_user("lead", email="Lea.Lead@example.com")
    stranger = django_user_model.objects.create_user("stranger", email="sam@example.com")
    lea = _employee("Lea Lead", manager_user, connection)  # her email is the lead's user
    _goal(connection, lea, "Lea's goal")
    _goal(connection, _employee("Ivy", lead, connection), "Ivy's goal")
    _goal(connection, _employee("Sam", stranger, connection), "Sam's goal")

    page = _page(client, manager_user)

    assert "Lea&#x27;s goal" in page and "Ivy&#x27;s goal" in page
    assert "Sam&#x27;s goal" not in page
    assert page.index("Lea&#x27;s goal") < page.index("Reports of lead") < page.index("Ivy")


def _downloaded(response) -> str:
    assert response.status_code == 200 and response.streaming
    return b"".join(response.streaming_content).decode()


def test_the_csv_export_has_exactly_the_rows_the_filters_select(client, manager_user, team):
    client.force_login(manager_user)

    response = client.get(EXPORT + "?flag=miss&sort=risk")
    rows = list(csv.DictReader(io.StringIO(_downloaded(response))))

    assert response["Content-Type"].startswith("text/csv")
    assert [r["name"] for r in rows] == ["Stuck", "Slipping"]
    assert rows[0]["flags"] == "projected to miss, stalled"
    assert rows[0]["progress %"] == "30" and rows[0]["pace %/week"] == "0"


def test_the_csv_export_keeps_to_the_managers_scope(client, manager_user, connection, team):
    other = _employee("Bob", None, connection)
    _goal(connection, other, "Bob's goal")
    client.force_login(manager_user)

    content = _downloaded(client.get(EXPORT))

    assert "Bob" not in content and "On pace" in content


def test_the_csv_export_neutralises_spreadsheet_formulas(admin_client, connection):
    _goal(connection, _employee("Ada", connection=connection), "=HYPERLINK(evil)")

    rows = list(csv.reader(io.StringIO(_downloaded(admin_client.get(EXPORT)))))

    assert rows[1][4] == "'=HYPERLINK(evil)"


def test_the_csv_export_has_every_page_of_the_managers_reports(client, manager_user, connection):
    reports = tab.EMPLOYEES_PER_PAGE + 5
    for n in range(reports):
        _goal(connection, _employee(f"Report {n:02d}", manager_user, connection), f"Goal {n:02d}")
    _goal(connection, _employee("Bob", None, connection), "Bob's goal")
    client.force_login(manager_user)

    rows = list(csv.DictReader(io.StringIO(_downloaded(client.get(EXPORT + "?page=2")))))

    assert [r["name"] for r in rows] == [f"Goal {n:02d}" for n in range(reports)]


def test_the_tab_links_the_export_without_its_page(client, manager_user, connection):
    for n in range(tab.EMPLOYEES_PER_PAGE + 1):
        _employee(f"Report {n:02d}", manager_user, connection)
    client.force_login(manager_user)

    page = client.get(TAB + "&page=2&status=green").content.decode()

    assert f'href="{EXPORT}?tab=goals&amp;status=green"' in page


def test_the_csv_export_refuses_staff_without_the_goal_permission(client, outsider_user):
    client.force_login(outsider_user)

    assert client.get(EXPORT).status_code == 403


def _render(user) -> str:
    request = RequestFactory().get(TAB)
    request.user = user
    return render_to_string("goals/tab.html", tab.context(request), request=request)


def _populate(connection, manager, employees: int, goals: int) -> None:
    for e in range(employees):
        person = _employee(f"P{Employee.objects.count()}", manager, connection)
        for g in range(goals):
            goal = _goal(connection, person, f"G{e}.{g}", [(20, 0.1), (10, 0.2), (1, 0.3)], 30)
            KeyResult.objects.create(goal=goal, asana_gid=f"kr{goal.pk}", name="KR", progress=0.5)


def test_the_query_count_for_a_manager_of_50_with_500_goals_is_that_of_a_small_team(
    connection, manager_user, django_assert_num_queries
):
    _populate(connection, manager_user, 2, 2)
    fresh = type(manager_user).objects.get(pk=manager_user.pk)
    with django_assert_num_queries(10):
        _render(fresh)

    _populate(connection, manager_user, 48, 10)
    assert Goal.objects.count() == 484 and Employee.objects.count() == 50
    fresh = type(manager_user).objects.get(pk=manager_user.pk)
    with django_assert_num_queries(10):
        _render(fresh)
