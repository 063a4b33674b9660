"""Who may press the tab's buttons: staff with the model permission, nobody else."""

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from integrations.models import AsanaConnection, AsanaMapping, Employee

pytestmark = pytest.mark.django_db


@pytest.fixture
def connection():
    return AsanaConnection.objects.create(
        workspace_gid="111", workspace_name="Acme", access_token="2/1/2:" + "a" * 32
    )


def _posts(connection: AsanaConnection, employee: Employee) -> list[tuple[str, dict]]:
    return [
        (reverse("admin:integrations:connect"), {"token": "t", "workspace_gid": "111"}),
        (reverse("admin:integrations:check", args=[connection.pk]), {}),
        (
            reverse("admin:integrations:settings", args=[connection.pk]),
            {f"c{connection.pk}-pilot_tag": "x", f"c{connection.pk}-poll_interval": "60"},
        ),
        (
            reverse("admin:integrations:map", args=[connection.pk]),
            {"employee": employee.pk, "asana_user_gid": "5"},
        ),
        (reverse("admin:integrations:automap", args=[connection.pk]), {}),
    ]


def test_tab_urls_live_under_the_admin_namespace(connection):
    assert reverse("admin:integrations:connect") == "/admin/tabs/integrations/connect/"
    assert reverse("admin:integrations:map", args=[connection.pk]) == (
        f"/admin/tabs/integrations/{connection.pk}/map/"
    )


@pytest.mark.parametrize("persona", ["manager_user", "outsider_user"])
def test_posts_by_staff_without_permission_are_forbidden_and_change_nothing(
    request, connection, persona
):
    client = Client()
    client.force_login(request.getfixturevalue(persona))
    employee = Employee.objects.create(name="Ada", email="ada@example.com")
    for url, data in _posts(connection, employee):
        assert client.post(url, data).status_code == 403, url
    connection.refresh_from_db()
    assert (connection.pilot_tag, connection.last_checked_at) == ("pilot", None)
    assert not AsanaMapping.objects.exists()


@pytest.mark.parametrize("persona", ["employee_user", None])
def test_posts_by_people_outside_the_admin_go_to_its_sign_in_and_change_nothing(
    request, connection, persona
):
    client = Client()
    if persona:
        client.force_login(request.getfixturevalue(persona))
    employee = Employee.objects.create(name="Ada", email="ada@example.com")
    for url, data in _posts(connection, employee):
        response = client.post(url, data)
        assert response.status_code == 302, url
        assert response["Location"] == f"/admin/login/?next={url}", url
    connection.refresh_from_db()
    assert (connection.pilot_tag, connection.last_checked_at) == ("pilot", None)
    assert not AsanaMapping.objects.exists()


def test_get_on_a_post_view_is_not_allowed(admin_client):
    assert admin_client.get(reverse("admin:integrations:connect")).status_code == 405


def test_manager_sees_the_tab_without_buttons_or_tokens(client, manager_user, connection):
    client.force_login(manager_user)
    page = client.get("/admin/?tab=integrations").content.decode()
    assert "Connect an Asana workspace" not in page
    assert "Test connection" not in page
    assert connection.access_token not in page


def test_admin_sees_connect_form_with_password_field(admin_client):
    page = admin_client.get("/admin/?tab=integrations").content.decode()
    assert "Connect an Asana workspace" in page
    assert 'type="password" name="token"' in page


def _grant(user, *codenames: str) -> None:
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))


def test_only_staff_reach_the_admin_whatever_their_permissions(client, employee_user, connection):
    _grant(employee_user, "view_asanaconnection", "change_asanaconnection", "add_asanamapping")
    client.force_login(employee_user)
    response = client.get("/admin/?tab=integrations")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    check_url = reverse("admin:integrations:check", args=[connection.pk])
    response = client.post(check_url)
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    connection.refresh_from_db()
    assert connection.last_checked_at is None


def test_staff_with_the_model_permission_may_change_a_connection(client, outsider_user, connection):
    _grant(outsider_user, "view_asanaconnection", "change_asanaconnection")
    client.force_login(outsider_user)
    prefix = f"c{connection.pk}-"
    response = client.post(
        reverse("admin:integrations:settings", args=[connection.pk]),
        {prefix + "pilot_tag": "robot", prefix + "poll_interval": "60"},
    )
    assert response.status_code == 302
    connection.refresh_from_db()
    assert connection.pilot_tag == "robot"
