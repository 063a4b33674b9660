"""Pull every mapped employee's Asana goals and key results into the database.

Everything is read from Asana first (goals.fetch); only then is each employee's list replaced,
in a transaction of its own (goals.store). So an Asana failure part-way changes nothing stored,
and a database failure never leaves one employee with half a list. One sync per connection runs at a time: the
`GoalSync` row in state "running" is the lock (a partial unique constraint), and a running
row whose heartbeat stopped is treated as a dead worker.
"""

import logging
from collections.abc import Collection
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any, TypedDict

from django.db import IntegrityError, transaction
from django.utils import timezone

from goals import fetch, store
from goals.models import STALE_AFTER, GoalSync
from integrations.asana.client import AsanaClient, client_for
from integrations.asana.errors import (
    AsanaError,
    AsanaForbidden,
    AsanaNotFound,
    AsanaPaymentRequired,
)
from integrations.models import AsanaConnection, AsanaMapping
from pilotsite.redact import redact
from pilotsite.untrusted import ascii_lower

log = logging.getLogger(__name__)


class GoalsError(Exception):
    """A goal sync that could not start; the message is for a person."""


class GoalsConfigError(GoalsError):
    pass


class GoalSyncBusy(GoalsError):
    pass


@dataclass
class SyncResult:
    sync: GoalSync
    employees: list[store.EmployeeResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.sync.state == GoalSync.State.SUCCEEDED

    @property
    def error(self) -> str:
        return self.sync.error


def describe_error(exc: AsanaError, workspace_gid: str) -> str:
    """What went wrong, said for the person reading the card or the command output."""
    if isinstance(exc, AsanaPaymentRequired):
        return (
            "Goals are not available on this workspace's Asana plan (402): Asana Goals need a "
            "paid plan (Starter or above)."
        )
    if isinstance(exc, AsanaNotFound | AsanaForbidden):
        return f"Workspace {workspace_gid} is not reachable with this token: {exc}"
    return str(exc)


def _claim(
    connection: AsanaConnection,
    source: str,
    employee_email: str,
    employees_total: int,
    replaces: Collection[int] = (),
) -> GoalSync:
    now = timezone.now()
    GoalSync.objects.filter(
        connection=connection, state=GoalSync.State.RUNNING, heartbeat_at__lt=now - STALE_AFTER
    ).update(
        state=GoalSync.State.FAILED,
        finished_at=now,
        error="abandoned: the worker running this sync stopped without finishing",
    )
    try:
        with transaction.atomic():
            sync = GoalSync.objects.create(
                connection=connection,
                source=source,
                employee_email=employee_email,
                employees_total=employees_total,
                phase="reading the goal list",
            )
            # The running row takes the queued one's place in one step: the goals tab never
            # sees neither, which would stop its refreshing before the sync has even begun.
            GoalSync.objects.filter(pk__in=replaces, state=GoalSync.State.QUEUED).delete()
            return sync
    except IntegrityError:
        running = GoalSync.objects.filter(
            connection=connection, state=GoalSync.State.RUNNING
        ).first()
        detail = (
            f" (started {running.started_at:%Y-%m-%d %H:%M}, "
            f"{running.employees_done} of {running.employees_total} employees done)"
            if running
            else ""
        )
        raise GoalSyncBusy(
            f"A goal sync for {connection} is already running{detail}; not starting another."
        ) from None


def _progress(sync: GoalSync, **fields: Any) -> None:
    for name, value in fields.items():
        setattr(sync, name, value)
    GoalSync.objects.filter(pk=sync.pk).update(heartbeat_at=timezone.now(), **fields)


def _finish(sync: GoalSync, state: str, error: str = "", **counts: Any) -> None:
    _progress(
        sync, state=state, error=redact(error), finished_at=timezone.now(), phase="", **counts
    )


def _fail_config(connection: AsanaConnection, source: str, email: str, message: str) -> None:
    GoalSync.objects.create(
        connection=connection,
        source=source,
        employee_email=email,
        state=GoalSync.State.FAILED,
        finished_at=timezone.now(),
        error=message,
    )
    raise GoalsConfigError(message)


def sync_goals(
    connection: AsanaConnection,
    *,
    employee_email: str | None = None,
    client: AsanaClient | None = None,
    source: str = "command",
    replaces: Collection[int] = (),
) -> SyncResult:
    """Sync one connection (or one employee of it). `replaces`: primary keys of the queued
    rows ("Sync now") this sync takes the place of, removed as it starts running.

    Raises GoalsConfigError when there is nothing valid to sync and GoalSyncBusy when a sync
    for the connection is already running; Asana failures are recorded on the returned
    result (`ok` False, `error` set) and leave stored goals as they were.
    """
    email = ascii_lower((employee_email or "").strip())
    if not connection.workspace_gid:
        _fail_config(
            connection,
            source,
            email,
            "No Asana workspace GID is set for this connection: set it on the Asana card, "
            "then sync goals again.",
        )
    all_mappings = list(
        AsanaMapping.objects.filter(connection=connection).select_related("employee")
    )
    scope = [m for m in all_mappings if not email or ascii_lower(m.employee.email) == email]
    if email and not scope:
        _fail_config(
            connection,
            source,
            email,
            f"No employee with email {email} is mapped to an Asana user in {connection}.",
        )
    sync = _claim(connection, source, email, len(scope), replaces)
    result = SyncResult(sync=sync)
    own_client = client is None
    requests_before = 0
    try:
        client = client or client_for(connection)
        requests_before = client.request_count
        plan = _read(client, connection, sync, scope, all_mappings)
        _progress(sync, phase="saving")
        result.employees = store.write_plan(connection, plan, prune=not email)
        _finish(
            sync,
            GoalSync.State.SUCCEEDED,
            requests=client.request_count - requests_before,
            **_totals(result),
        )
    except AsanaError as exc:
        message = describe_error(exc, connection.workspace_gid)
        log.warning("goal sync for %s failed: %s", connection, message)
        made = client.request_count - requests_before if client else 0
        _finish(sync, GoalSync.State.FAILED, message, requests=made)
    except BaseException as exc:
        _finish(sync, GoalSync.State.FAILED, f"internal error: {type(exc).__name__}: {exc}")
        raise
    finally:
        if own_client and client is not None:
            client.close()
    return result


def _read(
    client: AsanaClient,
    connection: AsanaConnection,
    sync: GoalSync,
    scope: list[AsanaMapping],
    all_mappings: list[AsanaMapping],
) -> store.Plan:
    workspace = fetch.fetch_workspace_goals(
        client, connection.workspace_gid, {m.asana_user_gid for m in all_mappings}
    )
    _progress(
        sync,
        phase="reading key results",
        skipped_unowned=workspace.unowned,
        skipped_unmapped=workspace.unmapped,
    )
    employees = []
    for mapping in scope:
        owned = workspace.by_owner.get(mapping.asana_user_gid, [])
        employees.append(store.EmployeePlan(mapping, len(owned), fetch.kept_goals(owned)))
    # closing() stops queued lookups at once when one fails.
    with closing(fetch.iter_subgoal_refs(client, [e.goals for e in employees])) as lookups:
        for done, (employee, refs) in enumerate(zip(employees, lookups, strict=True), 1):
            employee.key_results = {
                gid: fetch.subgoal_details(client, goal_refs, workspace.index)
                for gid, goal_refs in refs.items()
            }
            _progress(sync, employees_done=done)
    return store.Plan(
        employees,
        workspace.unowned,
        workspace.unmapped,
        {m.employee_id for m in all_mappings},
    )


class Totals(TypedDict):
    """The counters a finished sync stores on its GoalSync row."""

    goals_kept: int
    key_results: int
    goals_removed: int
    employees_truncated: int
    employees_done: int


def _totals(result: SyncResult) -> Totals:
    return {
        "goals_kept": sum(e.kept for e in result.employees),
        "key_results": sum(e.key_results for e in result.employees),
        "goals_removed": sum(e.removed for e in result.employees),
        "employees_truncated": sum(e.truncated for e in result.employees),
        "employees_done": len(result.employees),
    }


def running_sync(connection: AsanaConnection) -> GoalSync | None:
    return (
        GoalSync.objects.filter(connection=connection, state=GoalSync.State.RUNNING)
        .exclude(heartbeat_at__lt=timezone.now() - STALE_AFTER)
        .first()
    )
