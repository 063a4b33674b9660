"""Fixtures and helpers shared by the webhook tests.

Everything runs over real HTTP: the fake Asana (its own server thread) calls the site through
pytest-django's `live_server` for the handshake and for deliveries, which is why these tests
use the transactional database.
"""

import importlib
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django_q.models import OrmQ
from django_q.signing import SignedPackage

from integrations.asana.fake.api import FakeAsana
from integrations.models import AsanaConnection, WebhookRegistration
from integrations.webhooks.registration import register_webhook

EXECUTOR = "integrations.tests.webhook_support:recording_executor"
executions: list[str] = []
_executions_lock = threading.Lock()


def recording_executor(task: dict[str, Any]) -> dict[str, Any]:
    """The configured executor in these tests: remembers every task it ran."""
    with _executions_lock:
        executions.append(task["gid"])
    return {"summary": "done by the test executor"}


@pytest.fixture
def executor(settings) -> list[str]:
    settings.PILOT_EXECUTOR = EXECUTOR
    executions.clear()
    return executions


@pytest.fixture
def connection(fake_asana: FakeAsana, transactional_db) -> AsanaConnection:
    return AsanaConnection.objects.create(
        workspace_gid=fake_asana.workspace_gid,
        workspace_name="Pilot Workspace",
        access_token=fake_asana.token,
        polling_enabled=True,
    )


@pytest.fixture
def project(fake_asana: FakeAsana) -> str:
    return fake_asana.add_project(fake_asana.workspace_gid, "Pilot requests")


@pytest.fixture
def registration(connection, project, live_server) -> WebhookRegistration:
    return register_webhook(connection, project, live_server.url)


def queued() -> list[dict[str, Any]]:
    """The tasks waiting in django-q2's ORM queue, oldest first."""
    return [SignedPackage.loads(row.payload) for row in OrmQ.objects.order_by("id")]


def drain_queue() -> list[str]:
    """Run what is queued (and what that queues) the way a cluster worker would; returns the
    function names run."""
    ran: list[str] = []
    while (row := OrmQ.objects.order_by("id").first()) is not None:
        row.delete()
        task = SignedPackage.loads(row.payload)
        func: Callable = task["func"]
        if isinstance(func, str):
            module, name = func.rsplit(".", 1)
            func = getattr(importlib.import_module(module), name)
        func(*task["args"], **task["kwargs"])
        ran.append(task["func"] if isinstance(task["func"], str) else func.__qualname__)
    return ran
