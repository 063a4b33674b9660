"""The endpoint Asana posts to: `/webhooks/asana/<hook_id>/`.

It answers within milliseconds and never talks to Asana: the handshake stores the secret,
a delivery is verified, recorded and handed to django-q2 (`jobs.handle_delivery`).

Replays: the SHA-256 of every accepted body is kept (`WebhookDelivery`, unique per
registration) for `DELIVERY_RETENTION`; an identical body is acknowledged with 200 so
Asana stops retrying, but is not processed again. Deliveries whose events are all older
than that window are dropped as stale, since their digests may have been pruned. Even a
replay that slipped through would not run a task twice: the processed-task claim allows
one execution per task.

Refused requests are audited, but anyone can send them and the audit log is append-only,
so their rows are throttled: one row per registration (or for all unknown ids together) and
kind of refusal every `WEBHOOK_REFUSAL_AUDIT_SECONDS` (setting, default 60); the next row
recorded says how many were left out in between. Heartbeats share the throttle: every
heartbeat has the same body, so the replay digest cannot stop a captured one being resent.
The window lives in Django's cache: per process with the default local-memory cache (at
most one row per worker and window), site-wide with a shared cache.

The hook id in the URL is masked in Django's and the web server's request logs (see
`HookIdFilter`).
"""

import hashlib
import hmac
import json
import logging
from contextlib import suppress
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_POST

from integrations import audit
from integrations.audit import Action
from integrations.models import AuditLog, WebhookDelivery, WebhookRegistration
from integrations.webhooks.delivery import DELIVERY_RETENTION
from integrations.webhooks.jobs import handle_delivery
from integrations.webhooks.registration import ACTOR, describe, mask_hook_ids
from pilotsite.redact import redact, register_secret
from pilotsite.schedules import send_on_commit

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
MAX_SECRET_LENGTH = 256
# Asana's events nest four levels at most (delivery → events → event → resource/change); the
# bound leaves room while keeping anything derived from the events cheap and recursion-safe.
MAX_JSON_DEPTH = 16
# Long enough to outlive any window; the count is read back when the next row is written.
_COUNT_SECONDS = 24 * 3600


