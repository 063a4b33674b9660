"""Handing claims to a runner: the django-q2 queue's room, enqueueing a claim, and the
re-read-claim-hand-over of one task (`dispatch_task`)."""

from collections.abc import Callable

from django.conf import settings

from integrations.asana.client import AsanaClient, client_for
from integrations.models import AsanaConnection, ProcessedTask
from integrations.pipeline.claims import claim_eligible
from pilotsite.schedules import send_on_commit

State = ProcessedTask.State
Runner = ProcessedTask.Runner


def queue_budget() -> int:
    """How many more claims the django-q2 cluster's queue may take now: twice its workers
    less the claims already waiting, so none waits out its claim lease. Polling and webhook
    deliveries both stop there; what is left waits for the next poll."""
    waiting = ProcessedTask.objects.filter(state=State.CLAIMED, runner=Runner.QUEUE).count()
    return max(0, 2 * int(settings.Q_CLUSTER.get("workers", 1)) - waiting)


def enqueue(processed: ProcessedTask) -> None:
    """Hand a claim to the django-q2 cluster, once the claim is committed."""
    from integrations.pipeline.jobs import run_claimed_job  # the job module imports this one

    send_on_commit(
        run_claimed_job,
        processed.pk,
        processed.claimed_by,
        task_name=f"run ASANA-{processed.task_gid}",
    )


def dispatch_task(
    connection: AsanaConnection,
    task_gid: str,
    *,
    source: str,
    client: AsanaClient | None = None,
    runner: Callable[[ProcessedTask], None] | None = None,
) -> ProcessedTask | None:
    """Re-read the task, claim it if eligible and hand it to the runner (default: django-q2).

    Returns None when no executor is configured, the task is not eligible or already claimed;
    raises breaker.Paused when the connection's automation is paused (see `claim`).
    """
    own_client = client is None
    client = client or client_for(connection)
    try:
        claimed = claim_eligible(
            connection,
            task_gid,
            source=source,
            client=client,
            runner=Runner.QUEUE if runner is None else Runner.IN_PROCESS,
        )
    finally:
        if own_client:
            client.close()
    if claimed is None:
        return None
    (runner or enqueue)(claimed[0])
    return claimed[0]
