"""django-q2 entry points for goal syncs: the schedule and "Sync now".

One schedule wakes every few minutes and syncs each connection whose interval
(`AsanaConnection.goals_sync_interval`, a day by default) has passed since its last sync,
so changing a connection's interval needs no schedule change.
"""

import logging
from dataclasses import dataclass

from django.db import DEFAULT_DB_ALIAS, IntegrityError, transaction
from django.db.models import Max, Q
from django.utils import timezone

from goals.models import STALE_AFTER, GoalSync
from goals.sync import GoalsError, running_sync, sync_goals
from integrations.audit import Action, Actor, record
from integrations.models import AsanaConnection
from pilotsite.schedules import ensure_schedule, send_on_commit

log = logging.getLogger(__name__)

SCHEDULE_NAME = "pilotsite: sync goals of due connections"
# Its name before all of pilotsite's schedules were named alike; that row is renamed.
FORMER_SCHEDULE_NAMES = ("goals: sync due connections",)
CHECK_EVERY_MINUTES = 5


def due_connections() -> list[AsanaConnection]:
    now = timezone.now()
    # Only whole-connection syncs count: syncing one employee does not reset the clock.
    connections = AsanaConnection.objects.annotate(
        last_sync=Max(
            "goal_syncs__started_at",
            filter=Q(goal_syncs__employee_email="") & ~Q(goal_syncs__state=GoalSync.State.QUEUED),
        )
    )
    return [
        c
        for c in connections
        if c.last_sync is None or (now - c.last_sync).total_seconds() >= c.goals_sync_interval
    ]


def sync_all_due() -> str:
    """Scheduled job: sync every connection that is due; one failure does not stop the rest."""
    lines = []
    for connection in due_connections():
        lines.append(sync_connection(connection.pk, source="schedule"))
    return "; ".join(lines) or "no connection due"


def sync_connection(connection_id: int, source: str = "admin") -> str:
    """One connection's sync, as a job ("Sync now" queues this). A sync requested from the
    admin takes its "queued" row's place as it starts (or removes it when it cannot run), so
    the next "Sync now" may queue again."""
    queued: list[int] = []
    if source == "admin":
        queued = list(
            GoalSync.objects.filter(
                connection_id=connection_id, state=GoalSync.State.QUEUED
            ).values_list("pk", flat=True)
        )
    try:
        connection = AsanaConnection.objects.filter(pk=connection_id).first()
        if connection is None:
            return f"connection {connection_id} no longer exists"
        try:
            result = sync_goals(connection, source=source, replaces=queued)
        except GoalsError as exc:
            log.warning("goal sync for %s not run: %s", connection, exc)
            return f"{connection}: {exc}"
    finally:
        GoalSync.objects.filter(pk__in=queued).delete()
    if not result.ok:
        return f"{connection}: failed: {result.error}"
    sync = result.sync
    return f"{connection}: {sync.goals_kept} goals, {sync.key_results} key results"


@dataclass(frozen=True)
class SyncRequest:
    """What "Sync now" did: `outcome` is "queued", "already queued" or "running"; `sync` is
    the queued or running row."""

    outcome: str
    sync: GoalSync


def request_sync(connection: AsanaConnection, *, actor: Actor = None) -> SyncRequest:
    """Queue one sync of `connection` for the q cluster, unless one is queued or running;
    a queued one is recorded (`goals.sync_requested`) and its job sent once the "queued"
    row is committed, so the worker always finds it.

    The "queued" `GoalSync` row is the guard (a partial unique constraint): pressing "Sync
    now" twice, from two browsers at once, queues one job. A queued row older than
    STALE_AFTER (its job lost with a flushed broker) no longer blocks a new request.
    """
    running = running_sync(connection)
    if running is not None:
        return SyncRequest("running", running)
    GoalSync.objects.filter(
        connection=connection,
        state=GoalSync.State.QUEUED,
        started_at__lt=timezone.now() - STALE_AFTER,
    ).delete()
    try:
        with transaction.atomic():
            queued = GoalSync.objects.create(
                connection=connection, source="admin", state=GoalSync.State.QUEUED
            )
            record(
                Action.GOALS_SYNC_REQUESTED,
                target=str(connection),
                actor=actor,
                connection=connection,
            )
            send_on_commit(sync_connection, connection.pk, "admin", task_name="goal sync")
    except IntegrityError:
        existing = GoalSync.objects.filter(
            connection=connection, state=GoalSync.State.QUEUED
        ).first()
        if existing is None:  # taken by a worker in the meantime
            return request_sync(connection, actor=actor)
        return SyncRequest("already queued", existing)
    return SyncRequest("queued", queued)


def ensure_schedules(using: str = DEFAULT_DB_ALIAS, **_: object) -> None:
    """Create or update the schedule; safe to run any number of times (post_migrate runs it)."""
    ensure_schedule(
        SCHEDULE_NAME,
        sync_all_due,
        CHECK_EVERY_MINUTES,
        using,
        former_names=FORMER_SCHEDULE_NAMES,
    )
