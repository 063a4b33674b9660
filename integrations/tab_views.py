"""The integrations tab's form posts and fragments (mounted under `/admin/tabs/integrations/`,
each through the admin site's `admin_view`): thin callers of the services; a failed post
goes back to the tab with its errors beside the form (`tab.FAILED_FORMS` in the session)."""

from dataclasses import asdict

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import path
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables

from integrations.asana.errors import AsanaError
from integrations.connect import (
    ConnectError,
    check_connection,
    connect_workspace,
    explain,
    token_workspaces,
    update_settings,
)
from integrations.forms import (
    ConnectForm,
    ConnectionSettingsForm,
    MappingForm,
    ReplaceTokenForm,
    SafetyRailsForm,
)
from integrations.models import (
    AsanaConnection,
    ProcessedTask,
)
from integrations.people import import_views
from integrations.people.mapping import (
    MappingError,
    automap_by_email,
    map_employee,
)
from integrations.pipeline import approval_views, breaker, executor_card, retry, run_views
from integrations.tab import CONNECT_PERMS, FAILED_FORMS, live, mapping_choices
from integrations.webhooks import admin_views as webhook_admin_views
from pilotsite.admin import back_to_tab, tab_post
from pilotsite.liveness import liveness


def _back(anchor: str = "") -> HttpResponseRedirect:
    return back_to_tab("integrations", anchor)


def _failed(
    request: HttpRequest, form_id: str, errors: dict[str, list[str]], data: dict | None = None
) -> HttpResponseRedirect:
    """Back to the tab, scrolled to the form `form_id`, with its errors shown beside it."""
    request.session[FAILED_FORMS] = {
        **request.session.get(FAILED_FORMS, {}),
        form_id: {"errors": errors, "data": data or {}},
    }
    return _back(form_id)


def _form_errors(form: forms.Form) -> dict[str, list[str]]:
    return {name: [str(m) for m in messages_] for name, messages_ in form.errors.items()}


@sensitive_post_parameters("token")
@tab_post(*CONNECT_PERMS)
@sensitive_variables("data")
def connect_view(request: HttpRequest) -> HttpResponse:
    form = ConnectForm(request.POST)
    kept = ConnectForm.kept_values(request.POST)
    if not form.is_valid():
        return _failed(request, "connect-workspace", _form_errors(form), kept)
    data = form.cleaned_data
    try:
        connection = connect_workspace(
            data["token"],
            data["workspace_gid"],
            pilot_tag=data["pilot_tag"],
            poll_interval=data["poll_interval"],
            polling_enabled=data["polling_enabled"],
            skip_backlog=data["skip_backlog"],
            actor=request.user,
        )
    except ConnectError as exc:
        return _failed(request, "connect-workspace", {"__all__": [str(exc)]}, kept)
    messages.success(request, f"Connected {connection}; token {connection.masked_token}.")
    return _back()


@sensitive_post_parameters("token")
@tab_post(*CONNECT_PERMS)
def workspaces_view(request: HttpRequest) -> JsonResponse:
    """The pasted token's workspaces, for the connect form's picker: {"workspaces": [{gid,
    name}]} or {"error": sentence}. The token is only used for this one request."""
    try:
        found = token_workspaces(request.POST.get("token", ""))
    except ConnectError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse({"workspaces": [asdict(w) for w in found]})


@sensitive_post_parameters("token")
@tab_post("integrations.change_asanaconnection")
def replace_token_view(request: HttpRequest, pk: int) -> HttpResponse:
    connection = get_object_or_404(AsanaConnection, pk=pk)
    form = ReplaceTokenForm(request.POST, prefix=f"t{connection.pk}")
    if not form.is_valid():
        return _failed(request, f"token-{connection.pk}", _form_errors(form))
    try:
        # Only the token changes: every setting not given keeps its stored value.
        connection = connect_workspace(
            form.cleaned_data["token"], connection.workspace_gid, actor=request.user
        )
    except ConnectError as exc:
        return _failed(request, f"token-{connection.pk}", {"__all__": [str(exc)]})
    messages.success(request, f"{connection}: token replaced; now {connection.masked_token}.")
    return _back(f"connection-{connection.pk}")


@tab_post("integrations.change_processedtask")
def retry_view(request: HttpRequest, pk: int) -> HttpResponse:
    processed = get_object_or_404(ProcessedTask.objects.select_related("connection"), pk=pk)
    name = processed.task_name or f"ASANA-{processed.task_gid}"
    try:
        retry.retry_failed(processed, actor=request.user)
    except ValueError:
        messages.error(request, f"{name} was not retried: it is {processed.state}, not failed.")
    except AsanaError as exc:
        messages.error(request, f"{name} was not retried: {explain(exc)}")
    else:
        paused = processed.connection.pause_reason if processed.connection.paused_at else ""
        messages.success(
            request,
            f"{name} will run again once automation resumes (paused: {paused})."
            if paused
            else f"{name} will run again at the next poll.",
        )
    return _back(f"connection-{processed.connection_id}")


@tab_post("integrations.change_asanaconnection")
def check_view(request: HttpRequest, pk: int) -> HttpResponse:
    connection = get_object_or_404(AsanaConnection, pk=pk)
    ok, message = check_connection(connection, actor=request.user)
    (messages.success if ok else messages.error)(request, f"{connection}: {message}")
    return _back()


