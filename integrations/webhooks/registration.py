"""Asana webhooks: registering, deleting and re-registering them (`POST /webhooks`,
`DELETE /webhooks/{webhook_gid}`), and how a registration is named and its hook id masked.

The HTTP side (handshake, signature, replay digest) lives in `views`; a registration's health
in `health`; acting on deliveries in `delivery`. This module is what the admin and the CLI call.

No `filters` are sent with `POST /webhooks`: Asana requires them only on higher-level
resources (workspace, team, portfolio), and on a project every event of its tasks, subtasks
and stories bubbles up. A tag change can arrive in more than one shape, so a filter could
drop the one event that matters; `delivery.task_gids` discards the rest without any Asana
read.
"""

import re
from typing import Any
from urllib.parse import urlsplit

from django.db import transaction
from django.urls import reverse

from integrations import audit
from integrations.asana.client import client_for
from integrations.asana.creates import create_once
from integrations.asana.errors import AsanaError, AsanaNotFound
from integrations.audit import Action
from integrations.models import AsanaConnection, AuditLog, WebhookRegistration
from pilotsite.redact import redact

ACTOR = "webhook"
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
