"""One mapping policy (integrations.people.mapping.mapping_problem) at every entry point: the
tab's map form, the CSV import and the admin's mapping forms. Each refuses a GID that is
not a number, a GID already given to another employee, and a GID that is not a user of the
workspace (when Asana can list them); only the admin's form of a mapping changes an
employee's existing mapping, and every write is audited."""

import io

import pytest
from django.urls import reverse

from integrations.connect import connect_workspace
from integrations.models import AsanaMapping, AuditLog, Employee
from integrations.people.csv_import import import_employees_csv

pytestmark = pytest.mark.django_db


@pytest.fixture
def connection(fake_asana):
    return connect_workspace(fake_asana.token, fake_asana.workspace_gid)


@pytest.fixture
def users(fake_asana) -> dict[str, str]:
    workspace = [fake_asana.workspace_gid]
    return {
        "ada": fake_asana.add_user("Ada L.", "ada@example.com", workspace),
        "bob": fake_asana.add_user("Bob B.", "bob@example.com", workspace),
        "ada-new": fake_asana.add_user("Ada Lovelace", "ada.new@example.com", workspace),
    }


@pytest.fixture
def ada(connection, users):
    """Ada, already mapped to her Asana user."""
    ada = Employee.objects.create(name="Ada", email="ada@example.com")
    AsanaMapping.objects.create(employee=ada, connection=connection, asana_user_gid=users["ada"])
    return ada


def _csv(text: str) -> io.BytesIO:
    return io.BytesIO(text.encode())


def _import_reason(text: str) -> str:
    [rejected] = import_employees_csv(_csv(text)).rejected
    return rejected.reason


# -- the CSV import -------------------------------------------------------------------------


def test_import_refuses_to_re_point_an_employees_mapping(connection, users, ada):
    reason = _import_reason(f"email,name,asana_user_gid\nada@example.com,Ada,{users['ada-new']}\n")
    assert f"already mapped to Asana user {users['ada']}" in reason
    assert "change or delete that mapping in the admin" in reason
    assert AsanaMapping.objects.get(employee=ada).asana_user_gid == users["ada"]


def test_import_refuses_a_gid_that_is_not_a_workspace_user(connection, users):
    reason = _import_reason("email,name,asana_user_gid\ncy@example.com,Cy,4242\n")
    assert "No user with GID 4242 is in the workspace" in reason
    assert not AsanaMapping.objects.exists()


def test_import_accepts_a_gid_as_given_when_asana_cannot_list_users(connection, fake_asana):
    fake_asana.inject("500", times=3, path=r"^/users$")
    report = import_employees_csv(_csv("email,name,asana_user_gid\ncy@example.com,Cy,4242\n"))
    assert report.rejected == []
    assert AsanaMapping.objects.get().asana_user_gid == "4242"


def test_import_records_the_mapping_it_makes_in_its_audit_row(connection, users):
    import_employees_csv(_csv(f"email,name,asana_user_gid\nbob@example.com,Bob,{users['bob']}\n"))
    entry = AuditLog.objects.get(action="employees.import")
    assert f"Mapped to Asana users: bob@example.com → {users['bob']}." in entry.detail
    assert AsanaMapping.objects.get().asana_user_name == "Bob B."


# -- the tab --------------------------------------------------------------------------------


def test_tab_refuses_to_re_point_an_employees_mapping(connection, users, ada, admin_client):
    response = admin_client.post(
        reverse("admin:integrations:map", args=[connection.pk]),
        {"employee": ada.pk, "asana_user_gid": users["ada-new"]},
        follow=True,
    )
    assert f"already mapped to Asana user {users['ada']}" in response.content.decode()
    assert AsanaMapping.objects.get(employee=ada).asana_user_gid == users["ada"]


# -- the admin's mapping forms --------------------------------------------------------------


def _add_mapping(client, employee, connection, gid):
    return client.post(
        reverse("admin:integrations_asanamapping_add"),
        {"employee": employee.pk, "connection": connection.pk, "asana_user_gid": gid},
    )


def test_admin_refuses_a_gid_that_is_not_a_workspace_user(connection, users, admin_client):
    cy = Employee.objects.create(name="Cy", email="cy@example.com")
    page = _add_mapping(admin_client, cy, connection, "4242").content.decode()
    assert "No user with GID 4242 is in the workspace" in page
    assert not AsanaMapping.objects.filter(employee=cy).exists()


def test_admin_refuses_a_gid_given_to_another_employee(connection, users, ada, admin_client):
    bob = Employee.objects.create(name="Bob", email="bob@example.com")
    page = _add_mapping(admin_client, bob, connection, users["ada"]).content.decode()
    assert f"Asana user {users['ada']} is already mapped to Ada" in page
    assert not AsanaMapping.objects.filter(employee=bob).exists()


def test_admin_refuses_a_second_mapping_for_the_same_employee(connection, users, ada, admin_client):
    page = _add_mapping(admin_client, ada, connection, users["ada-new"]).content.decode()
    assert f"already mapped to Asana user {users['ada']}" in page
    assert AsanaMapping.objects.filter(employee=ada).count() == 1


def test_admin_mapping_form_changes_the_mapping_deliberately_and_audits_it(
    connection, users, ada, admin_client
):
    mapping = AsanaMapping.objects.get(employee=ada)
    response = admin_client.post(
        reverse("admin:integrations_asanamapping_change", args=[mapping.pk]),
        {"employee": ada.pk, "connection": connection.pk, "asana_user_gid": users["ada-new"]},
    )
    assert response.status_code == 302
    mapping.refresh_from_db()
    assert (mapping.asana_user_gid, mapping.asana_user_name) == (users["ada-new"], "Ada Lovelace")
    assert AuditLog.objects.filter(action="admin.asanamapping.change").exists()


def test_admin_employee_page_checks_its_mapping_rows_by_the_same_policy(
    connection, users, ada, admin_client
):
    bob = Employee.objects.create(name="Bob", email="bob@example.com")
    response = admin_client.post(
        reverse("admin:integrations_employee_change", args=[bob.pk]),
        {
            "name": "Bob",
            "email": "bob@example.com",
            "mappings-TOTAL_FORMS": "1",
            "mappings-INITIAL_FORMS": "0",
            "mappings-0-connection": connection.pk,
            "mappings-0-asana_user_gid": users["ada"],
        },
    )
    assert f"Asana user {users['ada']} is already mapped to Ada" in response.content.decode()
    assert not AsanaMapping.objects.filter(employee=bob).exists()
