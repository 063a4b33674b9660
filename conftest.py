"""Shared fixtures: personas, the fake Asana served over real HTTP."""

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache

from integrations.asana import budget
from integrations.asana.fake.api import FakeAsana
from integrations.asana.fake.server import FakeAsanaServer


@pytest.fixture(autouse=True, scope="session")
def _budget_store_removed_at_the_end(django_db_setup) -> Iterator[None]:
    """The shared request budget's connections are closed before the test database is
    dropped, and its SQLite file (ASANA_BUDGET_PATH) leaves no trace."""
    yield
    budget.close_all()
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{settings.ASANA_BUDGET_PATH}{suffix}").unlink(missing_ok=True)


@pytest.fixture(autouse=True)
def _empty_budget() -> None:
    """The fake's token repeats across tests: every test starts with an unspent budget and
    no pause left by another test's 429."""
    budget.store().clear()


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    """The cache is process-wide (webhook audit throttling, workspace users for the tab);
    every test starts with it empty."""
    cache.clear()


@pytest.fixture
def console() -> Iterator[io.StringIO]:
    """What the configured console log handler writes (its filters applied)."""
    handler = next(h for h in logging.getLogger().handlers if h.name == "console")
    assert isinstance(handler, logging.StreamHandler)
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        yield stream
    finally:
        handler.setStream(previous)


@pytest.fixture
def demo(settings) -> Iterator[tuple[FakeAsana, str]]:
    """The fake Asana with its demo workspace (`--seed demo`) on 127.0.0.1: the fake and the
    base URL of its control endpoint."""
    from integrations.asana.fake.control import CONTROL_PREFIX, seed_demo

    fake = FakeAsana()
    seed_demo(fake)
    with FakeAsanaServer(fake) as server:
        settings.ASANA_API_BASE_URL = server.base_url
        yield fake, server.base_url.removesuffix("/api/1.0") + CONTROL_PREFIX
    assert fake.violations == [], "\n".join(fake.violations)


@pytest.fixture
def fake_asana(settings) -> Iterator[FakeAsana]:
    """A fresh fake Asana on 127.0.0.1 with `.workspace_gid`, `.user_gid`, `.token`, `.base_url`.

    Points settings.ASANA_API_BASE_URL at it. A test fails if any request broke Asana's contract
    (tests that send bad requests on purpose clear `fake_asana.violations`). A server per test
    costs a few milliseconds to start and stop.
    """
    fake = FakeAsana()
    fake.seed()
    with FakeAsanaServer(fake) as server:
        settings.ASANA_API_BASE_URL = server.base_url
        yield fake
    assert fake.violations == [], "requests broke Asana's contract:\n" + "\n".join(fake.violations)


@pytest.fixture
def hostile_asana(fake_asana) -> FakeAsana:
    """The fake Asana, to be turned hostile: `hostile_asana.misbehave("json-null",
    path=r"^/users/me$")` makes every matching request misbehave for the rest of the test
    (malformed bodies, runaway pagination, "slow" with `delay`: see fake.FAULT_KINDS)."""
    return fake_asana


# Personas. The admin is pytest-django's `admin_user` / `admin_client` (superuser "admin",
# password "password").


@pytest.fixture
def manager_user(db, django_user_model):
    """Staff in the "Managers" group (view-only), or staff with view permissions if no such group."""
    from django.contrib.auth.models import Group, Permission

    user = django_user_model.objects.create_user("manager", "manager@example.com", "password")
    user.is_staff = True
    user.save()
    group = Group.objects.filter(name="Managers").first()
    if group is not None:
        user.groups.add(group)
    else:
        user.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
    return user


@pytest.fixture
def employee_user(db, django_user_model):
    """A signed-in person who is not staff (an employee with an account)."""
    return django_user_model.objects.create_user("employee", "employee@example.com", "password")


@pytest.fixture
def outsider_user(db, django_user_model):
    """Staff outside every role: signs in to the admin but holds no permission at all."""
    return django_user_model.objects.create_user(
        "outsider", "outsider@example.com", "password", is_staff=True
    )


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def chromium_page(monkeypatch):
    """A Playwright page in the system Chromium; skips the test when Chromium is absent."""
    import shutil

    if not shutil.which(CHROMIUM):
        pytest.skip("Chromium not installed: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are
    # still synchronous and safe.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield browser.new_page()
        finally:
            browser.close()
