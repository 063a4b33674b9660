"""One poll of one connection: which tagged tasks are new, oldest first.

Steady-state cost: the tag GIDs are cached on the connection (`integrations.pipeline.tags`) and the
list call asks for every field the filter needs, so a cycle with nothing new costs one
request per page of tagged tasks (per tag named like the pilot tag) with the tag list, and
one request with search (`integrations.pipeline.watch` decides which list a poll reads, and
how often a connection is polled). Claiming is the pipeline's job, not this module's.

`runpollers` and the django-q2 schedule both poll; `poll_if_due` makes each poll take the
connection's slot first (a conditional UPDATE of `last_poll_at`), so however many
processes run, a connection is polled at most once per `poll_interval`.
"""

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone

from integrations import audit
from integrations.asana.client import AsanaClient, client_for
from integrations.asana.errors import (
    AsanaAuthError,
    AsanaError,
    AsanaForbidden,
    AsanaNotFound,
    AsanaPaymentRequired,
)
from integrations.asana.times import parse_time
from integrations.audit import Action
from integrations.models import AsanaConnection, ProcessedTask
from integrations.pipeline import watch
from integrations.pipeline.claims import LEDGER_CHUNK, blocked_gids
from integrations.pipeline.convert import STATUS_TAGS
from integrations.pipeline.needs_input import WaitingLook, look_at_waiting
from integrations.pipeline.tags import (
    PilotTagMissing,
    WorkspaceTags,
    carries_unknown_tag,
    forget_tags,
    ineligible_reason,
    resolve_tags,
)

log = logging.getLogger(__name__)

# Checked against the contract's opt_fields enums for GET /tags/{tag_gid}/tasks and GET
# /workspaces/{workspace_gid}/tasks/search.
LIST_FIELDS = ("name", "completed", "created_at", "workspace", "tags.name")
BACKLOG_REASON = "backlog: already tagged when the connection was enabled"
# Errors that say the token (not the moment) is wrong: they belong on the health line.
HEALTH_ERRORS = (AsanaAuthError, AsanaForbidden, AsanaPaymentRequired)
# Search pages (of 100 open tagged tasks) read in one poll; the rest wait for the next poll.
SEARCH_PAGES = 10


@dataclass
class PollResult:
    ok: bool
    message: str
    candidates: list[str] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)
    tagged: int = 0
    skipped_backlog: int = 0
    requests: int = 0
    # Which list the poll read: "search" or "tag_list" (a full pass).
    method: str = ""
    # Running tasks whose stop this poll requested (a stop signal seen in Asana).
    stops: list[str] = field(default_factory=list)
    # Waiting tasks this poll saw approved in Asana (`approvals.check_waiting`).
    approved: list[str] = field(default_factory=list)
    # What the look at the tasks waiting for input found: replies to claim (`cycle`),
    # tasks stopped, reminded, released.
    waiting: WaitingLook = field(default_factory=WaitingLook)


def poll_connection(
    connection: AsanaConnection, *, client: AsanaClient | None = None
) -> PollResult:
    """Find the tags, list the tasks tagged with the pilot tag, drop the ineligible and those
    already in the ledger; returns the candidate GIDs oldest first and records the outcome
    (`last_poll_at`/`last_poll_result`, health on a token error) on the connection."""
    started = timezone.now()
    own_client = client is None
    client = client or client_for(connection)
    before = client.request_count
    health_error: str | None = None
    try:
        result = _poll(connection, client)
        health_error = ""
    except PilotTagMissing as exc:
        result = PollResult(ok=False, message=str(exc))
        health_error = str(exc)
        log.warning("connection %s: %s", connection.workspace_gid, exc)
    except AsanaError as exc:
        result = PollResult(ok=False, message=f"poll failed: {exc}")
        if isinstance(exc, HEALTH_ERRORS):
            health_error = str(exc)
    finally:
        if own_client:
            client.close()
    result.requests = client.request_count - before
    _record(connection, result, health_error, started)
    return result


def take_poll_slot(connection: AsanaConnection, now: datetime | None = None) -> bool:
    """Claim this interval's poll for the caller; False when the connection was polled less
    than its interval ago (by any process; `watch.poll_interval_now`) or polling is off."""
    now = now or timezone.now()
    due_since = now - timedelta(seconds=watch.poll_interval_now(connection, now))
    # The row was just read: spare the database a write when it is plainly not due.
    if connection.last_poll_at is not None and connection.last_poll_at > due_since:
        return False
    won = (
        AsanaConnection.objects.filter(pk=connection.pk, polling_enabled=True)
        .filter(Q(last_poll_at__isnull=True) | Q(last_poll_at__lte=due_since))
        .update(last_poll_at=now)
    )
    if won:
        connection.last_poll_at = now
    return won == 1


