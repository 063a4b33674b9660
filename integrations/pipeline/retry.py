"""The admin's Retry (a failed task) and Release (a skipped task): the task is taken again."""

from functools import partial

from django.db import transaction

from integrations import audit
from integrations.asana.client import client_for
from integrations.asana.errors import AsanaError
from integrations.audit import Action
from integrations.models import AuditLog, ProcessedTask
from integrations.pipeline.tags import resolve_tags

State = ProcessedTask.State


def retry_failed(processed: ProcessedTask, *, actor: audit.Actor) -> None:
    """Make a failed task run again: its `pilot-failed` tag is removed in Asana. A failed
    row is already un-marked (it does not block a claim), so the next poll takes it. A row
    that failed in shadow mode had no tag added: it becomes an ordinary failed row, and the
    next poll runs it in the connection's mode of that moment."""
    if processed.state != State.FAILED:
        raise ValueError(f"ASANA-{processed.task_gid} is {processed.state}, not failed")
    connection = processed.connection
    record = partial(
        audit.record, target=f"task {processed.task_gid}", actor=actor, connection=connection
    )
    if processed.shadow:
        with transaction.atomic():
            ProcessedTask.objects.filter(pk=processed.pk, state=State.FAILED).update(shadow=False)
            record(Action.PIPELINE_RETRY, detail="retry requested (it had run in shadow mode)")
        return
    try:
        with client_for(connection) as client:
            # Any tag named pilot-failed keeps the task ineligible, duplicates included.
            for tag_gid in resolve_tags(connection, client).by_name["pilot-failed"]:
                client.remove_tag(processed.task_gid, tag_gid)
    except AsanaError as exc:
        record(
            Action.ASANA_REMOVE_TAG,
            outcome=AuditLog.Outcome.ERROR,
            detail=f"pilot-failed (retry) — {exc}",
        )
        raise
    record(Action.ASANA_REMOVE_TAG, detail="pilot-failed (retry)")
    record(Action.PIPELINE_RETRY, detail="retry requested")


def release_skipped(processed: ProcessedTask, *, actor: audit.Actor) -> bool:
    """Forget a skipped task so the next poll may take it (it still needs the pilot tag)."""
    deleted = ProcessedTask.objects.filter(pk=processed.pk, state=State.SKIPPED).delete()[0] > 0
    if deleted:
        audit.record(
            Action.PIPELINE_RELEASE,
            target=f"task {processed.task_gid}",
            detail=processed.skip_reason,
            actor=actor,
            connection=processed.connection,
        )
    return deleted
