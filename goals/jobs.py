"""django-q2 entry points for goal syncs: the schedule and "Sync now".

One schedule wakes every few minutes and syncs each connection whose interval
(`AsanaConnection.goals_sync_interval`, a day by default) has passed since its last sync,
so changing a connection's interval needs no schedule change.
"""

import logging

from django.db import DEFAULT_DB_ALIAS
from django.db.models import Max, Q
from django.utils import timezone

from goals.sync import GoalsError, sync_goals
from integrations.models import AsanaConnection
from pilotsite.schedules import ensure_schedule

log = logging.getLogger(__name__)

SCHEDULE_NAME = "pilotsite: sync goals of due connections"
# Its name before all of pilotsite's schedules were named alike; that row is renamed.
FORMER_SCHEDULE_NAMES = ("goals: sync due connections",)
CHECK_EVERY_MINUTES = 5


def due_connections() -> list[AsanaConnection]:
    now = timezone.now()
    # Only whole-connection syncs count: syncing one employee does not reset the clock.
    connections = AsanaConnection.objects.annotate(
        last_sync=Max("goal_syncs__started_at", filter=Q(goal_syncs__employee_email=""))
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
    """One connection's sync, as a job ("Sync now" queues this)."""
    connection = AsanaConnection.objects.filter(pk=connection_id).first()
    if connection is None:
        return f"connection {connection_id} no longer exists"
    try:
        result = sync_goals(connection, source=source)
    except GoalsError as exc:
        log.warning("goal sync for %s not run: %s", connection, exc)
        return f"{connection}: {exc}"
    if not result.ok:
        return f"{connection}: failed: {result.error}"
    sync = result.sync
    return f"{connection}: {sync.goals_kept} goals, {sync.key_results} key results"


def ensure_schedules(using: str = DEFAULT_DB_ALIAS, **_: object) -> None:
    """Create or update the schedule; safe to run any number of times (post_migrate runs it)."""
    ensure_schedule(
        SCHEDULE_NAME,
        "goals.jobs.sync_all_due",
        CHECK_EVERY_MINUTES,
        using,
        former_names=FORMER_SCHEDULE_NAMES,
    )