def poll_if_due(
    connection: AsanaConnection, *, client: AsanaClient | None = None
) -> PollResult | None:
    """Poll the connection if its slot is free; None when it is not due."""
    if not take_poll_slot(connection):
        return None
    return poll_connection(connection, client=client)


def _poll(connection: AsanaConnection, client: AsanaClient) -> PollResult:
    started = timezone.now()
    tags = resolve_tags(connection, client)
    method = watch.pass_for(connection, started)
    listed: dict[str, dict[str, Any]] = {}
    try:
        if method == "search":
            try:
                listed = _search(connection, client, tags)
                watch.note_search_answered(connection)
            except AsanaPaymentRequired:
                # The plan has no search: list the tag now, and until search is tried again.
                log.info("connection %s: search needs a paid plan", connection.workspace_gid)
                watch.note_search_unavailable(connection)
                method = "tag_list"
        if method == "tag_list":
            # Every tag named like the pilot tag is watched; a task carrying two is listed once.
            for pilot_gid in tags.pilot_gids:
                for task in client.tag_tasks(pilot_gid, LIST_FIELDS):
                    listed.setdefault(str(task["gid"]), task)
            watch.note_full_pass(connection, started)
    except AsanaNotFound:
        # A cached tag was deleted (or renamed away): look the tags up again next time.
        forget_tags(connection)
        raise
    tagged = len(listed)
    stops = _look_for_stops(connection, client)
    approved = _look_at_approvals(connection, client)
    waiting = _look_at_waiting(connection, client)
    if any(carries_unknown_tag(task, tags) for task in listed.values()):
        tags = resolve_tags(connection, client, refresh=True)
    fresh = [task for task in listed.values() if ineligible_reason(task, tags) is None]
    fresh = _not_dispatched(connection, fresh)
    fresh.sort(key=_created_key)
    skipped = _backlog_guard(connection, fresh)
    if skipped:
        fresh = []
    names = {str(t["gid"]): str(t.get("name") or "") for t in fresh}
    # Approved tasks (here or earlier, in the admin) are claimed first: they waited longest.
    ready = list(
        ProcessedTask.objects.filter(
            connection=connection, state=ProcessedTask.State.APPROVED
        ).values_list("task_gid", "task_name")
    )
    names.update(ready)
    candidates = [gid for gid, _ in ready] + [str(t["gid"]) for t in fresh]
    what = "open tagged (search)" if method == "search" else "tagged"
    message = f"ok: {tagged} {what}, {len(fresh)} new"
    if fresh and connection.paused_at is not None:
        # Paused (not for Asana's errors: those skip the poll), nothing new is claimed.
        message += " — waiting for Resume"
    if skipped:
        message += f", {skipped} backlog task(s) skipped"
    if stops:
        message += f", {len(stops)} asked to stop"
    if approved:
        message += f", {len(approved)} approved in Asana"
    for what, gids in (
        ("replied to", waiting.replies),
        ("stopped while waiting", waiting.stopped),
        ("reminded", waiting.reminded),
        ("released after waiting", waiting.released),
    ):
        if gids:
            message += f", {len(gids)} {what}"
    return PollResult(
        stops=stops,
        approved=approved,
        waiting=waiting,
        ok=True,
        message=message,
        candidates=candidates,
        names=names,
        tagged=tagged,
        skipped_backlog=skipped,
        method=method,
    )


def _search(
    connection: AsanaConnection, client: AsanaClient, tags: WorkspaceTags
) -> dict[str, dict[str, Any]]:
    """Open tasks carrying a pilot tag and no status tag, oldest first, by search.

    Search has no page cursor (spec, searchTasksForWorkspace, "Pagination"): results are
    sorted by creation and the next page asks for tasks created after the last one seen,
    less a millisecond, so tasks created in the same millisecond as a page's last one (a
    bulk import) are not skipped; the overlap is read again and dropped. Paging stops at a
    short page, or at a page with nothing new (over 100 tasks in one millisecond: the
    reconciling tag-list pass finds the rest). Raises AsanaPaymentRequired on plans without
    search.
    """
    status_gids = [gid for name in STATUS_TAGS for gid in tags.by_name.get(name, ())]
    params: dict[str, Any] = {
        "tags.any": ",".join(tags.pilot_gids),
        "tags.not": ",".join(status_gids),
        "completed": "false",
        "sort_by": "created_at",
        "sort_ascending": "true",
    }
    found: dict[str, dict[str, Any]] = {}
    for _ in range(SEARCH_PAGES):
        page = client.search_tasks(connection.workspace_gid, LIST_FIELDS, **params)
        before = len(found)
        for task in page:
            found.setdefault(str(task["gid"]), task)
        last = parse_time(page[-1].get("created_at")) if page else None
        if len(page) < client.SEARCH_LIMIT or len(found) == before or last is None:
            break
        params["created_at.after"] = _iso(last - timedelta(milliseconds=1))
    return found


