"""The mapping choices on the integrations tab reuse the workspace's users for a while."""

import pytest

from integrations.models import AsanaConnection, Employee


@pytest.fixture
def connection(fake_asana, db):
    return AsanaConnection.objects.create(
        workspace_gid=fake_asana.workspace_gid, workspace_name="W", access_token=fake_asana.token
    )


def user_reads(fake_asana) -> int:
    return sum(1 for method, path, _ in fake_asana.requests if (method, path) == ("GET", "/users"))


def test_viewing_the_tab_twice_reads_the_workspace_users_once(admin_client, fake_asana, connection):
    Employee.objects.create(name="Una Mapped", email="una@example.com")
    first = admin_client.get("/admin/?tab=integrations")
    second = admin_client.get("/admin/?tab=integrations")
    assert first.status_code == second.status_code == 200
    assert "Pilot Admin" in second.content.decode()
    assert user_reads(fake_asana) == 1


def test_a_failed_read_of_users_is_not_remembered(admin_client, fake_asana, connection):
    Employee.objects.create(name="Una Mapped", email="una@example.com")
    fake_asana.inject("500", times=3, path=r"^/users$")  # one view: a try and two retries
    page = admin_client.get("/admin/?tab=integrations").content.decode()
    assert "Could not read the workspace" in page
    page = admin_client.get("/admin/?tab=integrations").content.decode()
    assert "Pilot Admin" in page
