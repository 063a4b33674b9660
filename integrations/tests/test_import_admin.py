"""CSV import in the admin: upload, a preview with each row's outcome, confirm."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from integrations.models import AuditLog, Employee

pytestmark = pytest.mark.django_db

PREVIEW = reverse("admin:integrations:import-preview")
CONFIRM = reverse("admin:integrations:import-confirm")
TAB = reverse("admin:index") + "?tab=integrations"
PEOPLE = b"email,name\nada@example.com,Ada Lovelace\nnope,Bad Row\nkeep@example.com,Keep\n"


def _upload(client, content: bytes = PEOPLE, name: str = "people.csv", **extra):
    return client.post(PREVIEW, {"file": SimpleUploadedFile(name, content), **extra})


def test_the_preview_gives_each_row_its_outcome_and_reason_and_writes_nothing(admin_client):
    Employee.objects.create(name="Keep", email="keep@example.com")
    page = _upload(admin_client).content.decode()
    assert "Preview of people.csv" in page
    assert "1 to create" in page and "1 unchanged" in page and "1 rejected" in page
    assert "&#x27;nope&#x27; is not a valid email address" in page
    assert 'data-line="2"' in page and "create" in page
    assert "Import 1 row" in page
    assert list(Employee.objects.values_list("email", flat=True)) == ["keep@example.com"]
    assert not AuditLog.objects.filter(action="employees.import").exists()


def test_confirming_imports_the_previewed_file_and_audits_one_sentence(admin_client):
    digest = _upload(admin_client).context["digest"]
    response = admin_client.post(CONFIRM, {"digest": digest}, follow=True)
    assert "Imported people.csv: 2 created, 0 updated, 0 unchanged, 1 rejected" in (
        response.content.decode()
    )
    assert set(Employee.objects.values_list("email", flat=True)) == {
        "ada@example.com",
        "keep@example.com",
    }
    entry = AuditLog.objects.get(action="employees.import")
    assert (entry.actor_label, entry.outcome) == ("admin", "warning")
    assert entry.detail == (
        "Imported people.csv: 2 created, 0 updated, 0 unchanged, 1 rejected. "
        "Rejected line 3 (nope): 'nope' is not a valid email address."
    )


def test_confirming_twice_imports_once(admin_client):
    digest = _upload(admin_client).context["digest"]
    admin_client.post(CONFIRM, {"digest": digest})
    response = admin_client.post(CONFIRM, {"digest": digest}, follow=True)
    assert "the preview has expired" in response.content.decode()
    assert AuditLog.objects.filter(action="employees.import").count() == 1


def test_a_confirm_that_does_not_match_the_latest_preview_imports_nothing(admin_client):
    _upload(admin_client)
    response = admin_client.post(CONFIRM, {"digest": "0" * 64}, follow=True)
    assert "upload the file again" in response.content.decode()
    assert not Employee.objects.exists()


def test_a_malformed_file_is_refused_with_its_reason_before_any_preview(admin_client):
    response = _upload(admin_client, b"mail,name\nada@example.com,Ada\n")
    page = admin_client.get(response["Location"]).content.decode()
    assert "Nothing imported: missing column(s) email" in page
    assert not Employee.objects.exists()


def test_a_file_over_the_size_limit_is_refused_and_points_at_the_command(admin_client, settings):
    settings.EMPLOYEE_IMPORT_MAX_BYTES = 20
    page = admin_client.get(_upload(admin_client)["Location"]).content.decode()
    assert "more than the 20 the admin accepts" in page
    assert "manage.py employees import" in page


def test_a_manager_may_not_import(client, manager_user):
    client.force_login(manager_user)
    response = _upload(client)
    assert response.status_code == 403
    assert "You may not see this page" in response.content.decode()
    assert not Employee.objects.exists()


def test_the_tab_offers_the_import_and_says_when_there_are_no_employees(admin_client):
    page = admin_client.get(TAB).content.decode()
    assert 'id="employees"' in page and "Preview import" in page
    assert "No employees yet — " in page and "import a CSV" in page


@pytest.mark.parametrize("url", [PREVIEW, CONFIRM])
def test_opening_the_preview_address_leads_back_to_the_upload_form_saying_what_to_do(
    admin_client, url
):
    response = admin_client.get(url)
    assert response.status_code == 302
    assert response["Location"] == TAB + "#employees"
    page = admin_client.get(response["Location"]).content.decode()
    assert "choose the CSV file under Employees and press “Preview import”" in page
    assert not Employee.objects.exists()


def test_a_manager_opening_the_preview_address_is_refused(client, manager_user):
    client.force_login(manager_user)
    assert client.get(PREVIEW).status_code == 403
