"""Admin form posts for webhooks on the Asana card: register, delete, re-register.

Thin callers of `integrations.webhooks`; mounted by `integrations.tab` under
`/admin/tabs/integrations/webhooks/…` (URL names `admin:integrations:webhook-…`).
"""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from integrations.models import AsanaConnection, WebhookRegistration, gid_validator
from integrations.webhooks import WebhookError, delete_webhook, register_webhook, reregister


class RegisterWebhookForm(forms.Form):
    resource_gid = forms.CharField(
        label="Resource GID", max_length=32, validators=[gid_validator], strip=True
    )
    public_url = forms.URLField(label="Public base URL", max_length=400, assume_scheme="https")


def _back() -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("admin:index") + "?tab=integrations")


def _needs(permission: str) -> Callable:
    """Only active staff holding the permission may post; others get 403 (as in `tab`)."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @require_POST
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            user = request.user
            if not (
                user.is_active and user.is_staff and user.has_perm(f"integrations.{permission}")
            ):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapped

    return decorate


@_needs("add_webhookregistration")
def register(request: HttpRequest, connection_id: int) -> HttpResponse:
    connection = get_object_or_404(AsanaConnection, pk=connection_id)
    form = RegisterWebhookForm(request.POST)
    if not form.is_valid():
        errors = "; ".join(f"{form.fields[f].label}: {' '.join(e)}" for f, e in form.errors.items())
        messages.error(request, f"Webhook not registered. {errors}")
        return _back()
    try:
        registration = register_webhook(
            connection,
            form.cleaned_data["resource_gid"],
            form.cleaned_data["public_url"],
            request.user,
        )
    except WebhookError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            f"Webhook {registration.webhook_gid} registered for resource "
            f"{registration.resource_gid} ({registration.get_state_display()}).",
        )
    return _back()


@_needs("delete_webhookregistration")
def delete(request: HttpRequest, registration_id: int) -> HttpResponse:
    registration = get_object_or_404(WebhookRegistration, pk=registration_id)
    try:
        delete_webhook(registration, actor=request.user)
    except WebhookError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Webhook on resource {registration.resource_gid} deleted.")
    return _back()


@_needs("change_webhookregistration")
def re_register(request: HttpRequest, registration_id: int) -> HttpResponse:
    registration = get_object_or_404(WebhookRegistration, pk=registration_id)
    try:
        new = reregister(registration, actor=request.user)
    except WebhookError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request, f"Webhook re-registered for resource {new.resource_gid} ({new.webhook_gid})."
        )
    return _back()


urlpatterns = [
    path("webhooks/<int:connection_id>/register/", register, name="webhook-register"),
    path("webhooks/<int:registration_id>/delete/", delete, name="webhook-delete"),
    path("webhooks/<int:registration_id>/reregister/", re_register, name="webhook-reregister"),
]
