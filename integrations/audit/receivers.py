"""The site's announcements written to the audit log (connected in `IntegrationsConfig.ready`):
every change made through the admin, and every django-q2 task a superuser resubmitted."""

from typing import Any

from django.db.models import Model
from django.http import HttpRequest

from integrations.audit.actions import Action, AdminChange, AdminVerb
from integrations.audit.log import record
from integrations.models import AsanaConnection


def record_admin_change(
    sender: type[Model], *, request: HttpRequest, verb: str, obj: Model, detail: str, **_: Any
) -> None:
    """`pilotsite.signals.admin_changed`: one `admin.<model>.<verb>` row, linked to the
    connection the object belongs to (none for a deleted connection: its row is about to go)."""
    if isinstance(obj, AsanaConnection):
        connection = None if verb == AdminVerb.DELETE else obj
    else:
        connection = getattr(obj, "connection", None)
        if not isinstance(connection, AsanaConnection):
            connection = None
    record(
        AdminChange(sender._meta.model_name or "", AdminVerb(verb)),
        target=str(obj),
        detail=detail,
        actor=request.user,
        connection=connection,
    )


def record_task_resubmitted(
    sender: type[Model], *, request: HttpRequest, task: Any, **_: Any
) -> None:
    """`pilotsite.signals.task_resubmitted`: the function and name of the task queued again."""
    record(Action.TASK_RESUBMIT, target=f"{task.func} ({task.name})", actor=request.user)
