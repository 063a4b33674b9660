"""A view-only manager loads only their own reports, whatever URL they type."""

import pytest
from django.contrib.auth.models import Permission

from integrations.models import AsanaConnection, AsanaMapping, Employee


@pytest.fixture
def reports(manager_user, admin_user):
    mine = Employee.objects.create(
        name="Mina Report", email="mina@example.com", manager=manager_user
    )
    other = Employee.objects.create(name="Otto Other", email="otto@example.com", manager=admin_user)
    return mine, other


def test_manager_sees_only_their_reports_in_the_employee_list(client, manager_user, reports):
    client.force_login(manager_user)
    page = client.get("/admin/integrations/employee/").content.decode()
    assert "Mina Report" in page
    assert "Otto Other" not in page


def test_manager_cannot_open_another_managers_report_by_url(client, manager_user, reports):
    client.force_login(manager_user)
    _, other = reports
    response = client.get(f"/admin/integrations/employee/{other.pk}/change/", follow=True)
    assert "Otto Other" not in response.content.decode()


def test_staff_with_view_only_mapping_permission_sees_only_their_reports_mappings(
    client, manager_user, reports
):
    manager_user.user_permissions.add(Permission.objects.get(codename="view_asanamapping"))
    connection = AsanaConnection.objects.create(workspace_gid="1", access_token="t" * 20)
    mine, other = reports
    AsanaMapping.objects.create(employee=mine, connection=connection, asana_user_gid="11")
    AsanaMapping.objects.create(employee=other, connection=connection, asana_user_gid="22")
    client.force_login(manager_user)
    page = client.get("/admin/integrations/asanamapping/").content.decode()
    assert "Mina Report" in page
    assert "Otto Other" not in page


def test_admin_sees_every_employee(admin_client, reports):
    page = admin_client.get("/admin/integrations/employee/").content.decode()
    assert "Mina Report" in page and "Otto Other" in page


def test_manager_filter_names_no_other_user_to_a_manager(
    client, manager_user, reports, django_user_model
):
    zelda = django_user_model.objects.create_user("zelda_manager", "z@example.com", "password")
    Employee.objects.create(name="Zed Report", email="zed@example.com", manager=zelda)
    client.force_login(manager_user)
    page = client.get("/admin/integrations/employee/").content.decode()
    assert "By manager" in page and "?manager__id__exact=" in page
    assert "zelda_manager" not in page
    assert f"?manager__id__exact={zelda.pk}" not in page


def test_admin_filter_lists_every_manager(admin_client, reports, manager_user):
    page = admin_client.get("/admin/integrations/employee/").content.decode()
    assert f"?manager__id__exact={manager_user.pk}" in page