class HookIdFilter(logging.Filter):
    """Masks the hook id in request lines ("Unauthorized: /webhooks/asana/<id>/", access logs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_hook_ids(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


# These loggers write the request path of every request they report; installed here (the
# URLconf imports this module before the first request is answered) so that each
# process serving the endpoint has it, whatever the logging configuration.
_HOOK_ID_FILTER = HookIdFilter()
for _name in ("django.request", "django.server", "gunicorn.access", "gunicorn.error"):
    logging.getLogger(_name).addFilter(_HOOK_ID_FILTER)


def _answer(status: int, text: str) -> HttpResponse:
    return HttpResponse(text, status=status, content_type="text/plain; charset=utf-8")


def _audit_throttled(key: str, action: Action, **fields: Any) -> str | None:
    """Record one audit row per `key` and window and return its detail; count the rest (None)
    into the next row."""
    seconds = settings.WEBHOOK_REFUSAL_AUDIT_SECONDS
    window, count = f"pilotsite:webhook-audit:{key}", f"pilotsite:webhook-audit-count:{key}"
    if not cache.add(window, 1, seconds):
        cache.add(count, 0, _COUNT_SECONDS)
        with suppress(ValueError):  # expired between add and incr: one request goes uncounted
            cache.incr(count)
        return None
    left_out = cache.get(count) or 0
    if left_out:
        cache.decr(count, left_out)  # not a reset: increments made meanwhile are kept
        note = f"({left_out} more like this not recorded since the previous row)"
        fields["detail"] = f"{fields['detail']} {note}".strip()
    audit.record(action, actor_label=ACTOR, **fields)
    return fields["detail"]


def _refuse(
    request: HttpRequest,
    status: int,
    text: str,
    registration: WebhookRegistration | None,
    detail: str = "",
    action: Action = Action.WEBHOOK_REFUSED,
) -> HttpResponse:
    target = _target(registration)
    recorded = _audit_throttled(
        f"{registration.pk if registration else 'unknown'}:{action}:{status}",
        action,
        target=target,
        outcome=AuditLog.Outcome.WARNING,
        detail=" ".join(
            part
            for part in (
                f"{status} {text}.",
                detail,
                f"from {request.META.get('REMOTE_ADDR', '?')}",
            )
            if part
        ),
        connection=registration.connection if registration else None,
    )
    if recorded:
        log.warning("%s %s: %s", action, target, recorded)
    return _answer(status, text)


def _target(registration: WebhookRegistration | None) -> str:
    return "unknown webhook id" if registration is None else describe(registration)


@csrf_exempt
@require_POST
@sensitive_variables("secret")
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


@sensitive_variables("secret")
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
        Action.WEBHOOK_HANDSHAKE,
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


@sensitive_variables("secret", "expected")
def _signature_ok(secret: str, body: bytes, signature: str) -> bool:
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode()
    return hmac.compare_digest(expected, signature.strip().encode("latin-1", "replace"))


def _nested_deeper_than(value: Any, limit: int) -> bool:
    """Whether JSON `value` nests lists/objects more than `limit` levels (walked without
    recursion, so any depth can be measured)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        )
        if children and depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _events(body: bytes) -> list[dict[str, Any]] | None:
    """The delivery's events, or None when the body is not what Asana sends: not JSON, JSON
    nested deeper than anything Asana sends (json.loads itself recurses, so a deep enough
    body raises RecursionError), or without an `events` list of objects."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if _nested_deeper_than(payload, MAX_JSON_DEPTH):
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
        return _refuse(
            request, 400, "malformed or too deeply nested JSON", registration, f"{len(body)} B body"
        )

    now = timezone.now()
    registrations = WebhookRegistration.objects.filter(pk=registration.pk)
    if not events:
        registrations.update(last_contact_at=now)
        _audit_throttled(
            f"{registration.pk}:heartbeat",
            Action.WEBHOOK_HEARTBEAT,
            target=_target(registration),
            detail="",
            connection=registration.connection,
        )
        return _answer(200, "ok")
    if _all_stale(events):
        return _refuse(
            request, 200, "stale delivery ignored", registration, action=Action.WEBHOOK_STALE
        )

    digest = hashlib.sha256(body).hexdigest()
    try:
        # One transaction: the digest and the records commit together, and the job is sent
        # once they have; a job that cannot be sent takes its digest back (below), so
        # Asana's retry is not taken for a replay.
        with transaction.atomic():
            WebhookDelivery.objects.create(
                registration=registration, body_sha256=digest, event_count=len(events)
            )
            send_on_commit(
                handle_delivery,
                registration.pk,
                events,
                group="webhooks",
                task_name=f"webhook-{digest[:16]}",
            )
            registrations.update(last_contact_at=now, last_delivery_at=now)
            audit.record(
                Action.WEBHOOK_DELIVERY,
                target=_target(registration),
                detail=f"{len(events)} event(s) queued; body sha256 {digest[:16]}",
                actor_label=ACTOR,
                connection=registration.connection,
            )
    except IntegrityError:
        return _refuse(
            request,
            200,
            "replay ignored",
            registration,
            f"sha256 {digest[:16]}",
            Action.WEBHOOK_REPLAY,
        )
    except Exception as exc:
        # Whatever failed (database, broker), a 503 makes Asana retry the delivery later;
        # a digest committed before the broker failed would turn that retry into a replay.
        WebhookDelivery.objects.filter(registration=registration, body_sha256=digest).delete()
        log.error("%s: could not queue a delivery: %s", _target(registration), redact(exc))
        return _refuse(request, 503, "could not queue", registration, type(exc).__name__)
    return _answer(200, "ok")
