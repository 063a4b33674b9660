"""django-q2 entry points (thin): the poll schedule and the per-task job.

The cluster path and `runpollers` call the same pipeline functions and may run at the
same time: the poll slot keeps each connection to one poll per interval, and the claim
keeps every task to one execution. The schedule fires every minute (django-q2's finest
granularity, and its scheduler looks only every 30 s), so the cluster polls a connection
at the first run after its interval has passed; an interval shorter than that is kept
only by `runpollers`.
"""

import logging
from collections import deque
from typing import Any

from django.db import DEFAULT_DB_ALIAS

from integrations.models import AsanaConnection, ProcessedTask
from integrations.pipeline import approvals, dispatch, recovery, runs
from integrations.pipeline.cycle import poll_then_claim
from integrations.pipeline.executors import executor_configured
from integrations.webhooks.jobs import HEALTH_MINUTES, HEALTH_SCHEDULE, check_all_webhooks
from pilotsite.schedules import ensure_schedule

log = logging.getLogger(__name__)

POLL_SCHEDULE = "pilotsite: poll Asana for tagged tasks"


class _QueueRoom:
    """The cluster queue's room during one connection's turn: read once, when the first
    claim is due (after the poll), then counted down by each claim handed over."""

    def __init__(self) -> None:
        self.left: int | None = None

    def has_room(self) -> bool:
        if self.left is None:
            self.left = dispatch.queue_budget()
        return self.left > 0

    def hand_over(self, processed: ProcessedTask) -> None:
        dispatch.enqueue(processed)
        self.left = (self.left or 0) - 1


def poll_all() -> dict[str, Any]:
    """Scheduled: recover stale leases, then give every enabled connection its turn of the
    poll-then-claim loop (`cycle.poll_then_claim`), its claims handed to the cluster's queue
    while the queue has room (`dispatch.queue_budget`). Returns a summary per workspace."""
    summary: dict[str, Any] = {
        "recovered": recovery.recover_stale(runner=ProcessedTask.Runner.QUEUE)
    }
    if not executor_configured():
        summary["skipped"] = "no executor configured"
        return summary
    for connection in AsanaConnection.objects.filter(polling_enabled=True):
        if not executor_configured(connection):
            summary[connection.workspace_gid] = "its executor cannot run"
            continue
        room = _QueueRoom()
        turn = poll_then_claim(
            connection,
            runner=ProcessedTask.Runner.QUEUE,
            pending=deque(),
            names={},
            has_room=room.has_room,
            hand_over=room.hand_over,
        )
        if turn.polled is None:
            paused = connection.paused_at is not None
            summary[connection.workspace_gid] = "paused" if paused else "not due"
            continue
        log.info(
            "poll %s: %s; %d claimed for the cluster (%d requests)",
            connection.workspace_gid,
            turn.polled.message,
            turn.claimed,
            turn.polled.requests,
        )
        summary[connection.workspace_gid] = f"{turn.polled.message}; {turn.claimed} claimed"
    return summary


def decided_job(pk: int) -> str:
    """Queued by Approve or Reject in the admin (`approvals.after_decision`)."""
    return approvals.after_decision(pk)


def run_claimed_job(pk: int, claim_token: str | None = None) -> str:
    processed = runs.run_claimed(pk, claim_token)
    return f"ASANA-{processed.task_gid} {processed.state}" if processed else "not ours any more"


def ensure_schedules(using: str = DEFAULT_DB_ALIAS, **_: object) -> None:
    """Create or update the poll and webhook-health schedules; running it again never adds a
    duplicate (post_migrate runs it)."""
    ensure_schedule(POLL_SCHEDULE, poll_all, 1, using)
    ensure_schedule(HEALTH_SCHEDULE, check_all_webhooks, HEALTH_MINUTES, using)
