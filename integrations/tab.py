"""The integrations tab: an Asana card per connection, the connect form, the latest audit entries,
and the form posts behind the cards' buttons (mounted under `/admin/tabs/integrations/`)."""

from dataclasses import asdict
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import path
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables

from integrations.asana.errors import AsanaError
from integrations.audit.text import describe
from integrations.card_sections import card_sections
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
    fields_with_errors,
)
from integrations.models import (
    AsanaConnection,
    AuditLog,
    Employee,
    ProcessedTask,
    WebhookRegistration,
)
from integrations.people import import_views
from integrations.people.mapping import (
    AsanaUser,
    MappingError,
    automap_by_email,
    known_users,
    map_employee,
    unmapped_employees,
)
from integrations.pipeline import card as pipeline_card
from integrations.pipeline import executor_card, run_views, runs
from integrations.webhooks import admin_views as webhook_admin_views
from integrations.webhooks import card as webhooks_card
from pilotsite.admin import back_to_tab, tab_post
from pilotsite.liveness import Liveness, liveness

# A page with hundreds of per-employee forms helps nobody; the rest go by email or CSV.
UNMAPPED_SHOWN = 50
AUDIT_SHOWN = 20
# A failed post redirects back to the tab; what it needs to show its errors beside the
# form that failed (and the values typed, never a token) waits in the session:
# {form id: {"errors": {field or "__all__": [...]}, "data": {...}}}.
_FAILED = "integrations.failed_forms"
# Connecting creates the connection or updates the one for that workspace.
CONNECT_PERMS = ("integrations.add_asanaconnection", "integrations.change_asanaconnection")


def _users(request: HttpRequest, connection: AsanaConnection) -> tuple[list[AsanaUser] | None, str]:
    """The workspace's users for the mapping choices and checks (`known_users`), asked at
    most once per request."""
    per_request = request.__dict__.setdefault("_asana_workspace_users", {})
    if connection.pk not in per_request:
        per_request[connection.pk] = known_users(connection)
    return per_request[connection.pk]


def _form_level(failed: dict) -> list[str]:
    # Templates cannot look up "__all__" (no leading underscores), so it is unpacked here.
    return failed.get("errors", {}).get("__all__", [])


def _unmapped_row(employee: Employee, failed: dict) -> dict[str, Any]:
    data = failed.get("data", {})
    return {
        "employee": employee,
        "errors": _form_level(failed),
        "chosen": data.get("chosen", ""),
        "gid": data.get("gid", ""),
    }


def live(connection: AsanaConnection, facts: Liveness) -> dict[str, Any]:
    """The parts of a card that move on their own (the summary's workers, last poll and
    counts; workers, pipeline, and the sections other apps registered, such as the goal
    sync), shown in a part that refreshes itself; `busy` while a task or anything of a
    registered section runs or waits."""
    pipeline = pipeline_card.card(connection, pollers_alive=facts.pollers_alive)
    shown = [(section, section.card(connection)) for section in card_sections()]
    employees_total = Employee.objects.count()
    return {
        "liveness": facts,
        "workers_alive": sum(1 for p in facts.processes if p.alive),
        "active_webhooks": connection.webhooks.filter(
            state=WebhookRegistration.State.ACTIVE
        ).count(),
        "employees_total": employees_total,
        "unmapped_count": unmapped_employees(connection).count() if employees_total else 0,
        "pipeline": pipeline,
        "sections": [{"section": section, "card": card} for section, card in shown],
        "busy": pipeline["busy"] or any(section.busy(card) for section, card in shown),
    }


def _health(connection: AsanaConnection) -> dict[str, str]:
    """The card's status badge: ok / error / not checked, and one line about it."""
    if connection.last_checked_at is None:
        return {"state": "unknown", "label": "not checked yet"}
    if connection.last_error:
        return {"state": "error", "label": "error"}
    return {"state": "ok", "label": "connected"}


