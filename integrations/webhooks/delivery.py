"""Acting on a webhook delivery's events (queued by the endpoint in `views`, run by
`jobs.handle_delivery`), and forgetting old replay digests.

Events are compact and may arrive out of order, several per delivery, at the same moment
the poller finds the same task. So a delivery never decides anything by itself: every task
it mentions is handed to `claims.claim_eligible`, which re-reads the task from Asana and
claims it only if it is eligible now (pilot tag, not completed, no status tag) and not
already claimed. That is also how "the pilot tag was just added" is recognised: a `changed`
event does not say which tag changed, but a task that is eligible and unclaimed after the
re-read is one whose pilot tag is new to us — and a failed task whose `pilot-failed` tag was
removed becomes eligible again the same way. The processed-task claim keeps each task to
one execution whichever path (poll, webhook, replayed webhook) reaches it first.

A tag change can arrive in more than one shape (a `changed` task with field `tags`, a task
`added`/`removed` with a tag as parent, a tag with a task as parent); `task_gids` keeps the
tasks of all of them and discards every other event without any Asana read.

A story `added` to a task (a comment, say) matters only when that task waits for input
(`needs_input`): `story_task_gids` keeps those tasks, and each of them that the ledger holds
as waiting has its stories read (one request) for a reply or a stop; any other story event
costs nothing.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from integrations import audit
from integrations.asana.client import client_for
from integrations.asana.errors import AsanaError
from integrations.audit import Action
from integrations.models import (
    AsanaConnection,
    AuditLog,
    ProcessedTask,
    WebhookDelivery,
    WebhookRegistration,
)
from integrations.pipeline import breaker, claims, dispatch, needs_input
from integrations.pipeline.stop import check_running
from integrations.webhooks.registration import ACTOR, describe

log = logging.getLogger(__name__)

# Replay digests are kept this long; deliveries whose events are all older are dropped as
# stale (Asana retries a delivery for at most 24 hours, so a week leaves a wide margin).
DELIVERY_RETENTION = timedelta(days=7)
# One delivery reads at most this many tasks (and claims at most the queue's budget); the
# rest waits for the next poll, so a delivery of thousands of events stays cheap.
TASKS_PER_DELIVERY = 20
# An audit row names at most this many tasks per list.
GIDS_SHOWN = 10
# Only these fields can turn a task eligible; other changes are not worth a re-read.
RELEVANT_FIELDS = frozenset({"tags", "completed"})
TASK_ACTIONS = frozenset({"added", "changed"})
TAG_ACTIONS = frozenset({"added", "removed"})


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


def story_task_gids(events: list[dict[str, Any]]) -> list[str]:
    """The tasks a story was added to (resource type story, action added, parent a task),
    in first-seen order."""
    gids: dict[str, None] = {}
    for event in events:
        if not isinstance(event, dict):
            continue
        resource = event.get("resource") or {}
        parent = event.get("parent") or {}
        kind = resource.get("resource_type") or event.get("type")
        added = kind == "story" and event.get("action") == "added"
        if added and parent.get("resource_type") == "task" and (gid := _gid(parent)):
            gids[gid] = None
    return list(gids)


def _gid(obj: dict) -> str | None:
    gid = str(obj.get("gid") or "")
    return gid if gid.isdigit() else None


@dataclass
class DeliveryOutcome:
    """What handling one delivery did: how many `events` it had and how many were `ignored`
    (not about a task, or a change that cannot make one eligible), and task GIDs by fate:
    `dispatched` (claimed and queued), `stopped` (runs stopped because the task was
    untagged, completed or tagged to stop, waiting tasks too), `resumed` (a reply to a waiting
    task's question claimed it back), `not_eligible`, `already_claimed` (the ledger blocks
    them), `errors` ("<gid>: <reason>"; polling retries them) and `deferred` (over the
    per-delivery bounds, or the automation is `paused` for that reason; the next poll
    takes them). `skipped` says why nothing was done."""

    events: int = 0
    ignored: int = 0
    already_claimed: list[str] = field(default_factory=list)
    dispatched: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    not_eligible: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)
    skipped: str = ""
    paused: str = ""

    def text(self) -> str:
        """One line for the audit row: counts, then up to GIDS_SHOWN GIDs per fate."""
        parts = [f"{self.events} event(s)", f"{self.ignored} ignored"]
        for key in (
            "dispatched",
            "stopped",
            "resumed",
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
        if self.paused:
            parts.append(f"automation paused ({self.paused}): deferred tasks wait until it resumes")
        elif self.deferred:
            parts.append("deferred tasks wait for the next poll")
        return "; ".join(parts)


def handle_events(
    registration_id: int,
    events: list[dict[str, Any]],
    *,
    run_here: Callable[[ProcessedTask, dict[str, Any]], object] | None = None,
) -> DeliveryOutcome:
    """Dispatch the tasks a delivery's events mention, within bounds.

    Events are coalesced per task. One delivery reads at most `TASKS_PER_DELIVERY` tasks and
    claims at most `dispatch.queue_budget()` (the bound polling keeps too), so a delivery of
    thousands of events cannot start thousands of reads, claims or jobs; the tasks it leaves
    are counted as deferred and the next poll takes them.

    Claims go to the django-q2 queue; with `run_here`, the last one is kept instead and handed
    to `run_here(claim, task as read)` once the delivery is recorded, so the job that read and
    claimed it runs it without a second trip through the queue or a second read.
    """
    registration = (
        WebhookRegistration.objects.select_related("connection").filter(pk=registration_id).first()
    )
    if registration is None:
        return DeliveryOutcome(skipped="registration deleted")
    connection = registration.connection
    gids, ignored = task_gids(events)
    stories = story_task_gids(events)
    stops = _stops(connection, gids, events)
    # Approved in Asana (the tag change's stories say by whom): no longer blocked below.
    _approvals(connection, gids)
    blocked = claims.blocked_gids(connection, gids)
    summary = DeliveryOutcome(
        events=len(events), ignored=ignored, already_claimed=sorted(blocked), stopped=stops
    )
    _waiting_for_input(connection, [*gids, *(g for g in stories if g not in gids)], summary)
    candidates = [gid for gid in gids if gid not in blocked]
    claims_left = dispatch.queue_budget()
    reads_left = TASKS_PER_DELIVERY
    kept: tuple[ProcessedTask, dict[str, Any]] | None = None
    with client_for(connection) as client:
        for index, gid in enumerate(candidates):
            if claims_left <= 0 or reads_left <= 0:
                summary.deferred = candidates[index:]
                break
            reads_left -= 1
            try:
                claimed = claims.claim_eligible(
                    connection, gid, source="webhook", client=client, runner=claims.Runner.QUEUE
                )
            except breaker.Paused as exc:
                summary.paused, summary.deferred = exc.reason, candidates[index:]
                break
            except AsanaError as exc:
                # Polling picks the task up later; one bad task must not stop the others.
                summary.errors.append(f"{gid}: {exc}")
                continue
            if claimed is None:
                summary.not_eligible.append(gid)
                continue
            claims_left -= 1
            summary.dispatched.append(gid)
            if run_here is None:
                dispatch.enqueue(claimed[0])
                continue
            if kept is not None:
                dispatch.enqueue(kept[0])
            kept = claimed
    outcome = AuditLog.Outcome.WARNING if summary.errors else AuditLog.Outcome.OK
    audit.record(
        Action.WEBHOOK_HANDLED,
        target=describe(registration),
        outcome=outcome,
        detail=summary.text(),
        actor_label=ACTOR,
        connection=connection,
    )
    if run_here is not None and kept is not None:
        run_here(*kept)
    return summary


def _waiting_for_input(
    connection: AsanaConnection, gids: list[str], summary: DeliveryOutcome
) -> None:
    """Tasks among the events' that wait for input: their stories are read (one request
    each) for a stop or a reply; a reply claims the task back for the cluster's queue."""
    waiting = ProcessedTask.objects.filter(
        connection=connection, state=ProcessedTask.State.WAITING, task_gid__in=gids
    )
    if not waiting.exists():
        return
    try:
        with client_for(connection) as client:
            look = needs_input.look_at_waiting(connection, client, gids=gids)
    except AsanaError as exc:
        log.warning("webhook: could not look at tasks waiting for input: %s", exc)
        summary.errors.append(f"waiting tasks: {exc}")
        return
    summary.stopped.extend(look.stopped)
    for pt, reply in look.replies:
        try:
            resumed = needs_input.resume(pt, reply, runner=ProcessedTask.Runner.QUEUE)
        except breaker.Paused as exc:
            summary.paused = exc.reason
            break
        if resumed is not None:
            dispatch.enqueue(resumed)
            summary.resumed.append(pt.task_gid)


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


def _approvals(connection: AsanaConnection, gids: list[str]) -> None:
    """The events' tasks that wait for approval are looked at in Asana (their stories say who
    added `pilot-approved`): `approvals.check_waiting`, as every poll does for all of them."""
    from integrations.pipeline.approvals import check_waiting

    waiting = ProcessedTask.objects.filter(
        connection=connection,
        task_gid__in=gids,
        state__in=(ProcessedTask.State.AWAITING_APPROVAL, ProcessedTask.State.REJECTED),
    )
    if not waiting.exists():
        return
    try:
        with client_for(connection) as client:
            check_waiting(connection, client, gids=gids)
    except AsanaError as exc:
        log.warning("webhook: could not look at waiting tasks: %s", exc)


def prune_deliveries(now: datetime | None = None) -> int:
    """Forget replay digests older than DELIVERY_RETENTION; returns how many were deleted."""
    cutoff = (now or timezone.now()) - DELIVERY_RETENTION
    deleted, _ = WebhookDelivery.objects.filter(received_at__lt=cutoff).delete()
    return deleted
