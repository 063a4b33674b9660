"""The admin site: Django's admin with a tabbed index (`/admin/?tab=integrations`).

Apps contribute tabs with `register_tab` from their `AppConfig.ready()`; each tab has a
template, a function that builds its context for the request, and optional extra URLs
(form posts such as "Test connection") mounted under `/admin/tabs/<slug>/`.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import URLPattern, include, path


@dataclass(frozen=True)
class Tab:
    slug: str
    label: str
    template: str
    context: Callable[[HttpRequest], dict]
    urls: list[URLPattern] = field(default_factory=list)
    order: int = 100


_tabs: dict[str, Tab] = {}


def register_tab(tab: Tab) -> None:
    _tabs[tab.slug] = tab


def tabs() -> list[Tab]:
    return sorted(_tabs.values(), key=lambda t: (t.order, t.slug))


class PilotAdminSite(admin.AdminSite):
    site_header = "pilotsite"
    site_title = "pilotsite"
    index_title = "pilotsite"

    def get_urls(self):
        extra = [
            path(f"tabs/{tab.slug}/", include((tab.urls, tab.slug))) for tab in tabs() if tab.urls
        ]
        return [path("", include(extra)), *super().get_urls()]

    def index(self, request, extra_context=None):
        available = tabs()
        wanted = request.GET.get("tab")
        current = next((t for t in available if t.slug == wanted), None)
        if current is None and wanted in (None, "") and available:
            current = available[0]
        if current is None:
            # "?tab=models" (or an unknown tab) shows Django's usual model index.
            return super().index(request, extra_context)
        context = {
            **self.each_context(request),
            "title": current.label,
            "subtitle": None,
            "tabs": available,
            "current_tab": current,
            "app_list": self.get_app_list(request),
            **current.context(request),
            **(extra_context or {}),
        }
        request.current_app = self.name
        return TemplateResponse(request, "admin/tabbed_index.html", context)
