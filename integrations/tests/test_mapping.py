"""Mapping employees to Asana users: one at a time, by email, and from the tab."""

import pytest
from django.urls import reverse

from integrations.connect import connect_workspace
from integrations.models import AsanaMapping, AuditLog, Employee
from integrations.people.mapping import (
    MappingError,
    automap_by_email,
    map_employee,
    unmapped_employees,
)

pytestmark = pytest.mark.django_db
TAB = "/admin/?tab=integrations"


@pytest.fixture
def connection(fake_asana):
    return connect_workspace(fake_asana.token, fake_asana.workspace_gid)


@pytest.fixture
def ada():
    return Employee.objects.create(name="Ada Lovelace", email="ada@example.com")


def test_unmapped_lists_only_employees_without_a_mapping_in_that_workspace(connection, ada):
    mapped = Employee.objects.create(name="Bob", email="bob@example.com")
    AsanaMapping.objects.create(connection=connection, employee=mapped, asana_user_gid="77")
    assert list(unmapped_employees(connection)) == [ada]


def test_map_employee_creates_mapping_and_audits(connection, ada, admin_user):
    mapping = map_employee(connection, ada, "12345", users=None, actor=admin_user)
    assert (mapping.employee, mapping.asana_user_gid) == (ada, "12345")
    assert AuditLog.objects.filter(action="mapping.create", actor=admin_user).exists()


def test_map_employee_refuses_a_user_already_mapped_to_someone_else(connection, ada):
    bob = Employee.objects.create(name="Bob", email="bob@example.com")
    map_employee(connection, bob, "12345", users=None)
    with pytest.raises(MappingError, match="already mapped to Bob"):
        map_employee(connection, ada, "12345", users=None)
    assert not AsanaMapping.objects.filter(employee=ada).exists()


def test_map_employee_refuses_a_second_user_for_the_same_employee(connection, ada):
    map_employee(connection, ada, "12345", users=None)
    with pytest.raises(MappingError, match="already mapped to Asana user 12345"):
        map_employee(connection, ada, "67890", users=None)
    assert AsanaMapping.objects.get(employee=ada).asana_user_gid == "12345"


def test_map_employee_refuses_a_non_numeric_gid(connection, ada):
    with pytest.raises(MappingError, match="must be a number"):
        map_employee(connection, ada, "ada", users=None)
    assert not AsanaMapping.objects.exists()


def test_automap_matches_emails_case_insensitively_across_pages(fake_asana, connection, ada):
    fake_asana.add_user("Ada L.", "ADA@Example.com", [fake_asana.workspace_gid])
    for i in range(120):  # more than one page of users
        fake_asana.add_user(f"User {i}", f"user{i}@example.com", [fake_asana.workspace_gid])
    carl = Employee.objects.create(name="Carl", email="user119@example.com")
    nobody = Employee.objects.create(name="Nobody", email="nobody@example.com")
    mapped, remaining = automap_by_email(connection)
    assert {m.employee for m in mapped} == {ada, carl}
    assert AsanaMapping.objects.get(employee=ada).asana_user_name == "Ada L."
    assert remaining == [nobody]
    assert any(q.get("offset") for _, path, q in fake_asana.requests if path == "/users")
    assert AuditLog.objects.filter(action="mapping.automap").exists()
    assert fake_asana.violations == []


def test_automap_when_asana_fails_maps_nobody(fake_asana, connection, ada):
    fake_asana.add_user("Ada", "ada@example.com", [fake_asana.workspace_gid])
    fake_asana.inject("500", times=99)
    with pytest.raises(MappingError, match="not available right now"):
        automap_by_email(connection)
    assert not AsanaMapping.objects.exists()


def test_tab_lists_unmapped_employees_with_workspace_users(
    fake_asana, connection, ada, admin_client
):
    fake_asana.add_user("Grace Hopper", "grace@example.com", [fake_asana.workspace_gid])
    page = admin_client.get(TAB).content.decode()
    assert "Ada Lovelace" in page and "Grace Hopper" in page
    assert 'name="asana_user"' in page and 'name="asana_user_gid"' in page


def test_tab_keeps_the_gid_input_when_asana_fails(fake_asana, connection, ada, admin_client):
    fake_asana.inject("500", times=99)
    page = admin_client.get(TAB).content.decode()
    assert "Could not read the workspace&#x27;s users" in page
    assert 'name="asana_user_gid"' in page and 'name="asana_user"' not in page


def test_map_view_maps_the_chosen_user(fake_asana, connection, ada, admin_client):
    grace = fake_asana.add_user("Grace", "grace@example.com", [fake_asana.workspace_gid])
    response = admin_client.post(
        reverse("admin:integrations:map", args=[connection.pk]),
        {"employee": ada.pk, "asana_user": grace},
        follow=True,
    )
    assert AsanaMapping.objects.get(employee=ada).asana_user_gid == grace
    assert f"Mapped Ada Lovelace to Asana user {grace}" in response.content.decode()


