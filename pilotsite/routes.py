"""URLs outside the admin that apps mount on the site (the Asana webhook endpoint), from their
`AppConfig.ready()`; `pilotsite/urls.py` serves them. The site names no app's URLs itself."""

from django.urls import URLPattern, URLResolver, include, path

_mounted: list[URLResolver] = []


def mount(prefix: str, urlpatterns: list[URLPattern]) -> None:
    """Serve `urlpatterns` under `/<prefix>` (e.g. "webhooks/"), without a namespace."""
    _mounted.append(path(prefix, include(urlpatterns)))


def mounted() -> list[URLResolver]:
    """Every mounted prefix, in the order the apps mounted them."""
    return list(_mounted)