def _iso(moment: datetime) -> str:
    """Asana's form of a moment: UTC, milliseconds, "Z"."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _look_for_stops(connection: AsanaConnection, client: AsanaClient) -> list[str]:
    """Each poll looks at the tasks it has running (a stop signal in Asana) — a failure
    here never fails the poll: the next one looks again."""
    from integrations.pipeline.stop import check_running

    try:
        return check_running(connection, client)
    except AsanaError as exc:
        log.warning("connection %s: could not look for stops: %s", connection.workspace_gid, exc)
        return []


def _look_at_approvals(connection: AsanaConnection, client: AsanaClient) -> list[str]:
    """Each poll looks at the tasks waiting for approval (approved, stopped or refused in
    Asana; `approvals.check_waiting`) — a failure never fails the poll. Returns the GIDs
    approved in Asana."""
    from integrations.pipeline.approvals import check_waiting

    try:
        return check_waiting(connection, client).approved
    except AsanaError as exc:
        log.warning(
            "connection %s: could not look at waiting tasks: %s", connection.workspace_gid, exc
        )
        return []


def _look_at_waiting(connection: AsanaConnection, client: AsanaClient) -> WaitingLook:
    """Each poll reads the stories of the tasks waiting for input (one request each):
    replies, stops, reminders and releases (`needs_input.look_at_waiting`). A failure here
    never fails the poll: the next one looks again."""
    try:
        return look_at_waiting(connection, client, timers=True)
    except AsanaError as exc:
        log.warning(
            "connection %s: could not look at tasks waiting for input: %s",
            connection.workspace_gid,
            exc,
        )
        return WaitingLook()


def _not_dispatched(
    connection: AsanaConnection, tasks: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    blocked = blocked_gids(connection, [str(t["gid"]) for t in tasks])
    return [t for t in tasks if str(t["gid"]) not in blocked]


def _created_key(task: dict[str, Any]) -> tuple[datetime, str]:
    created = parse_time(task.get("created_at")) or datetime.max.replace(tzinfo=UTC)
    return created, str(task["gid"])


def _backlog_guard(connection: AsanaConnection, fresh: list[dict[str, Any]]) -> int:
    """On the first successful poll, record the existing tagged tasks as skipped if asked."""
    if connection.backlog_checked_at is not None:
        return 0
    now = timezone.now()
    skipped = 0
    if connection.skip_backlog and fresh:
        ProcessedTask.objects.bulk_create(
            [
                ProcessedTask(
                    connection=connection,
                    task_gid=str(t["gid"]),
                    task_name=str(t.get("name") or "")[:500],
                    state=ProcessedTask.State.SKIPPED,
                    skip_reason=BACKLOG_REASON,
                    source="poll",
                    finished_at=now,
                )
                for t in fresh
            ],
            ignore_conflicts=True,
            batch_size=LEDGER_CHUNK,
        )
        skipped = len(fresh)
        audit.record(
            Action.PIPELINE_BACKLOG_SKIPPED,
            target=f"workspace {connection.workspace_gid}",
            detail=f"{skipped} task(s) already tagged {connection.pilot_tag!r} recorded as skipped",
            actor_label="poller",
            connection=connection,
        )
    AsanaConnection.objects.filter(pk=connection.pk, backlog_checked_at__isnull=True).update(
        backlog_checked_at=now
    )
    connection.backlog_checked_at = now
    return skipped


def _record(
    connection: AsanaConnection, result: PollResult, health_error: str | None, started: datetime
) -> None:
    now = timezone.now()
    fields: dict[str, Any] = {"last_poll_result": result.message[:500]}
    if health_error is not None:
        fields.update(last_checked_at=now, last_error=health_error)
    # Queryset updates, so a poll never overwrites settings an admin saved meanwhile.
    AsanaConnection.objects.filter(pk=connection.pk).update(**fields)
    # The interval runs from the start of a poll (the slot's time when it took one), so a
    # poll's own duration does not push the next one back; a slow poll never moves it back.
    AsanaConnection.objects.filter(pk=connection.pk).filter(
        Q(last_poll_at__isnull=True) | Q(last_poll_at__lt=started)
    ).update(last_poll_at=started)
    fields["last_poll_at"] = max(connection.last_poll_at or started, started)
    for name, value in fields.items():
        setattr(connection, name, value)