@pytest.fixture
def bobs_gid(fake_asana, connection) -> str:
    """An Asana user of the workspace, already mapped to Bob."""
    gid = fake_asana.add_user("Bob B", "bob.b@example.com", [fake_asana.workspace_gid])
    bob = Employee.objects.create(name="Bob", email="bob@example.com")
    map_employee(connection, bob, gid, users=None)
    return gid


def test_map_view_shows_the_duplicate_mapping_error(connection, ada, admin_client, bobs_gid):
    gid = bobs_gid
    response = admin_client.post(
        reverse("admin:integrations:map", args=[connection.pk]),
        {"employee": ada.pk, "asana_user_gid": gid},
        follow=True,
    )
    assert "already mapped to Bob" in response.content.decode()
    assert not AsanaMapping.objects.filter(employee=ada).exists()


def test_map_view_error_stands_in_the_employees_row_with_the_typed_gid(
    connection, ada, admin_client, bobs_gid
):
    gid = bobs_gid
    response = admin_client.post(
        reverse("admin:integrations:map", args=[connection.pk]),
        {"employee": ada.pk, "asana_user_gid": gid},
    )
    row_id = f"map-{connection.pk}-{ada.pk}"
    assert response["Location"] == f"{TAB}#{row_id}"
    page = admin_client.get(TAB).content.decode()
    row = page[page.index(f'id="{row_id}"') : page.index("</tr>", page.index(f'id="{row_id}"'))]
    assert "already mapped to Bob" in row
    assert f'value="{gid}"' in row and f'aria-describedby="{row_id}-error"' in row


def test_map_view_without_a_user_explains_what_to_do(connection, ada, admin_client):
    response = admin_client.post(
        reverse("admin:integrations:map", args=[connection.pk]), {"employee": ada.pk}, follow=True
    )
    assert "Choose an Asana user or type their GID" in response.content.decode()


def test_map_by_email_button_reports_mapped_and_remaining(
    fake_asana, connection, ada, admin_client
):
    fake_asana.add_user("Ada", "ada@example.com", [fake_asana.workspace_gid])
    Employee.objects.create(name="Zed", email="zed@example.com")
    response = admin_client.post(
        reverse("admin:integrations:automap", args=[connection.pk]), follow=True
    )
    assert "Mapped 1 by email (Ada Lovelace); 1 still unmapped." in response.content.decode()


def test_map_by_email_when_asana_is_down_says_so_beside_the_button(
    fake_asana, connection, ada, admin_client
):
    fake_asana.inject("500", times=99)
    admin_client.post(reverse("admin:integrations:automap", args=[connection.pk]))
    page = admin_client.get(TAB).content.decode()
    form = page[page.index(f'id="automap-{connection.pk}"') :]
    assert "Asana is not available right now" in form[: form.index("</form>")]
    assert not AsanaMapping.objects.exists()


def test_map_view_refuses_a_typed_gid_that_is_not_a_workspace_user(connection, ada, admin_client):
    response = admin_client.post(
        reverse("admin:integrations:map", args=[connection.pk]),
        {"employee": ada.pk, "asana_user_gid": "12345"},
        follow=True,
    )
    assert "No user with GID 12345 is in the workspace" in response.content.decode()
    assert not AsanaMapping.objects.filter(employee=ada).exists()


def test_map_view_records_the_asana_users_name(connection, ada, admin_client, fake_asana):
    gid = fake_asana.add_user("Ada L.", "ada.l@example.com", [fake_asana.workspace_gid])
    admin_client.post(
        reverse("admin:integrations:map", args=[connection.pk]),
        {"employee": ada.pk, "asana_user_gid": gid},
    )
    assert AsanaMapping.objects.get(employee=ada).asana_user_name == "Ada L."


def test_map_view_accepts_a_typed_gid_when_asana_cannot_list_users(
    connection, ada, admin_client, fake_asana
):
    fake_asana.inject("500", times=3, path=r"^/users$")  # one read: a try and two retries
    admin_client.post(
        reverse("admin:integrations:map", args=[connection.pk]),
        {"employee": ada.pk, "asana_user_gid": "12345"},
    )
    assert AsanaMapping.objects.get(employee=ada).asana_user_gid == "12345"


@pytest.mark.parametrize(
    "look_alike",
    [
        "\u212aate@example.com",  # KELVIN SIGN: str.lower() turns it into "k"
        "kate@example.co\u217f",  # SMALL ROMAN NUMERAL ONE THOUSAND: NFKC turns it into "m"
        "kate@\uff45xample.com",  # FULLWIDTH "e"
        "kate@examp\u0130e.com",  # dotted capital I: str.lower() gives "i" + a combining dot
    ],
)
def test_automap_never_matches_unicode_look_alikes(fake_asana, connection, look_alike):
    kate = Employee.objects.create(name="Kate", email="kate@example.com")
    fake_asana.add_user("Impostor", look_alike, [fake_asana.workspace_gid])
    mapped, remaining = automap_by_email(connection)
    assert mapped == [] and remaining == [kate]
