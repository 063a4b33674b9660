"""One function writes the audit log, so every caller records the same shape."""

from django.contrib.auth.models import AnonymousUser, User

from integrations.audit.actions import Action, AdminChange
from integrations.models import AsanaConnection, AuditLog, ProcessedTask
from pilotsite.redact import redact

# Who acts: a request's user (signed in, or anonymous), or None for the system itself.
# Only a signed-in user is recorded as the row's actor; otherwise `actor_label` names it.
Actor = User | AnonymousUser | None


def record(
    action: Action | AdminChange,
    *,
    target: str = "",
    outcome: str = AuditLog.Outcome.OK,
    detail: str = "",
    actor: Actor = None,
    actor_label: str = "system",
    connection: AsanaConnection | None = None,
) -> AuditLog:
    """Write one audit row and return it. `actor` (a signed-in user) wins over
    `actor_label` (a process's name such as "poller"); `target` and `detail` are redacted
    (tokens, secrets) and cut to the column's length."""
    user = actor if actor is not None and actor.is_authenticated else None
    if user is not None:
        actor_label = user.get_username()
    return AuditLog.objects.create(
        action=str(action)[:100],
        target=redact(target)[:300],
        outcome=outcome,
        detail=redact(detail)[:5000],
        actor=user,
        actor_label=actor_label[:150],
        connection=connection,
    )


def record_task(
    action: Action, processed: ProcessedTask, *, outcome: str, detail: str, actor_label: str
) -> AuditLog:
    """`record` for something a process did to one task in Asana: the target is the task
    ("task <gid>") and the connection is the task's."""
    return record(
        action,
        target=f"task {processed.task_gid}",
        outcome=outcome,
        detail=detail,
        actor_label=actor_label,
        connection=processed.connection,
    )
