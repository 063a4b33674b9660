"""In Chromium: sign in, connect a workspace against the fake, map an employee."""

import os
import shutil
from pathlib import Path

import pytest

from integrations.models import AsanaMapping, Employee

# Playwright's sync API runs an event loop in this thread; Django's ORM calls made by the
# test itself are still synchronous and safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page():
    if not shutil.which(CHROMIUM):
        pytest.skip("Chromium not installed: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield browser.new_page()
        finally:
            browser.close()


def test_connect_and_map_an_employee_in_the_browser(live_server, fake_asana, admin_user, page):
    grace = fake_asana.add_user("Grace Hopper", "grace@example.com", [fake_asana.workspace_gid])
    Employee.objects.create(name="Ada Lovelace", email="ada@example.com")

    page.goto(f"{live_server.url}/admin/login/?next=/admin/%3Ftab%3Dintegrations")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "password")
    page.click("input[type=submit]")
    page.wait_for_selector("#connect-workspace")

    page.fill("input[name=token]", fake_asana.token)
    page.fill("input[name=workspace_gid]", fake_asana.workspace_gid)
    page.click("#connect-workspace button[type=submit]")
    page.wait_for_selector("text=Connected Pilot Workspace")
    assert fake_asana.token not in page.content()

    row = page.locator("tr[data-employee='ada@example.com']")
    row.locator("select[name=asana_user]").select_option(grace)
    row.locator("button[type=submit]").click()
    page.wait_for_selector(f"text=to Asana user {grace}")
    assert page.locator("tr[data-employee='ada@example.com']").count() == 0
    assert AsanaMapping.objects.get(employee__email="ada@example.com").asana_user_gid == grace

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "integrations-tab.png"), full_page=True)
