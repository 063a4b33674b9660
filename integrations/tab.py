"""The integrations tab: an Asana card per connection, the connect form, the latest audit entries,
and the form posts behind the cards' buttons (mounted under `/admin/tabs/integrations/`)."""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from goals import card as goals_card
from integrations import pipeline_tab, webhook_admin_views, webhooks_tab
from integrations.connect import ConnectError, connect_workspace, test_connection, update_settings
from integrations.forms import ConnectForm, ConnectionSettingsForm, MappingForm
from integrations.mapping import (
    MappingError,
    automap_by_email,
    map_employee,
    unmapped_employees,
    workspace_users,
)
from integrations.models import AsanaConnection, AsanaMapping, AuditLog

# A page with hundreds of per-employee forms helps nobody; the rest go by email or CSV.
UNMAPPED_SHOWN = 50
AUDIT_SHOWN = 20
_CONNECT_STASH = "integrations.connect_form"
# Connecting creates the connection or updates the one for that workspace.
CONNECT_PERMS = ("integrations.add_asanaconnection", "integrations.change_asanaconnection")


def _users(request: HttpRequest, connection: AsanaConnection) -> tuple[list[dict], str]:
    """The workspace's users, read from Asana at most once per request."""
    cache = request.__dict__.setdefault("_asana_workspace_users", {})
    if connection.pk not in cache:
        try:
            cache[connection.pk] = (workspace_users(connection), "")
        except MappingError as exc:
            cache[connection.pk] = ([], str(exc))
    return cache[connection.pk]


def _card(request: HttpRequest, connection: AsanaConnection, can_map: bool) -> dict[str, Any]:
    unmapped = unmapped_employees(connection)
    shown = list(unmapped[:UNMAPPED_SHOWN])
    users, users_error = ([], "")
    if can_map and shown:
        users, users_error = _users(request, connection)
        taken = set(connection.mappings.values_list("asana_user_gid", flat=True))
        users = [u for u in users if u["gid"] not in taken]
    return {
        "connection": connection,
        "settings_form": ConnectionSettingsForm.for_connection(connection),
        "pipeline": pipeline_tab.card(connection),
        "webhooks": webhooks_tab.card(connection),
        "goals": goals_card.card(connection),
        "unmapped": shown,
        "unmapped_more": max(unmapped.count() - len(shown), 0) if shown else 0,
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
    stash = request.session.pop(_CONNECT_STASH, None) or {}
    can_connect = user.has_perms(CONNECT_PERMS)
    return {
        "connections": [_card(request, c, can_map) for c in connections],
        "can_change_connection": user.has_perm("integrations.change_asanaconnection"),
        "can_map": can_map,
        "connect_form": ConnectForm(initial=stash.get("data")) if can_connect else None,
        "connect_errors": stash.get("errors", []),
        "audit_entries": (
            list(AuditLog.objects.all()[:AUDIT_SHOWN])
            if user.has_perm("integrations.view_auditlog")
            else None
        ),
    }


def _back() -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("admin:index") + "?tab=integrations")


def _staff_post(*perms: str) -> Callable:
    """Only active staff holding every permission may post; others get 403."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @require_POST
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            user = request.user
            if not (user.is_active and user.is_staff and user.has_perms(perms)):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


@_staff_post(*CONNECT_PERMS)
def connect_view(request: HttpRequest) -> HttpResponse:
    form = ConnectForm(request.POST)
    errors: list[str] = []
    if form.is_valid():
        data = form.cleaned_data
        try:
            connection = connect_workspace(
                data["token"],
                data["workspace_gid"],
                pilot_tag=data["pilot_tag"],
                skip_backlog=data["skip_backlog"],
                actor=request.user,
            )
        except ConnectError as exc:
            errors.append(str(exc))
        else:
            messages.success(request, f"Connected {connection}; token {connection.masked_token}.")
            return _back()
    else:
        errors = [
            f"{form.fields[name].label if name in form.fields else 'Form'}: {' '.join(msgs)}"
            for name, msgs in form.errors.items()
        ]
    # The form shows these after the redirect; the token is never kept.
    request.session[_CONNECT_STASH] = {
        "errors": errors,
        "data": {k: v for k, v in request.POST.items() if k in ("workspace_gid", "pilot_tag")},
    }
    return _back()


@_staff_post("integrations.change_asanaconnection")
def test_view(request: HttpRequest, pk: int) -> HttpResponse:
    connection = get_object_or_404(AsanaConnection, pk=pk)
    ok, message = test_connection(connection, actor=request.user)
    (messages.success if ok else messages.error)(request, f"{connection}: {message}")
    return _back()


@_staff_post("integrations.change_asanaconnection")
def settings_view(request: HttpRequest, pk: int) -> HttpResponse:
    connection = get_object_or_404(AsanaConnection, pk=pk)
    form = ConnectionSettingsForm.for_connection(connection, request.POST)
    if not form.is_valid():
        problems = "; ".join(
            f"{form.fields[n].label}: {' '.join(m)}" for n, m in form.errors.items()
        )
        messages.error(request, f"{connection}: settings not saved. {problems}")
        return _back()
    changed = update_settings(connection, actor=request.user, **form.cleaned_data)
    messages.success(
        request,
        f"{connection}: saved {', '.join(changed)}." if changed else f"{connection}: no changes.",
    )
    return _back()


@_staff_post("integrations.add_asanamapping")
def map_view(request: HttpRequest, pk: int) -> HttpResponse:
    connection = get_object_or_404(AsanaConnection, pk=pk)
    form = MappingForm(request.POST)
    if not form.is_valid():
        messages.error(
            request, "Not mapped: " + " ".join(" ".join(m) for m in form.errors.values())
        )
        return _back()
    employee = form.cleaned_data["employee"]
    try:
        mapping: AsanaMapping = map_employee(
            connection, employee, form.cleaned_data["gid"], actor=request.user
        )
    except MappingError as exc:
        messages.error(request, f"Not mapped: {exc}")
    else:
        messages.success(request, f"Mapped {employee.name} to Asana user {mapping.asana_user_gid}.")
    return _back()


@_staff_post("integrations.add_asanamapping")
def automap_view(request: HttpRequest, pk: int) -> HttpResponse:
    connection = get_object_or_404(AsanaConnection, pk=pk)
    try:
        mapped, remaining = automap_by_email(connection, actor=request.user)
    except MappingError as exc:
        messages.error(request, str(exc))
        return _back()
    names = ", ".join(m.employee.name for m in mapped) or "nobody"
    messages.success(
        request, f"Mapped {len(mapped)} by email ({names}); {len(remaining)} still unmapped."
    )
    return _back()


urlpatterns = [
    path("connect/", connect_view, name="connect"),
    path("<int:pk>/test/", test_view, name="test"),
    path("<int:pk>/settings/", settings_view, name="settings"),
    path("<int:pk>/map/", map_view, name="map"),
    path("<int:pk>/automap/", automap_view, name="automap"),
    *webhook_admin_views.urlpatterns,
]
