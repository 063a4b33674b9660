"""Admin form posts for webhooks on the Asana card: register, delete, re-register.

Thin callers of `integrations.webhooks.registration`; mounted by `integrations.tab` under
`/admin/tabs/integrations/webhooks/…` (URL names `admin:integrations:webhook-…`).
"""

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path

from integrations.models import AsanaConnection, WebhookRegistration, gid_validator
from integrations.webhooks.registration import (
    WebhookError,
    delete_webhook,
    register_webhook,
    reregister,
)
from pilotsite.admin import back_to_tab, tab_post


class RegisterWebhookForm(forms.Form):
    resource_gid = forms.CharField(
        label="Resource GID", max_length=32, validators=[gid_validator], strip=True
    )
    public_url = forms.URLField(label="Public base URL", max_length=400, assume_scheme="https")


@tab_post("integrations.add_webhookregistration")
def register(request: HttpRequest, connection_id: int) -> HttpResponse:
    connection = get_object_or_404(AsanaConnection, pk=connection_id)
    form = RegisterWebhookForm(request.POST)
    if not form.is_valid():
        errors = "; ".join(
            f"{form.fields[f].label}: {' '.join(str(m) for m in e)}" for f, e in form.errors.items()
        )
        messages.error(request, f"Webhook not registered. {errors}")
        return back_to_tab("integrations")
    try:
        registration = register_webhook(
            connection,
            form.cleaned_data["resource_gid"],
            form.cleaned_data["public_url"],
            actor=request.user,
        )
    except WebhookError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            f"Webhook {registration.webhook_gid} registered for resource "
            f"{registration.resource_gid} ({registration.get_state_display()}).",
        )
    return back_to_tab("integrations")


@tab_post("integrations.delete_webhookregistration")
def delete(request: HttpRequest, registration_id: int) -> HttpResponse:
    registration = get_object_or_404(WebhookRegistration, pk=registration_id)
    try:
        delete_webhook(registration, actor=request.user)
    except WebhookError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Webhook on resource {registration.resource_gid} deleted.")
    return back_to_tab("integrations")


@tab_post("integrations.change_webhookregistration")
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
    return back_to_tab("integrations")


urlpatterns = [
    path("webhooks/<int:connection_id>/register/", register, name="webhook-register"),
    path("webhooks/<int:registration_id>/delete/", delete, name="webhook-delete"),
    path("webhooks/<int:registration_id>/reregister/", re_register, name="webhook-reregister"),
]
