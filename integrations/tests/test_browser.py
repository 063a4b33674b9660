"""In Chromium: sign in, connect a workspace against the fake, map an employee."""

from pathlib import Path

import pytest

from integrations.models import AsanaMapping, Employee

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_connect_and_map_an_employee_in_the_browser(
    live_server, fake_asana, admin_user, chromium_page
):
    page = chromium_page
    grace = fake_asana.add_user("Grace Hopper", "grace@example.com", [fake_asana.workspace_gid])
    Employee.objects.create(name="Ada Lovelace", email="ada@example.com")

    page.goto(f"{live_server.url}/admin/login/?next=/admin/%3Ftab%3Dintegrations")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "password")
    page.click("input[type=submit]")
    page.wait_for_selector("#connect-workspace")

    # Fields are reached by their labels and buttons by their names, as assistive
    # technology reaches them.
    page.get_by_label("Personal access token").fill(fake_asana.token)
    page.get_by_label("Workspace GID").fill("my-workspace")
    page.get_by_role("button", name="Connect", exact=True).click()
    error = page.locator("#id_workspace_gid_error")
    error.wait_for()
    assert "a number (digits only)" in error.inner_text()
    assert page.get_by_label("Workspace GID").get_attribute("aria-invalid") == "true"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "integrations-tab-error.png"), full_page=True)

    page.get_by_label("Personal access token").fill(fake_asana.token)
    page.get_by_label("Workspace GID").fill(fake_asana.workspace_gid)
    page.get_by_role("button", name="Connect", exact=True).click()
    page.wait_for_selector("text=Connected Pilot Workspace")
    assert fake_asana.token not in page.content()
    page.screenshot(path=str(ARTIFACTS / "integrations-tab-unmapped.png"), full_page=True)

    page.get_by_label("Asana user for Ada Lovelace").select_option(grace)
    page.get_by_role("button", name="Map Ada Lovelace").click()
    page.wait_for_selector(f"text=to Asana user {grace}")
    assert page.locator("tr[data-employee='ada@example.com']").count() == 0
    assert AsanaMapping.objects.get(employee__email="ada@example.com").asana_user_gid == grace

    page.screenshot(path=str(ARTIFACTS / "integrations-tab.png"), full_page=True)
