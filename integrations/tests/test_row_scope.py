"""Who sees whose rows, the same in both apps (integrations.people.scope): who may change
employees sees everyone's; a manager only their reports'; others nothing."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from goals.models import Goal, GoalSync, KeyResult
from integrations.models import AsanaConnection, AsanaMapping, Employee

pytestmark = pytest.mark.django_db

LISTS = [
    ("integrations", "employee"),
    ("integrations", "asanamapping"),
    ("goals", "goal"),
    ("goals", "keyresult"),
    ("goals", "goalsync"),
]


@pytest.fixture
def rows(manager_user, admin_user):
    """Mina reports to the manager, Otto to the admin; each has a mapping, a goal, a key
    result and a one-employee sync."""
    connection = AsanaConnection.objects.create(workspace_gid="1", access_token="t" * 20)
    for n, (name, manager) in enumerate(
        [("Mina Report", manager_user), ("Otto Other", admin_user)]
    ):
        email = f"{name.split()[0].lower()}@example.com"
        employee = Employee.objects.create(name=name, email=email, manager=manager)
        AsanaMapping.objects.create(
            employee=employee, connection=connection, asana_user_gid=str(10 + n)
        )
        goal = Goal.objects.create(
            employee=employee, connection=connection, name=f"{name} goal", asana_gid=str(100 + n)
        )
        KeyResult.objects.create(goal=goal, asana_gid=str(200 + n), name=f"{name} key result")
        GoalSync.objects.create(
            connection=connection, employee_email=email, state=GoalSync.State.FAILED, error=name
        )


def _grant(user, *codenames: str) -> None:
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))


def _page(client, app: str, model: str) -> str:
    return client.get(reverse(f"admin:{app}_{model}_changelist")).content.decode()


@pytest.mark.parametrize(("app", "model"), LISTS)
def test_the_admin_sees_every_employees_rows(admin_client, rows, app, model):
    page = _page(admin_client, app, model)
    assert "Mina Report" in page and "Otto Other" in page


@pytest.mark.parametrize(("app", "model"), LISTS)
def test_a_manager_sees_only_their_reports_rows(client, manager_user, rows, app, model):
    _grant(manager_user, "view_asanamapping")
    client.force_login(manager_user)
    page = _page(client, app, model)
    assert "Mina Report" in page
    assert "Otto Other" not in page


@pytest.mark.parametrize(("app", "model"), LISTS)
def test_who_may_change_employees_sees_every_employees_rows_in_both_apps(
    client, outsider_user, rows, app, model
):
    # They could make themselves anyone's manager, so a narrower view would protect nothing.
    _grant(
        outsider_user,
        "change_employee",
        "view_employee",
        "view_asanamapping",
        "view_goal",
        "view_keyresult",
        "view_goalsync",
    )
    client.force_login(outsider_user)
    page = _page(client, app, model)
    assert "Mina Report" in page and "Otto Other" in page


@pytest.mark.parametrize(("app", "model"), LISTS)
def test_an_outsider_with_no_permission_is_refused_every_list(
    client, outsider_user, rows, app, model
):
    client.force_login(outsider_user)
    assert client.get(reverse(f"admin:{app}_{model}_changelist")).status_code == 403


@pytest.mark.parametrize(("app", "model"), LISTS)
def test_an_employee_who_is_not_staff_is_sent_to_sign_in(client, employee_user, rows, app, model):
    client.force_login(employee_user)
    response = client.get(reverse(f"admin:{app}_{model}_changelist"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_who_may_change_employees_sees_everyones_goals_on_the_goals_tab(
    client, outsider_user, rows
):
    _grant(outsider_user, "change_employee", "view_employee", "view_goal")
    client.force_login(outsider_user)
    page = client.get(reverse("admin:index") + "?tab=goals").content.decode()
    assert "Mina Report" in page and "Otto Other" in page


@pytest.mark.parametrize("model", ["goal", "keyresult", "goalsync", "employeegoalstate"])
def test_not_even_the_admin_may_delete_synced_goal_rows(admin_client, rows, model):
    # They come from Asana: a row deleted here would only come back at the next sync.
    page = _page(admin_client, "goals", model)
    assert 'value="delete_selected"' not in page


SCOPED_FORMS = [
    ("integrations", "employee", Employee, "name"),
    ("integrations", "asanamapping", AsanaMapping, "employee__name"),
    ("goals", "goal", Goal, "employee__name"),
    ("goals", "keyresult", KeyResult, "goal__employee__name"),
]


def _open_as_manager(client, manager_user, app: str, model: str, object_id: str):
    _grant(manager_user, "view_asanamapping")
    client.force_login(manager_user)
    return client.get(reverse(f"admin:{app}_{model}_change", args=[object_id]), follow=True)


@pytest.mark.parametrize(("app", "model", "cls", "name_path"), SCOPED_FORMS)
def test_a_manager_opening_a_row_outside_their_reports_is_told_they_see_only_their_reports(
    client, manager_user, rows, app, model, cls, name_path
):
    other = cls.objects.get(**{name_path: "Otto Other"})
    response = _open_as_manager(client, manager_user, app, model, str(other.pk))
    page = response.content.decode()
    assert "You can only see your own reports" in page
    assert "Perhaps it was deleted" not in page
    assert response.redirect_chain[-1][0] == reverse(f"admin:{app}_{model}_changelist")
    assert "Mina Report" in page


@pytest.mark.parametrize(("app", "model", "cls", "name_path"), SCOPED_FORMS)
def test_a_manager_cannot_tell_a_row_outside_their_reports_from_one_that_does_not_exist(
    client, manager_user, rows, app, model, cls, name_path
):
    other = cls.objects.get(**{name_path: "Otto Other"})
    missing = cls.objects.order_by("-pk").first().pk + 1000
    seen = []
    for object_id in (other.pk, missing):
        response = _open_as_manager(client, manager_user, app, model, str(object_id))
        seen.append(
            (
                response.redirect_chain,
                [str(m).replace(str(object_id), "ID") for m in response.context["messages"]],
            )
        )
    assert seen[0] == seen[1]


def test_the_admin_opening_a_row_that_does_not_exist_is_told_so(admin_client, rows):
    response = admin_client.get(
        reverse("admin:integrations_employee_change", args=["99999"]), follow=True
    )
    assert "doesn’t exist" in response.content.decode()
