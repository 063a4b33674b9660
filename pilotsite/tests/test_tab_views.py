"""Every view a tab mounts under /admin/tabs/ goes through the admin site's `admin_view`, as
Django's own `ModelAdmin.get_urls` does: people outside the admin are sent to its sign-in
page (not shown a 403), and no answer is cached."""

import pytest
from django.test import Client
from django.urls import URLPattern, reverse

from pilotsite.admin import tabs

pytestmark = pytest.mark.django_db

SAMPLE = {"int": 1, "str": "x", "slug": "x", "path": "x"}


def tab_urls() -> list[str]:
    urls = []
    for tab in tabs():
        for pattern in tab.urls:
            assert isinstance(pattern, URLPattern), pattern
            converters = pattern.pattern.converters
            kwargs = {
                name: SAMPLE[type(c).__name__.removesuffix("Converter").lower()]
                for name, c in converters.items()
            }
            urls.append(reverse(f"admin:{tab.slug}:{pattern.name}", kwargs=kwargs))
    return urls


def test_every_tab_mounts_views():
    assert any(u.startswith("/admin/tabs/integrations/") for u in tab_urls())
    assert any(u.startswith("/admin/tabs/goals/") for u in tab_urls())


@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("persona", [None, "employee_user"])
def test_people_outside_the_admin_are_sent_to_the_sign_in_page(request, method, persona):
    client = Client()
    if persona:
        client.force_login(request.getfixturevalue(persona))
    for url in tab_urls():
        response = getattr(client, method)(url)

        assert response.status_code == 302, url
        assert response["Location"] == f"/admin/login/?next={url}", url
        assert "no-cache" in response["Cache-Control"], url


def test_a_tab_view_answered_to_staff_is_never_cached(admin_client):
    response = admin_client.get(reverse("admin:integrations:workspaces"))

    assert "no-store" in response["Cache-Control"]
