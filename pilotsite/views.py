"""Error pages in the admin's own look."""

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """403 as an admin page that says so and links back (to the page the person came from
    when it is on this site, else the admin's start page)."""
    home = reverse("admin:index")
    referer = request.META.get("HTTP_REFERER", "")
    safe = url_has_allowed_host_and_scheme(
        referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    back = referer if referer and safe and referer != request.build_absolute_uri() else home
    context = {
        **admin.site.each_context(request),
        "title": "You may not see this page",
        "back_url": back,
        "home_url": home,
    }
    response = TemplateResponse(request, "403.html", context, status=403)
    return response.render()
