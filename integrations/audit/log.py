"""One function writes the audit log, so every caller records the same shape."""

from django.contrib.auth.models import AnonymousUser, User

from integrations.audit.actions import Action, AdminChange
from integrations.models import AsanaConnection, AuditLog
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
