"""Asana webhooks: registering, deleting and checking them, and acting on their deliveries.

The HTTP side (handshake, signature, replay digest) lives in `webhook_views`; this module is
what the admin, the CLI and the django-q2 jobs call.

Events are compact and may arrive out of order, several per delivery, at the same moment
the poller finds the same task. So a delivery never decides anything by itself: every task
it mentions is handed to `runs.dispatch_task`, which re-reads the task from Asana and
claims it only if it is eligible now (pilot tag, not completed, no status tag) and not
already claimed. That is also how "the pilot tag was just added" is recognised: a `changed`
event does not say which tag changed, but a task that is eligible and unclaimed after the
re-read is one whose pilot tag is new to us — and a failed task whose `pilot-failed` tag was
removed becomes eligible again the same way. The processed-task claim keeps each task to
one execution whichever path (poll, webhook, replayed webhook) reaches it first.

No `filters` are sent with `POST /webhooks`: Asana requires them only on higher-level
resources (workspace, team, portfolio), and on a project every event of its tasks, subtasks
and stories bubbles up. A tag change can arrive in more than one shape (a `changed` task
with field `tags`, a task `added`/`removed` with a tag as parent, a tag with a task as
parent), so a filter could drop the one event that matters; `task_gids` discards the rest
without any Asana read.
"""

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from integrations import audit
from integrations.asana.client import client_for
from integrations.asana.creates import create_once
from integrations.asana.errors import AsanaError, AsanaNotFound
from integrations.audit import Action
from integrations.models import (
    AsanaConnection,
    AuditLog,
    ProcessedTask,
    WebhookDelivery,
    WebhookRegistration,
)
from integrations.pipeline import runs
from integrations.pipeline.stop import check_running
from pilotsite.redact import redact

log = logging.getLogger(__name__)

ACTOR = "webhook"
# Replay digests are kept this long; deliveries whose events are all older are dropped as
# stale (Asana retries a delivery for at most 24 hours, so a week leaves a wide margin).
DELIVERY_RETENTION = timedelta(days=7)
# A registration still pending this long after creation lost its handshake or its
# `POST /webhooks` answer (a crash mid-way); the health check marks it gone.
PENDING_GRACE = timedelta(minutes=15)
# One delivery reads at most this many tasks (and claims at most the queue's budget); the
# rest waits for the next poll, so a delivery of thousands of events stays cheap.
TASKS_PER_DELIVERY = 20
# An audit row names at most this many tasks per list.
GIDS_SHOWN = 10
# Only these fields can turn a task eligible; other changes are not worth a re-read.
RELEVANT_FIELDS = frozenset({"tags", "completed"})
TASK_ACTIONS = frozenset({"added", "changed"})
TAG_ACTIONS = frozenset({"added", "removed"})
# The hook id in a target URL: all but its first characters are hidden wherever it is
# written down, since whoever has it could answer a pending registration's handshake first.
_HOOK_ID_IN_URL = re.compile(r"(/webhooks/asana/)([\w-]{4})[\w-]*")


class WebhookError(Exception):
    """A message for a person: what failed and what to do about it."""


def target_url_for(public_url: str, hook_id: str) -> str:
    return public_url.rstrip("/") + reverse("asana-webhook", args=[hook_id])


def mask_hook_ids(text: str) -> str:
    return _HOOK_ID_IN_URL.sub(r"\1\2…", text)


def describe(registration: WebhookRegistration) -> str:
    """How audit rows, logs and messages name a registration (never by its hook id)."""
    resource = registration.resource_gid
    if registration.resource_name:
        resource = f"{registration.resource_name} ({resource})"
    return f"webhook {registration.webhook_gid or '(none)'} on {resource}"


def public_url_of(registration: WebhookRegistration) -> str:
    """The base URL a registration was made with (its target minus the webhook path)."""
    suffix = reverse("asana-webhook", args=[registration.hook_id])
    return registration.target_url.removesuffix(suffix)


