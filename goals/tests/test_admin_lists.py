"""The goals admin lists: progress reads as a percentage, and the page costs the same
number of queries however many rows it shows."""

import pytest
from django.urls import reverse

from goals.models import Goal, KeyResult
from integrations.models import AsanaConnection, Employee

pytestmark = pytest.mark.django_db


def _rows(count: int) -> None:
    connection, _ = AsanaConnection.objects.get_or_create(
        workspace_gid="1", defaults={"access_token": "t", "workspace_name": "Acme"}
    )
    start = Goal.objects.count()
    for n in range(start, start + count):
        employee = Employee.objects.create(name=f"E{n}", email=f"e{n}@example.com")
        goal = Goal.objects.create(
            employee=employee,
            connection=connection,
            name=f"Goal {n}",
            asana_gid=str(n + 100),
            progress=0.4,
        )
        KeyResult.objects.create(
            goal=goal, asana_gid=str(n + 10_000), name=f"KR {n}", progress=0.25
        )


def test_progress_is_shown_as_a_percentage(admin_client):
    _rows(1)
    goals = admin_client.get(reverse("admin:goals_goal_changelist")).content.decode()
    key_results = admin_client.get(reverse("admin:goals_keyresult_changelist")).content.decode()
    assert '<td class="field-progress_percent">40%</td>' in goals
    assert '<td class="field-progress_percent">25%</td>' in key_results


@pytest.mark.parametrize(("model", "queries"), [("goal", 6), ("keyresult", 5)])
def test_goal_list_query_count_does_not_grow_with_rows(
    admin_client, django_assert_num_queries, model, queries
):
    _rows(3)
    url = reverse(f"admin:goals_{model}_changelist")
    admin_client.get(url)  # warm the session and content type caches
    with django_assert_num_queries(queries):
        assert admin_client.get(url).status_code == 200
    _rows(30)
    with django_assert_num_queries(queries):
        admin_client.get(url)
