"""Goals test helpers: a connection to the fake workspace and mapped employees in it."""

from collections.abc import Callable, Iterator

import pytest

from integrations.asana.client import AsanaClient
from integrations.models import AsanaConnection, AsanaMapping, Employee


@pytest.fixture
def asana_client(fake_asana) -> Iterator[AsanaClient]:
    """A client for the fake with a budget of its own and quick retries, so tests that make
    hundreds of requests or exhaust retries on injected faults stay fast."""
    client = AsanaClient(
        fake_asana.token,
        base_url=fake_asana.base_url,
        requests_per_minute=100_000,
        max_retries=1,
        backoff_base=0.001,
    )
    yield client
    client.close()


@pytest.fixture
def connection(fake_asana, db) -> AsanaConnection:
    return AsanaConnection.objects.create(
        workspace_gid=fake_asana.workspace_gid,
        workspace_name="Pilot Workspace",
        access_token=fake_asana.token,
    )


Hire = Callable[..., tuple[Employee, str]]


@pytest.fixture
def hire(fake_asana, connection) -> Hire:
    """Create an employee and their Asana user; mapped to that user unless mapped=False."""

    def hire(name: str, *, manager=None, mapped: bool = True) -> tuple[Employee, str]:
        email = f"{name.lower().replace(' ', '.')}@example.com"
        user_gid = fake_asana.add_user(name, email, [fake_asana.workspace_gid])
        employee = Employee.objects.create(name=name, email=email, manager=manager)
        if mapped:
            AsanaMapping.objects.create(
                employee=employee, connection=connection, asana_user_gid=user_gid
            )
        return employee, user_gid

    return hire