def clean_public_url(public_url: str) -> str:
    parts = urlsplit((public_url or "").strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookError(
            "The public URL must start with https:// (or http:// for a local test) and name a "
            "host that Asana can reach, for example https://pilot.example.com."
        )
    if parts.query or parts.fragment:
        raise WebhookError("The public URL must not contain a query (?…) or a fragment (#…).")
    return f"{parts.scheme}://{parts.netloc}{parts.path}".rstrip("/")


def _in_transaction() -> bool:
    return transaction.get_connection().in_atomic_block


def register_webhook(
    connection: AsanaConnection,
    resource_gid: str,
    public_url: str,
    *,
    actor: audit.Actor = None,
) -> WebhookRegistration:
    """Create a registration, then ask Asana for the webhook.

    Asana sends the handshake to the target while `POST /webhooks` is still waiting, so the
    registration (with its unguessable hook id) must be committed first: the webhook view,
    in another thread or process, looks it up and stores the secret.
    """
    resource_gid = (resource_gid or "").strip()
    if not resource_gid.isdigit():
        raise WebhookError("The resource GID is a number, e.g. a project's GID from its URL.")
    public_url = clean_public_url(public_url)
    if _in_transaction():
        raise RuntimeError("register_webhook must run outside a transaction (see docstring)")

    registration = WebhookRegistration(connection=connection, resource_gid=resource_gid)
    registration.target_url = target_url_for(public_url, registration.hook_id)
    registration.save()
    audit.record(
        Action.WEBHOOK_REGISTER,
        target=f"resource {resource_gid}",
        detail=f"target {mask_hook_ids(registration.target_url)}",
        actor=actor,
        connection=connection,
    )
    try:
        with client_for(connection) as client:
            # A create answered 5xx or not at all may have reached Asana: adopt the webhook
            # if it exists rather than making a second one.
            data = create_once(
                lambda: client.create_webhook(resource_gid, registration.target_url),
                lambda: _find_by_target(client, connection, registration.target_url),
                what=f"webhook for resource {resource_gid}",
            )
    except AsanaError as exc:
        registration.delete()
        message = _registration_failure(exc, resource_gid)
        audit.record(
            Action.WEBHOOK_REGISTER,
            target=f"resource {resource_gid}",
            outcome=AuditLog.Outcome.ERROR,
            detail=mask_hook_ids(f"{message} ({exc.detail or exc})"),
            actor=actor,
            connection=connection,
        )
        raise WebhookError(message) from exc

    # Reload: the handshake stored the secret on the row while we were waiting.
    registration.refresh_from_db()
    registration.webhook_gid = str(data.get("gid", ""))
    resource = data.get("resource")
    registration.resource_name = (
        (resource.get("name") or "")[:255] if isinstance(resource, dict) else ""
    )
    if registration.secret:
        registration.state = WebhookRegistration.State.ACTIVE
        registration.last_error = ""
    else:
        registration.state = WebhookRegistration.State.FAILING
        registration.last_error = "Asana created the webhook but no handshake reached this site."
    registration.save(
        update_fields=["webhook_gid", "resource_name", "state", "last_error", "updated_at"]
    )
    audit.record(
        Action.WEBHOOK_REGISTERED,
        target=describe(registration),
        outcome=AuditLog.Outcome.OK if registration.secret else AuditLog.Outcome.WARNING,
        detail=registration.last_error,
        actor=actor,
        connection=connection,
    )
    return registration


def _find_by_target(client: Any, connection: AsanaConnection, target: str) -> dict | None:
    return next(
        (w for w in client.webhooks(connection.workspace_gid) if w.get("target") == target),
        None,
    )


def _registration_failure(exc: AsanaError, resource_gid: str) -> str:
    if exc.status in (400, 403):
        hint = (
            "Check the resource GID (a project or a task: workspaces, teams and portfolios "
            "need event filters, which pilotsite does not send), and that the public URL "
            "reaches this site from the internet over HTTPS (Asana refuses localhost) while "
            "the request is in flight: the site must answer Asana's handshake then"
        )
    else:
        hint = exc.advice
    return redact(f"Asana did not create the webhook for resource {resource_gid}: {exc}. {hint}.")


def delete_webhook(registration: WebhookRegistration, *, actor: audit.Actor = None) -> None:
    """Delete the webhook in Asana (if it still exists there), then the registration."""
    connection = registration.connection
    target = describe(registration)
    if registration.webhook_gid:
        try:
            with client_for(connection) as client:
                client.delete_webhook(registration.webhook_gid)
        except AsanaNotFound:
            pass  # Asana already deleted it; removing our row is all that is left.
        except AsanaError as exc:
            audit.record(
                Action.WEBHOOK_DELETE,
                target=target,
                outcome=AuditLog.Outcome.ERROR,
                detail=exc.detail or str(exc),
                actor=actor,
                connection=connection,
            )
            raise WebhookError(f"Asana did not delete the webhook: {exc}. {exc.advice}.") from exc
    registration.delete()
    audit.record(Action.WEBHOOK_DELETE, target=target, actor=actor, connection=connection)


def reregister(
    registration: WebhookRegistration, *, actor: audit.Actor = None
) -> WebhookRegistration:
    """Replace a gone or failing registration with a new one (new hook id and secret).

    The new webhook is created first, so a failed attempt leaves the old row to retry from.
    """
    new = register_webhook(
        registration.connection,
        registration.resource_gid,
        public_url_of(registration),
        actor=actor,
    )
    try:
        delete_webhook(registration, actor=actor)
    except WebhookError as exc:
        # The replacement works; the old webhook just keeps failing until Asana drops it.
        registration.state = WebhookRegistration.State.FAILING
        registration.last_error = f"replaced by {new.webhook_gid}; {exc}"
        registration.save(update_fields=["state", "last_error", "updated_at"])
    return new


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
    failed_at = _parse_time(remote.get("last_failure_at"))
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


def _parse_time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def prune_deliveries(now: datetime | None = None) -> int:
    cutoff = (now or timezone.now()) - DELIVERY_RETENTION
    deleted, _ = WebhookDelivery.objects.filter(received_at__lt=cutoff).delete()
    return deleted


# -- deliveries ---------------------------------------------------------------------------


def task_gids(events: list[dict[str, Any]]) -> tuple[list[str], int]:
    """The tasks worth re-reading for these events, in first-seen order, and how many events
    were ignored. A tag added to or removed from a task is a change of that task (removing
    `pilot-failed` makes a failed task eligible again), whichever shape the event has."""
    gids: dict[str, None] = {}
    ignored = 0
    for event in events:
        gid = _task_of(event)
        if gid:
            gids[gid] = None
        else:
            ignored += 1
    return list(gids), ignored


def _task_of(event: Any) -> str | None:
    if not isinstance(event, dict):
        return None
    resource = event.get("resource") or {}
    parent = event.get("parent") or {}
    action = event.get("action")
    kind = resource.get("resource_type") or event.get("type")
    if kind == "task" and parent.get("resource_type") == "tag" and action in TAG_ACTIONS:
        return _gid(resource)
    if kind == "task" and action in TASK_ACTIONS:
        field = (event.get("change") or {}).get("field")
        if field is None or field in RELEVANT_FIELDS:
            return _gid(resource)
        return None
    if kind == "tag" and parent.get("resource_type") == "task" and action in TAG_ACTIONS:
        return _gid(parent)
    return None


def _gid(obj: dict) -> str | None:
    gid = str(obj.get("gid") or "")
    return gid if gid.isdigit() else None


@dataclass
class DeliveryOutcome:
    """What handling one delivery did: how many `events` it had and how many were `ignored`
    (not about a task, or a change that cannot make one eligible), and task GIDs by fate:
    `dispatched` (claimed and queued), `stopped` (runs stopped because the task was
    untagged, completed or tagged to stop), `not_eligible`, `already_claimed` (the ledger blocks
    them), `errors` ("<gid>: <reason>"; polling retries them) and `deferred` (over the
    per-delivery bounds; the next poll takes them). `skipped` says why nothing was done."""

    events: int = 0
    ignored: int = 0
    already_claimed: list[str] = field(default_factory=list)
    dispatched: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    not_eligible: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)
    skipped: str = ""

    def text(self) -> str:
        """One line for the audit row: counts, then up to GIDS_SHOWN GIDs per fate."""
        parts = [f"{self.events} event(s)", f"{self.ignored} ignored"]
        for key in (
            "dispatched",
            "stopped",
            "not_eligible",
            "already_claimed",
            "errors",
            "deferred",
        ):
            items: list[str] = getattr(self, key)
            if items:
                shown = ", ".join(items[:GIDS_SHOWN])
                if len(items) > GIDS_SHOWN:
                    shown += f", … ({len(items)} in all)"
                parts.append(f"{key.replace('_', ' ')}: {shown}")
        if self.deferred:
            parts.append("deferred tasks wait for the next poll")
        return "; ".join(parts)


