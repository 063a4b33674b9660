"""The site's own error pages: a page not found reads like the rest of the admin."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("persona", ["admin_user", "manager_user", "outsider_user"])
def test_an_unknown_admin_address_gets_the_sites_not_found_page(request, client, persona):
    client.force_login(request.getfixturevalue(persona))
    response = client.get("/admin/no-such-page/")
    page = response.content.decode()
    assert response.status_code == 404
    assert 'id="page-not-found"' in page and 'id="site-name"' in page
    assert "There is no page at this address" in page
    assert f'href="{reverse("admin:index")}"' in page and "Back to the start page" in page


def test_a_missing_object_behind_a_view_does_not_name_the_model(admin_client, settings):
    settings.LLM_API_BASE = ""
    response = admin_client.post(reverse("admin:goals:request_draft", args=[1]))
    page = response.content.decode()
    assert response.status_code == 404 and 'id="page-not-found"' in page
    assert "configured" not in page


def test_the_not_found_page_links_back_to_the_page_it_came_from(admin_client):
    came_from = "http://testserver" + reverse("admin:integrations_auditlog_changelist")
    response = admin_client.get("/admin/no-such-page/", HTTP_REFERER=came_from)
    assert f'href="{came_from}"' in response.content.decode()


def test_someone_signed_out_is_sent_to_sign_in_rather_than_told_what_exists(client):
    response = client.get("/admin/no-such-page/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_a_refused_request_is_logged_as_one_line_without_a_traceback(client, manager_user, console):
    url = reverse("admin:integrations_asanaconnection_add")
    client.force_login(manager_user)
    assert client.get(url).status_code == 403
    written = console.getvalue()
    assert written.endswith(f" WARNING django.request: Forbidden (Permission denied): {url}\n")
    assert written.count("\n") == 1


def test_a_server_error_is_still_logged_with_its_traceback(console):
    import logging

    try:
        raise RuntimeError("boom")
    except RuntimeError as exc:
        logging.getLogger("django.request").error(
            "Internal Server Error: %s", "/admin/", exc_info=exc, extra={"status_code": 500}
        )
    assert "Traceback (most recent call last):" in console.getvalue()
