"""The goals tab of the admin index (placeholder until the goals issue fills it in)."""

from django.http import HttpRequest

urlpatterns: list = []


def context(request: HttpRequest) -> dict:
    return {}