def handle_delivery(registration_id: int, events: list[dict[str, Any]]) -> DeliveryOutcome:
    """django-q2 task: dispatch the tasks the delivery's events mention, within bounds.

    Events are coalesced per task. One delivery reads at most `TASKS_PER_DELIVERY` tasks and
    claims at most `runs.queue_budget()` (the bound polling keeps too), so a delivery of
    thousands of events cannot start thousands of reads, claims or jobs; the tasks it leaves
    are counted as deferred and the next poll takes them.
    """
    registration = (
        WebhookRegistration.objects.select_related("connection").filter(pk=registration_id).first()
    )
    if registration is None:
        return DeliveryOutcome(skipped="registration deleted")
    connection = registration.connection
    gids, ignored = task_gids(events)
    stops = _stops(connection, gids, events)
    blocked = runs.blocked_gids(connection, gids)
    summary = DeliveryOutcome(
        events=len(events), ignored=ignored, already_claimed=sorted(blocked), stopped=stops
    )
    candidates = [gid for gid in gids if gid not in blocked]
    claims_left = runs.queue_budget()
    reads_left = TASKS_PER_DELIVERY
    for index, gid in enumerate(candidates):
        if claims_left <= 0 or reads_left <= 0:
            summary.deferred = candidates[index:]
            break
        reads_left -= 1
        try:
            processed = runs.dispatch_task(connection, gid, source="webhook")
        except AsanaError as exc:
            # Polling picks the task up later; one bad task must not stop the others.
            summary.errors.append(f"{gid}: {exc}")
            continue
        if processed is not None:
            claims_left -= 1
        (summary.dispatched if processed else summary.not_eligible).append(gid)
    outcome = AuditLog.Outcome.WARNING if summary.errors else AuditLog.Outcome.OK
    audit.record(
        Action.WEBHOOK_HANDLED,
        target=describe(registration),
        outcome=outcome,
        detail=summary.text(),
        actor_label=ACTOR,
        connection=connection,
    )
    return summary


def _stops(connection: AsanaConnection, gids: list[str], events: list[dict[str, Any]]) -> list[str]:
    """Running tasks among the events' that Asana now asks to stop (pilot tag removed,
    completed, `pilot-stop` added); the event's `user` is the person who stopped it."""
    running = ProcessedTask.objects.filter(
        connection=connection, state=ProcessedTask.State.RUNNING, task_gid__in=gids
    )
    if not running.exists():
        return []
    users: dict[str, dict] = {}
    for event in events:
        gid = _task_of(event)
        if gid and isinstance(event.get("user"), dict):
            users[gid] = event["user"]
    try:
        with client_for(connection) as client:
            return check_running(connection, client, gids=gids, users=users)
    except AsanaError as exc:
        log.warning("webhook: could not look for stops: %s", exc)
        return []
