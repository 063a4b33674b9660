"""The integrations tab: an Asana card per connection, the connect form and the latest audit
entries. The form posts behind the cards' buttons are in `tab_views`."""

from typing import Any

from django.http import HttpRequest

from integrations.audit.text import describe
from integrations.card_sections import card_sections
from integrations.forms import (
    ConnectForm,
    ConnectionSettingsForm,
    ReplaceTokenForm,
    SafetyRailsForm,
    fields_with_errors,
)
from integrations.models import (
    AsanaConnection,
    AuditLog,
    Employee,
    WebhookRegistration,
)
from integrations.people import import_views
from integrations.people.mapping import (
    AsanaUser,
    known_users,
    unmapped_employees,
)
from integrations.pipeline import card as pipeline_card
from integrations.pipeline import executor_card
from integrations.webhooks import card as webhooks_card
from pilotsite.liveness import Liveness, liveness

# A page with hundreds of per-employee forms helps nobody; the rest go by email or CSV.
UNMAPPED_SHOWN = 50
AUDIT_SHOWN = 20
# A failed post redirects back to the tab; what it needs to show its errors beside the
# form that failed (and the values typed, never a token) waits in the session:
# {form id: {"errors": {field or "__all__": [...]}, "data": {...}}}.
FAILED_FORMS = "integrations.failed_forms"
# Connecting creates the connection or updates the one for that workspace.
CONNECT_PERMS = ("integrations.add_asanaconnection", "integrations.change_asanaconnection")


def mapping_choices(
    request: HttpRequest, connection: AsanaConnection
) -> tuple[list[AsanaUser] | None, str]:
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
    """The card's status badge: paused (the safety rails stopped claims) / ok / error / not
    checked, and one line about it."""
    if connection.paused_at is not None:
        return {"state": "error", "label": "paused"}
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
        known, users_error = mapping_choices(request, connection)
        taken = set(connection.mappings.values_list("asana_user_gid", flat=True))
        users = [u for u in known or () if u.gid not in taken]
    settings_failed = failed.get(f"settings-{connection.pk}", {})
    settings_form = ConnectionSettingsForm.for_connection(connection)
    if settings_failed:
        # Show what was typed, not the stored values, next to the errors.
        settings_form.initial.update(settings_failed["data"])
    token_failed = failed.get(f"token-{connection.pk}", {})
    rails_failed = failed.get(f"rails-{connection.pk}", {})
    rails_form = SafetyRailsForm.for_connection(connection)
    if rails_failed:
        rails_form.initial.update(rails_failed["data"])
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
        "rails_open": bool(rails_failed),
        "rails_fields": fields_with_errors(rails_form, rails_failed.get("errors", {})),
        "rails_errors": _form_level(rails_failed),
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
    failed = request.session.pop(FAILED_FORMS, None) or {}
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
