"""Error pages in the admin's own look."""

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme


def _error_page(request: HttpRequest, template: str, title: str, status: int) -> HttpResponse:
    """`template` in the admin's frame with a link back: to the page the person came from
    when it is on this site, else the admin's start page."""
    home = reverse("admin:index")
    referer = request.META.get("HTTP_REFERER", "")
    safe = url_has_allowed_host_and_scheme(
        referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    back = referer if referer and safe and referer != request.build_absolute_uri() else home
    context = {
        **admin.site.each_context(request),
        "title": title,
        "back_url": back,
        "home_url": home,
    }
    response = TemplateResponse(request, template, context, status=status)
    return response.render()


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """403 as an admin page that says so and links back."""
    return _error_page(request, "403.html", "You may not see this page", 403)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """404 as an admin page that says so and links back. The exception's text ("No Goal
    matches the given query") is not shown: it names models and says nothing a person can
    act on."""
    return _error_page(request, "404.html", "Page not found", 404)