def _saved_message(connection: AsanaConnection, form: forms.Form, changed: list[str]) -> str:
    """What a settings form saved, named by the labels the person just read, with the new
    values ("saved Rollout mode: shadow")."""
    if not changed:
        return f"{connection}: no changes."
    saved = []
    for name in changed:
        field = form[name]
        value = form.cleaned_data[name]
        shown = dict(getattr(field.field, "choices", ())).get(value, value)
        if isinstance(value, bool):
            shown = "on" if value else "off"
        saved.append(f"{field.label}: {shown}")
    return f"{connection}: saved {'; '.join(saved)}."


@tab_post("integrations.change_asanaconnection")
def settings_view(request: HttpRequest, pk: int) -> HttpResponse:
    connection = get_object_or_404(AsanaConnection, pk=pk)
    form = ConnectionSettingsForm.for_connection(connection, request.POST)
    if not form.is_valid():
        errors = {"__all__": ["Settings not saved; correct the fields marked below."]}
        typed = {name: form[name].value() for name in form.fields}
        return _failed(
            request, f"settings-{connection.pk}", {**errors, **_form_errors(form)}, typed
        )
    changed = update_settings(connection, actor=request.user, **form.cleaned_data)
    messages.success(request, _saved_message(connection, form, changed))
    return _back()


@tab_post("integrations.change_asanaconnection")
def rails_view(request: HttpRequest, pk: int) -> HttpResponse:
    """The safety rails' thresholds (saved through the connection settings' one write path)."""
    connection = get_object_or_404(AsanaConnection, pk=pk)
    form = SafetyRailsForm.for_connection(connection, request.POST)
    if not form.is_valid():
        errors = {"__all__": ["Safety rails not saved; correct the fields marked below."]}
        typed = {name: form[name].value() for name in form.fields}
        return _failed(request, f"rails-{connection.pk}", {**errors, **_form_errors(form)}, typed)
    changed = update_settings(connection, actor=request.user, **form.cleaned_data)
    messages.success(request, _saved_message(connection, form, changed))
    return _back(f"rails-{connection.pk}")


@tab_post("integrations.change_asanaconnection")
def resume_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Resume a connection the safety rails paused (audited with who pressed it)."""
    connection = get_object_or_404(AsanaConnection, pk=pk)
    if breaker.resume(connection, actor=request.user, how="resumed from the card"):
        messages.success(
            request, f"{connection}: automation resumed; tagged tasks are claimed again."
        )
    else:
        messages.info(request, f"{connection} was not paused (or was resumed meanwhile).")
    return _back(f"connection-{connection.pk}")


@tab_post("integrations.add_asanamapping")
def map_view(request: HttpRequest, pk: int) -> HttpResponse:
    connection = get_object_or_404(AsanaConnection, pk=pk)
    form = MappingForm(request.POST)
    row = f"map-{connection.pk}-{request.POST.get('employee', '')}"
    typed = {
        "chosen": request.POST.get("asana_user", ""),
        "gid": request.POST.get("asana_user_gid", ""),
    }
    if not form.is_valid():
        errors = [str(m) for messages_ in form.errors.values() for m in messages_]
        return _failed(request, row, {"__all__": errors}, typed)
    employee = form.cleaned_data["employee"]
    gid = form.cleaned_data["gid"]
    users, _ = mapping_choices(request, connection)
    try:
        mapping = map_employee(connection, employee, gid, users=users, actor=request.user)
    except MappingError as exc:
        if connection.mappings.filter(employee=employee).exists():
            # Mapped meanwhile: the employee's row is no longer on the page to hold the error.
            messages.error(request, str(exc))
            return _back()
        return _failed(request, row, {"__all__": [str(exc)]}, typed)
    messages.success(request, f"Mapped {employee.name} to Asana user {mapping.asana_user_gid}.")
    return _back()


@tab_post("integrations.add_asanamapping")
def automap_view(request: HttpRequest, pk: int) -> HttpResponse:
    connection = get_object_or_404(AsanaConnection, pk=pk)
    try:
        mapped, remaining = automap_by_email(connection, actor=request.user)
    except MappingError as exc:
        return _failed(request, f"automap-{connection.pk}", {"__all__": [str(exc)]})
    names = ", ".join(m.employee.name for m in mapped) or "nobody"
    messages.success(
        request, f"Mapped {len(mapped)} by email ({names}); {len(remaining)} still unmapped."
    )
    return _back()


def live_view(request: HttpRequest, pk: int) -> HttpResponse:
    """A card's self-refreshing section alone (GET; staff who may view connections)."""
    user = request.user
    if not (
        user.is_active and user.is_staff and user.has_perm("integrations.view_asanaconnection")
    ):
        raise PermissionDenied
    connection = get_object_or_404(AsanaConnection, pk=pk)
    return render(
        request,
        "integrations/_card_live.html",
        {"connection": connection, "live": live(connection, liveness())},
    )


urlpatterns = [
    path("<int:pk>/live/", live_view, name="live"),
    path("connect/", connect_view, name="connect"),
    path("workspaces/", workspaces_view, name="workspaces"),
    path("<int:pk>/token/", replace_token_view, name="replace-token"),
    path("tasks/<int:pk>/retry/", retry_view, name="retry"),
    path("<int:pk>/check/", check_view, name="check"),
    path("<int:pk>/settings/", settings_view, name="settings"),
    path("<int:pk>/rails/", rails_view, name="rails"),
    path("<int:pk>/resume/", resume_view, name="resume"),
    path("<int:pk>/map/", map_view, name="map"),
    path("<int:pk>/automap/", automap_view, name="automap"),
    *webhook_admin_views.urlpatterns,
    *executor_card.urlpatterns,
    *run_views.urlpatterns,
    *approval_views.urlpatterns,
    *import_views.urlpatterns,
]
