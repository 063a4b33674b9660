"""The endpoint Asana posts to: `/webhooks/asana/<hook_id>/`.

It answers within milliseconds and never talks to Asana: the handshake stores the secret,
a delivery is verified, recorded and handed to django-q2 (`webhooks.handle_delivery`).

Replays: the SHA-256 of every accepted body is kept (`WebhookDelivery`, unique per
registration) for `DELIVERY_RETENTION`; an identical body is acknowledged with 200 so
Asana stops retrying, but is not processed again. Deliveries whose events are all older
than that window are dropped as stale, since their digests may have been pruned. Even a
replay that slipped through would not run a task twice: the processed-task claim allows
one execution per task.
"""

import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from django_q.tasks import async_task

from integrations import audit
from integrations.models import AuditLog, WebhookDelivery, WebhookRegistration
from integrations.webhooks import ACTOR, DELIVERY_RETENTION
from pilotsite.redact import register_secret

MAX_BODY_BYTES = 1024 * 1024
MAX_SECRET_LENGTH = 256
HANDLER = "integrations.webhooks.handle_delivery"


def _answer(status: int, text: str) -> HttpResponse:
    return HttpResponse(text, status=status, content_type="text/plain; charset=utf-8")


def _refuse(
    request: HttpRequest,
    status: int,
    text: str,
    registration: WebhookRegistration | None,
    detail: str = "",
    action: str = "webhook.refused",
) -> HttpResponse:
    audit.record(
        action,
        target=_target(registration),
        outcome=AuditLog.Outcome.WARNING,
        detail=f"{status} {text}. {detail} from {request.META.get('REMOTE_ADDR', '?')}".strip(),
        actor_label=ACTOR,
        connection=registration.connection if registration else None,
    )
    return _answer(status, text)


def _target(registration: WebhookRegistration | None) -> str:
    if registration is None:
        return "unknown webhook id"
    return (
        f"webhook {registration.webhook_gid or '(pending)'} on resource {registration.resource_gid}"
    )


@csrf_exempt
@require_POST
def asana_webhook(request: HttpRequest, hook_id: str) -> HttpResponse:
    registration = (
        WebhookRegistration.objects.select_related("connection").filter(hook_id=hook_id).first()
    )
    if registration is None:
        return _refuse(request, 404, "unknown webhook", None)
    secret = request.headers.get("X-Hook-Secret")
    if secret is not None:
        return _handshake(request, registration, secret)
    return _delivery(request, registration)


def _handshake(
    request: HttpRequest, registration: WebhookRegistration, secret: str
) -> HttpResponse:
    if not 0 < len(secret) <= MAX_SECRET_LENGTH:
        return _refuse(request, 400, "bad X-Hook-Secret", registration)
    if registration.state != WebhookRegistration.State.PENDING or registration.secret:
        return _refuse(request, 409, "handshake already done", registration)
    register_secret(secret)
    # Conditional update: of two racing handshakes only one can store its secret.
    stored = WebhookRegistration.objects.filter(
        pk=registration.pk, secret="", state=WebhookRegistration.State.PENDING
    ).update(secret=secret, last_contact_at=timezone.now())
    if not stored:
        return _refuse(request, 409, "handshake already done", registration)
    audit.record(
        "webhook.handshake",
        target=_target(registration),
        detail="secret stored (encrypted)",
        actor_label=ACTOR,
        connection=registration.connection,
    )
    response = _answer(200, "")
    response["X-Hook-Secret"] = secret
    return response


def _read_body(request: HttpRequest) -> bytes | None:
    """The raw body, or None when it is over the limit (declared or actual)."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > MAX_BODY_BYTES:
        return None
    body = request.read(MAX_BODY_BYTES + 1)
    return None if len(body) > MAX_BODY_BYTES else body


def _signature_ok(secret: str, body: bytes, signature: str) -> bool:
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode()
    return hmac.compare_digest(expected, signature.strip().encode("latin-1", "replace"))


def _events(body: bytes) -> list[dict[str, Any]] | None:
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return None
    events = payload.get("events") if isinstance(payload, dict) else None
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        return None
    return events


def _all_stale(events: list[dict[str, Any]]) -> bool:
    cutoff = timezone.now() - DELIVERY_RETENTION
    for event in events:
        try:
            created = datetime.fromisoformat(str(event.get("created_at")))
        except ValueError:
            return False
        if timezone.is_naive(created) or created >= cutoff:
            return False
    return True


def _delivery(request: HttpRequest, registration: WebhookRegistration) -> HttpResponse:
    body = _read_body(request)
    if body is None:
        return _refuse(request, 413, "body too large", registration, f"limit {MAX_BODY_BYTES} B")
    signature = request.headers.get("X-Hook-Signature", "")
    if not signature:
        return _refuse(request, 401, "missing signature", registration)
    if not registration.secret or not _signature_ok(registration.secret, body, signature):
        return _refuse(request, 401, "bad signature", registration, f"{len(body)} B body")
    events = _events(body)
    if events is None:
        return _refuse(request, 400, "malformed JSON", registration, f"{len(body)} B body")

    now = timezone.now()
    registrations = WebhookRegistration.objects.filter(pk=registration.pk)
    if not events:
        registrations.update(last_contact_at=now)
        audit.record(
            "webhook.heartbeat",
            target=_target(registration),
            actor_label=ACTOR,
            connection=registration.connection,
        )
        return _answer(200, "ok")
    if _all_stale(events):
        return _refuse(request, 200, "stale delivery ignored", registration, action="webhook.stale")

    digest = hashlib.sha256(body).hexdigest()
    try:
        # One transaction: the digest, the queued job (with the ORM broker) and the records
        # commit together, so a failure leaves no digest that would make Asana's retry look
        # like a replay. (It also spares django-q2's broker a reconnect per request.)
        with transaction.atomic():
            WebhookDelivery.objects.create(
                registration=registration, body_sha256=digest, event_count=len(events)
            )
            async_task(
                HANDLER,
                registration.pk,
                events,
                group="webhooks",
                task_name=f"webhook-{digest[:16]}",
            )
            registrations.update(last_contact_at=now, last_delivery_at=now)
            audit.record(
                "webhook.delivery",
                target=_target(registration),
                detail=f"{len(events)} event(s) queued; body sha256 {digest[:16]}",
                actor_label=ACTOR,
                connection=registration.connection,
            )
    except IntegrityError:
        return _refuse(
            request, 200, "replay ignored", registration, f"sha256 {digest[:16]}", "webhook.replay"
        )
    except Exception as exc:
        return _refuse(request, 503, "could not queue", registration, type(exc).__name__)
    return _answer(200, "ok")
