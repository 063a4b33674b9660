"""One function writes the audit log, so every caller records the same shape."""

from django.contrib.auth.base_user import AbstractBaseUser

from integrations.audit.actions import Action, AdminChange
from integrations.models import AsanaConnection, AuditLog
from pilotsite.redact import redact


def record(
    action: Action | AdminChange,
    *,
    target: str = "",
    outcome: str = AuditLog.Outcome.OK,
    detail: str = "",
    actor: AbstractBaseUser | None = None,
    actor_label: str = "system",
    connection: AsanaConnection | None = None,
) -> AuditLog:
    """Write one audit row and return it. `actor` (a signed-in user) wins over
    `actor_label` (a process's name such as "poller"); `target` and `detail` are redacted
    (tokens, secrets) and cut to the column's length."""
    if actor is not None and getattr(actor, "is_authenticated", False):
        actor_label = actor.get_username()
    else:
        actor = None
    return AuditLog.objects.create(
        action=str(action)[:100],
        target=redact(target)[:300],
        outcome=outcome,
        detail=redact(detail)[:5000],
        actor=actor,
        actor_label=actor_label[:150],
        connection=connection,
    )
