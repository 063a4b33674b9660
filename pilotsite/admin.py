"""The admin site: Django's admin with a tabbed index (`/admin/?tab=integrations`).

Apps contribute tabs with `register_tab` from their `AppConfig.ready()`; each tab has a
template, a function that builds its context for the request, and optional extra URLs
(form posts such as "Test connection", fragments that refresh themselves) mounted under
`/admin/tabs/<slug>/`, each wrapped in the site's `admin_view`.

Every model registered on the site is audited: additions, changes and deletions made by a
person (users and permissions included) are announced with `signals.admin_changed`, which the
integrations app writes to its audit log.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Model
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, include, path, reverse
from django.views.decorators.http import require_POST

from pilotsite.signals import admin_changed


@dataclass(frozen=True)
class Tab:
    slug: str
    label: str
    template: str
    context: Callable[[HttpRequest], dict]
    urls: list[URLPattern] = field(default_factory=list)
    order: int = 100
    # Who sees the tab; the first tab a user may see is their default.
    permission: str = ""


_tabs: dict[str, Tab] = {}


def register_tab(tab: Tab) -> None:
    _tabs[tab.slug] = tab


def tabs() -> list[Tab]:
    return sorted(_tabs.values(), key=lambda t: (t.order, t.slug))


def back_to_tab(slug: str, anchor: str = "") -> HttpResponseRedirect:
    url = f"{reverse('admin:index')}?tab={slug}"
    return HttpResponseRedirect(f"{url}#{anchor}" if anchor else url)


def tab_post(*perms: str, on_get: Callable[[HttpRequest], HttpResponse] | None = None) -> Callable:
    """A tab's form post: only active staff holding every permission (403), POST only (405).
    With `on_get`, a GET from such staff (the address of a page a post answered, reloaded or
    bookmarked) gets `on_get(request)` instead of the 405."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            user = request.user
            if not (user.is_active and user.is_staff and user.has_perms(perms)):
                raise PermissionDenied
            if on_get is not None and request.method in ("GET", "HEAD"):
                return on_get(request)
            return posted(request, *args, **kwargs)

        posted = require_POST(view)
        return wrapper

    return decorator


def _describe(message: object) -> str:
    """Django's change message (a list of dicts) as one line, field names only, never values."""
    if isinstance(message, list):
        parts = []
        for item in message:
            for verb, info in item.items():
                fields = ", ".join(info.get("fields", [])) if isinstance(info, dict) else ""
                name = info.get("name", "") if isinstance(info, dict) else ""
                parts.append(" ".join(p for p in (verb, name, fields) if p))
        return "; ".join(parts)
    return str(message or "")


class AuditedAdmin(admin.ModelAdmin):
    """Also announce additions, changes and deletions (`signals.admin_changed`), for the
    audit log."""

    def _announce(self, request: HttpRequest, verb: str, obj: Model, detail: str = "") -> None:
        admin_changed.send(self.model, request=request, verb=verb, obj=obj, detail=detail)

    def log_addition(self, request, obj, message):
        self._announce(request, "add", obj, _describe(message))
        return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        self._announce(request, "change", obj, _describe(message))
        return super().log_change(request, obj, message)

    def log_deletions(self, request, queryset):
        for obj in queryset:
            self._announce(request, "delete", obj)
        return super().log_deletions(request, queryset)


class ReadOnlyAdmin(AuditedAdmin):
    """Rows the application writes (synced from Asana, recorded by the pipeline, the audit
    log): viewable by who holds the view permission, never added, changed or deleted by hand
    (a deleted synced row would only come back at the next sync)."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class PilotAdminSite(admin.AdminSite):
    site_header = "pilotsite"
    site_title = "pilotsite"
    index_title = "pilotsite"
    # The tabs and "All data" are the navigation; the sidebar would take 300 px that the
    # lists need to fit a 1,366 px screen.
    enable_nav_sidebar = False

    def register(self, model_or_iterable, admin_class=None, **options):
        # Every admin, Django's own (users, groups) and django-q2's included, is audited.
        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, AuditedAdmin):
            admin_class = type(
                admin_class.__name__,
                (AuditedAdmin, admin_class),
                {"__module__": admin_class.__module__},
            )
        super().register(model_or_iterable, admin_class, **options)

    def get_urls(self):
        # Every tab's views go through `admin_view`, as `ModelAdmin.get_urls` does for a
        # model's: signed-out (or non-staff) people get the sign-in page, not a 403, and no
        # response is cached.
        extra = [
            path(f"tabs/{tab.slug}/", include((self._admin_views(tab.urls), tab.slug)))
            for tab in tabs()
            if tab.urls
        ]
        return [path("", include(extra)), *super().get_urls()]

    def _admin_views(self, patterns: list) -> list:
        """The URL patterns with each view wrapped in `admin_view` (included lists too)."""
        wrapped: list[URLPattern | URLResolver] = []
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                wrapped.append(
                    URLResolver(
                        pattern.pattern,
                        self._admin_views(pattern.url_patterns),
                        pattern.default_kwargs,
                        pattern.app_name,
                        pattern.namespace,
                    )
                )
            else:
                wrapped.append(
                    URLPattern(
                        pattern.pattern,
                        self.admin_view(pattern.callback),
                        pattern.default_args,
                        pattern.name,
                    )
                )
        return wrapped

    def index(self, request, extra_context=None):
        everything = tabs()
        available = [
            t for t in everything if not t.permission or request.user.has_perm(t.permission)
        ]
        wanted = request.GET.get("tab")
        current = next((t for t in everything if t.slug == wanted), None)
        if current is None and wanted in (None, "") and available:
            current = available[0]
        if current is None:
            # "?tab=models" (or an unknown tab) shows Django's usual model index, under the
            # same tab bar.
            response = super().index(
                request, {"tabs": available, "all_data": True, **(extra_context or {})}
            )
            response.template_name = "admin/index_all_data.html"
            return response
        denied = current not in available
        context = {
            **self.each_context(request),
            "title": current.label,
            "subtitle": None,
            "tabs": available,
            "current_tab": current,
            "tab_denied": denied,
            "app_list": self.get_app_list(request),
            **({} if denied else current.context(request)),
            **(extra_context or {}),
        }
        request.current_app = self.name
        return TemplateResponse(request, "admin/tabbed_index.html", context)
