"""django-q2 entry points (thin): the poll schedule and the per-task job.

The cluster path and `runpollers` call the same pipeline functions and may run at the
same time: the poll slot keeps each connection to one poll per interval, and the claim
keeps every task to one execution. The schedule fires every minute (django-q2's finest
granularity, and its scheduler looks only every 30 s), so the cluster polls a connection
at the first run after its interval has passed; an interval shorter than that is kept
only by `runpollers`.
"""

import logging
from typing import Any

from django.db import DEFAULT_DB_ALIAS

from integrations.models import AsanaConnection
from integrations.pipeline import runs
from integrations.pipeline.executors import executor_configured
from integrations.pipeline.poll import poll_if_due
from integrations.webhooks.jobs import HEALTH_MINUTES, HEALTH_SCHEDULE, check_all_webhooks
from pilotsite.schedules import ensure_schedule

log = logging.getLogger(__name__)

POLL_SCHEDULE = "pilotsite: poll Asana for tagged tasks"


def poll_all() -> dict[str, Any]:
    """Scheduled: recover stale leases, poll every enabled connection that is due, enqueue
    its claims."""
    summary: dict[str, Any] = {"recovered": runs.recover_stale(runner=runs.Runner.QUEUE)}
    if not executor_configured():
        summary["skipped"] = "no executor configured"
        return summary
    for connection in AsanaConnection.objects.filter(polling_enabled=True):
        if not executor_configured(connection):
            summary[connection.workspace_gid] = "its executor cannot run"
            continue
        result = poll_if_due(connection)
        if result is None:
            summary[connection.workspace_gid] = "not due"
            continue
        claimed = 0
        for gid in result.candidates[: runs.queue_budget()]:
            processed = runs.claim(
                connection,
                gid,
                source="poll",
                task_name=result.names.get(gid, ""),
                runner=runs.Runner.QUEUE,
            )
            if processed is not None:
                runs.enqueue(processed)
                claimed += 1
        log.info(
            "poll %s: %s; %d claimed for the cluster (%d requests)",
            connection.workspace_gid,
            result.message,
            claimed,
            result.requests,
        )
        summary[connection.workspace_gid] = f"{result.message}; {claimed} claimed"
    return summary


def run_claimed_job(pk: int, claim_token: str | None = None) -> str:
    processed = runs.run_claimed(pk, claim_token)
    return f"ASANA-{processed.task_gid} {processed.state}" if processed else "not ours any more"


def ensure_schedules(using: str = DEFAULT_DB_ALIAS, **_: object) -> None:
    """Create or update the poll and webhook-health schedules; running it again never adds a
    duplicate (post_migrate runs it)."""
    ensure_schedule(POLL_SCHEDULE, poll_all, 1, using)
    ensure_schedule(HEALTH_SCHEDULE, check_all_webhooks, HEALTH_MINUTES, using)
