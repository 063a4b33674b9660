"""Claiming a task: the processed-task ledger's row is the claim.

A claim is a row in the processed-task ledger (unique per connection and task): a new row
is inserted in a savepoint and losing the race raises IntegrityError; a failed row is
taken back with a conditional UPDATE that only one claimant can win. Each claim carries
a token (`claimed_by`) and a lease: the claim lease while it waits to start, the run lease
once it runs (renewed by `lease.LeaseKeeper`; one that runs out is `recovery`'s).
"""

import logging
import os
import socket
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from integrations.asana.client import AsanaClient
from integrations.asana.errors import AsanaForbidden, AsanaNotFound
from integrations.models import AsanaConnection, ProcessedTask
from integrations.pipeline import breaker
from integrations.pipeline.convert import DETAIL_FIELDS
from integrations.pipeline.executors import executor_configured
from integrations.pipeline.tags import eligibility

log = logging.getLogger(__name__)
State = ProcessedTask.State
Runner = ProcessedTask.Runner


# GIDs per `IN (...)` query against the ledger: well under SQLite's bound-parameter limit.
LEDGER_CHUNK = 500


def blocked_gids(connection: AsanaConnection, gids: list[str]) -> set[str]:
    """Those of `gids` the ledger holds in a blocking state (claimed, running, done,
    skipped, awaiting approval), or that ran in shadow mode: never worth an Asana read.
    One query per LEDGER_CHUNK GIDs."""
    blocked: set[str] = set()
    for start in range(0, len(gids), LEDGER_CHUNK):
        blocked.update(
            ProcessedTask.objects.filter(
                Q(state__in=ProcessedTask.BLOCKING_STATES) | Q(shadow=True),
                connection=connection,
                task_gid__in=gids[start : start + LEDGER_CHUNK],
            ).values_list("task_gid", flat=True)
        )
    return blocked


def claim_lease() -> timedelta:
    """How long a claim may wait (in a queue, say) before its execution starts."""
    return timedelta(seconds=settings.PILOT_CLAIM_LEASE_SECONDS)


def run_lease() -> timedelta:
    """How long a running task stays ours without a renewal (renewed every quarter)."""
    return timedelta(seconds=settings.PILOT_RUN_LEASE_SECONDS)


def new_token(runner: Runner) -> str:
    """A claim token naming the runner kind, host and process, for people reading logs; the
    runner kind itself is kept in `ProcessedTask.runner`, never parsed back from this."""
    host = socket.gethostname()[:40]
    return f"{runner}@{host}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def claim(
    connection: AsanaConnection,
    task_gid: str,
    *,
    source: str,
    task_name: str = "",
    runner: Runner = Runner.IN_PROCESS,
) -> ProcessedTask | None:
    """Take the task for `runner`, or None when another claimant has it or it is done.

    A new attempt starts in the connection's rollout mode (`shadow` when it is shadow) with
    no approval; an approved row is the same attempt going on, its approval kept. A row that
    ran in shadow mode is never taken (the admin's Retry makes it an ordinary failed row).

    Raises breaker.Paused, claiming nothing, when the connection's automation is paused
    or a safety rail trips now (`breaker.check_claim`: every way of claiming comes here).
    """
    breaker.check_claim(connection)
    now = timezone.now()
    fields: dict[str, object] = {
        "state": State.CLAIMED,
        "runner": runner,
        "claimed_by": new_token(runner),
        "claimed_at": now,
        "lease_expires_at": now + claim_lease(),
        "source": source,
        # A fresh claim starts a new conversation (a reply's claim is `needs_input.resume`).
        "conversation": [],
        "waiting_since": None,
        "reminded_at": None,
    }
    attempt = {
        "shadow": connection.rollout_mode == AsanaConnection.RolloutMode.SHADOW,
        "decision": "",
        "decided_by": "",
        "decided_at": None,
        "decision_note": "",
    }
    try:
        with transaction.atomic():
            return ProcessedTask.objects.create(
                connection=connection,
                task_gid=task_gid,
                task_name=task_name[:500],
                attempts=1,
                **fields,
                **attempt,
            )
    except IntegrityError:
        pass
    row = ProcessedTask.objects.filter(connection=connection, task_gid=task_gid).first()
    if row is None or row.state not in ProcessedTask.RECLAIMABLE_STATES or row.shadow:
        return None
    taken = ProcessedTask.objects.filter(pk=row.pk, state=row.state, shadow=False)
    if row.state == State.APPROVED:
        won = taken.update(**fields)
    else:
        won = taken.update(attempts=F("attempts") + 1, **fields, **attempt)
    if won != 1:
        return None
    row.refresh_from_db()
    return row


def release(processed: ProcessedTask, token: str, reason: str = "") -> bool:
    """Undo a claim on which nothing was done in Asana yet: the task is eligible again (a
    reply's claim: the task waits for input again, `needs_input.give_back`)."""
    if processed.source == "reply":
        from integrations.pipeline.needs_input import give_back

        released = give_back(processed, token)
        if released:
            log.info("ASANA-%s waits again%s", processed.task_gid, f" ({reason})" if reason else "")
        return released
    mine = ProcessedTask.objects.filter(
        pk=processed.pk, claimed_by=token, state__in=(State.CLAIMED, State.RUNNING)
    )
    if processed.decision == ProcessedTask.Decision.APPROVED:
        # Approved and not started: it stays approved, for the next poll to take.
        released = mine.update(state=State.APPROVED, lease_expires_at=None) == 1
    elif processed.attempts <= 1:
        released = mine.delete()[0] > 0
    else:
        # It had failed before this claim: back to failed, as it was.
        released = (
            mine.update(state=State.FAILED, lease_expires_at=None, finished_at=timezone.now()) == 1
        )
    if released:
        log.info("ASANA-%s released%s", processed.task_gid, f" ({reason})" if reason else "")
    return released


def claim_eligible(
    connection: AsanaConnection,
    task_gid: str,
    *,
    source: str,
    client: AsanaClient,
    runner: Runner,
) -> tuple[ProcessedTask, dict] | None:
    """Re-read the task and claim it for `runner` if it is eligible now; returns the claim
    and the task as read (with `convert.DETAIL_FIELDS`), or None when no executor is
    configured, the task is gone, not eligible or already claimed. Raises AsanaError (other
    than not found / forbidden) when the task cannot be read, and breaker.Paused when the
    connection's automation is paused (see `claim`)."""
    if not executor_configured(connection):
        return None
    approved = ProcessedTask.objects.filter(
        connection=connection, task_gid=task_gid, state=State.APPROVED
    ).exists()
    try:
        task = client.task(task_gid, DETAIL_FIELDS)
        _, reason = eligibility(connection, client, task, resuming=approved)
    except (AsanaNotFound, AsanaForbidden):
        return None
    if reason:
        return None
    processed = claim(
        connection, task_gid, source=source, task_name=str(task.get("name") or ""), runner=runner
    )
    return None if processed is None else (processed, task)
