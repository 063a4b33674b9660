"""The integrations tab of the admin index (placeholder until the tab is built)."""

from django.http import HttpRequest

urlpatterns: list = []


def context(request: HttpRequest) -> dict:
    return {}