def _card(
    request: HttpRequest,
    connection: AsanaConnection,
    can_map: bool,
    failed: dict[str, dict],
    facts: Liveness,
    employees_total: int,
) -> dict[str, Any]:
    unmapped = unmapped_employees(connection)
    shown = list(unmapped[:UNMAPPED_SHOWN])
    unmapped_count = unmapped.count() if shown else 0
    users: list[AsanaUser] = []
    users_error = ""
    if can_map and shown:
        known, users_error = _users(request, connection)
        taken = set(connection.mappings.values_list("asana_user_gid", flat=True))
        users = [u for u in known or () if u.gid not in taken]
    settings_failed = failed.get(f"settings-{connection.pk}", {})
    settings_form = ConnectionSettingsForm.for_connection(connection)
    if settings_failed:
        # Show what was typed, not the stored values, next to the errors.
        settings_form.initial.update(settings_failed["data"])
    token_failed = failed.get(f"token-{connection.pk}", {})
    webhooks = webhooks_card.card(connection)
    return {
        "connection": connection,
        "health": _health(connection),
        "employees_total": employees_total,
        "unmapped_count": unmapped_count,
        "settings_open": bool(settings_failed or token_failed),
        "settings_fields": fields_with_errors(settings_form, settings_failed.get("errors", {})),
        "settings_errors": _form_level(settings_failed),
        "token_fields": fields_with_errors(
            ReplaceTokenForm(prefix=f"t{connection.pk}"), token_failed.get("errors", {})
        ),
        "token_errors": _form_level(token_failed),
        "automap_errors": _form_level(failed.get(f"automap-{connection.pk}", {})),
        "live": live(connection, facts),
        "executor": executor_card.card(request, connection),
        "webhooks": webhooks,
        "unmapped": [
            _unmapped_row(e, failed.get(f"map-{connection.pk}-{e.pk}", {})) for e in shown
        ],
        "unmapped_more": max(unmapped_count - len(shown), 0),
        "users": users,
        "users_error": users_error,
    }


def context(request: HttpRequest) -> dict[str, Any]:
    user = request.user
    can_map = user.has_perm("integrations.add_asanamapping")
    connections = (
        list(AsanaConnection.objects.all())
        if user.has_perm("integrations.view_asanaconnection")
        else []
    )
    failed = request.session.pop(_FAILED, None) or {}
    facts = liveness()
    connect_failed = failed.get("connect-workspace", {})
    connect_errors = connect_failed.get("errors", {})
    connect_form = ConnectForm(initial=connect_failed.get("data"))
    can_view_employees = user.has_perm("integrations.view_employee")
    employees_total = Employee.objects.count() if can_view_employees else 0
    audit_entries = (
        list(AuditLog.objects.all()[:AUDIT_SHOWN])
        if user.has_perm("integrations.view_auditlog")
        else None
    )
    return {
        "connections": [
            _card(request, c, can_map, failed, facts, employees_total) for c in connections
        ],
        "liveness": facts,
        "can_change_connection": user.has_perm("integrations.change_asanaconnection"),
        "can_map": can_map,
        "can_retry": user.has_perm("integrations.change_processedtask"),
        "connect_fields": (
            fields_with_errors(connect_form, connect_errors)
            if user.has_perms(CONNECT_PERMS)
            else None
        ),
        "connect_errors": _form_level(connect_failed),
        "connect_open": bool(connect_failed) or not connections,
        "employees": {
            "visible": can_view_employees,
            "total": employees_total,
            "can_import": user.has_perms(import_views.IMPORT_PERMS),
            "upload_form": import_views.UploadForm(),
            "several_connections": len(connections) > 1,
        },
        "audit_entries": (
            [{"entry": e, "text": describe(e)} for e in audit_entries]
            if audit_entries is not None
            else None
        ),
    }


def _back(anchor: str = "") -> HttpResponseRedirect:
    return back_to_tab("integrations", anchor)


def _failed(
    request: HttpRequest, form_id: str, errors: dict[str, list[str]], data: dict | None = None
) -> HttpResponseRedirect:
    """Back to the tab, scrolled to the form `form_id`, with its errors shown beside it."""
    request.session[_FAILED] = {
        **request.session.get(_FAILED, {}),
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
        runs.retry_failed(processed, actor=request.user)
    except ValueError:
        messages.error(request, f"{name} was not retried: it is {processed.state}, not failed.")
    except AsanaError as exc:
        messages.error(request, f"{name} was not retried: {explain(exc)}")
    else:
        messages.success(request, f"{name} will run again at the next poll.")
    return _back(f"connection-{processed.connection_id}")


@tab_post("integrations.change_asanaconnection")
def check_view(request: HttpRequest, pk: int) -> HttpResponse:
    connection = get_object_or_404(AsanaConnection, pk=pk)
    ok, message = check_connection(connection, actor=request.user)
    (messages.success if ok else messages.error)(request, f"{connection}: {message}")
    return _back()


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
    messages.success(
        request,
        f"{connection}: saved {', '.join(changed)}." if changed else f"{connection}: no changes.",
    )
    return _back()


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
    users, _ = _users(request, connection)
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
    path("<int:pk>/map/", map_view, name="map"),
    path("<int:pk>/automap/", automap_view, name="automap"),
    *webhook_admin_views.urlpatterns,
    *executor_card.urlpatterns,
    *run_views.urlpatterns,
    *import_views.urlpatterns,
]
