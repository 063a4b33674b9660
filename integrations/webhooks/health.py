"""A webhook's health: compare our registrations with Asana's `GET /webhooks` and mark each
active, failing (Asana's last delivery failed, or it reports the webhook inactive), gone
(Asana deleted it, or its registration never completed) or pending.

Asana deletes a webhook whose deliveries have failed for 24 hours; the check, every
`jobs.HEALTH_MINUTES`, shows that on the card long before and offers re-registration.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils import timezone

from integrations import audit
from integrations.asana.client import client_for
from integrations.asana.errors import AsanaError
from integrations.asana.times import parse_time
from integrations.audit import Action
from integrations.models import AsanaConnection, AuditLog, WebhookRegistration
from integrations.webhooks.registration import ACTOR, describe
from pilotsite.redact import redact

# A registration still pending this long after creation lost its handshake or its
# `POST /webhooks` answer (a crash mid-way); the health check marks it gone.
PENDING_GRACE = timedelta(minutes=15)


@dataclass
class WebhookHealth:
    """What one health check of a connection's webhooks found: registrations `checked`,
    `changed` lines ("<resource>: <old> → <new>"), webhooks in Asana whose target looks
    like ours but is not registered here (`untracked`), registrations per state after the
    check (`states`), or the `error` that stopped the check (then nothing was changed)."""

    checked: int = 0
    changed: list[str] = field(default_factory=list)
    untracked: int = 0
    states: dict[str, int] = field(default_factory=dict)
    error: str = ""

    def text(self) -> str:
        """One line for people, the audit row and the job's result."""
        if self.error:
            return f"health check failed: {self.error}"
        counts = ", ".join(
            f"{self.states[s]} {s}" for s in WebhookRegistration.State.values if self.states.get(s)
        )
        text = f"{self.checked} checked" + (f" ({counts})" if counts else "")
        if self.changed:
            text += "; changed: " + "; ".join(self.changed)
        if self.untracked:
            text += f"; {self.untracked} webhook(s) in Asana not registered here"
        return text


def check_webhook_health(connection: AsanaConnection) -> WebhookHealth:
    """Compare our registrations with `GET /webhooks` and mark gone/failing/active ones."""
    summary = WebhookHealth()
    try:
        with client_for(connection) as client:
            remote = {str(w.get("gid")): w for w in client.webhooks(connection.workspace_gid)}
    except AsanaError as exc:
        summary.error = str(exc)
        audit.record(
            Action.WEBHOOK_HEALTH,
            target=connection.workspace_gid,
            outcome=AuditLog.Outcome.ERROR,
            detail=exc.detail or str(exc),
            actor_label=ACTOR,
            connection=connection,
        )
        return summary

    now = timezone.now()
    registrations = list(connection.webhooks.all())
    ours = {r.target_url for r in registrations}
    summary.untracked = sum(
        1
        for w in remote.values()
        if "/webhooks/asana/" in str(w.get("target")) and w.get("target") not in ours
    )
    for registration in registrations:
        summary.checked += 1
        state, error = _observed_state(registration, remote.get(registration.webhook_gid), now)
        if (state, error) != (registration.state, registration.last_error):
            summary.changed.append(f"{registration.resource_gid}: {registration.state} → {state}")
            audit.record(
                Action.WEBHOOK_STATE,
                target=describe(registration),
                outcome=AuditLog.Outcome.OK if state == "active" else AuditLog.Outcome.WARNING,
                detail=f"{registration.state} → {state}. {error}".strip(),
                actor_label=ACTOR,
                connection=connection,
            )
        registration.state, registration.last_error = state, error
        registration.last_checked_at = now
        registration.save(update_fields=["state", "last_error", "last_checked_at", "updated_at"])
    summary.states = {
        state: sum(1 for r in registrations if r.state == state)
        for state in WebhookRegistration.State.values
    }
    audit.record(
        Action.WEBHOOK_HEALTH,
        target=connection.workspace_gid,
        detail=summary.text(),
        actor_label=ACTOR,
        connection=connection,
    )
    return summary


def _observed_state(
    registration: WebhookRegistration, remote: dict | None, now: datetime
) -> tuple[str, str]:
    State = WebhookRegistration.State
    if not registration.webhook_gid:
        if now - registration.created_at > PENDING_GRACE:
            return State.GONE, "The registration never completed; re-register it."
        return State.PENDING, registration.last_error
    if remote is None:
        return State.GONE, "Asana no longer has this webhook (deleted after failed deliveries?)."
    if not remote.get("active", True):
        return State.FAILING, _failure_text(remote, "Asana reports the webhook as inactive.")
    failed_at = parse_time(remote.get("last_failure_at"))
    last_ok = registration.last_contact_at
    if failed_at and (last_ok is None or failed_at > last_ok):
        return State.FAILING, _failure_text(remote, "Asana's last delivery attempt failed.")
    if not registration.secret:
        return State.FAILING, "No handshake secret is stored; re-register the webhook."
    return State.ACTIVE, ""


def _failure_text(remote: dict, fallback: str) -> str:
    content = str(remote.get("last_failure_content") or "").strip()
    when = remote.get("last_failure_at")
    text = f"{fallback} Last failure {when}: {content}" if content else fallback
    return redact(text)[:500]
