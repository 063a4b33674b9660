"""The mapping choices on the integrations tab reuse the workspace's users for a while, and
remember a failure to read them too, so a slow Asana does not hold up every page view."""

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


def test_a_failed_read_of_users_is_remembered_for_the_failure_period(
    admin_client, fake_asana, connection
):
    Employee.objects.create(name="Una Mapped", email="una@example.com")
    fake_asana.inject("500", path=r"^/users$")  # page views try once, without retries
    page = admin_client.get("/admin/?tab=integrations").content.decode()
    assert "Could not read the workspace" in page
    page = admin_client.get("/admin/?tab=integrations").content.decode()
    assert "Could not read the workspace" in page
    assert user_reads(fake_asana) == 1


def test_after_the_failure_period_the_users_are_read_again(
    admin_client, fake_asana, connection, settings
):
    settings.ASANA_USERS_FAILURE_CACHE_SECONDS = 0  # Django's cache: 0 means "do not keep"
    Employee.objects.create(name="Una Mapped", email="una@example.com")
    fake_asana.inject("500", path=r"^/users$")
    admin_client.get("/admin/?tab=integrations")
    page = admin_client.get("/admin/?tab=integrations").content.decode()
    assert "Pilot Admin" in page
    assert user_reads(fake_asana) == 2


def test_a_slow_asana_costs_one_page_view_the_short_timeout_then_none(
    admin_client, hostile_asana, connection, settings
):
    settings.ASANA_INTERACTIVE_TIMEOUT = 0.3
    Employee.objects.create(name="Una Mapped", email="una@example.com")
    hostile_asana.misbehave("slow", path=r"^/users$", delay=3)
    first = admin_client.get("/admin/?tab=integrations")
    second = admin_client.get("/admin/?tab=integrations")
    assert first.status_code == second.status_code == 200
    assert "Asana did not answer in time" in first.content.decode()
    assert "Una Mapped" in second.content.decode()
    assert user_reads(hostile_asana) == 1
