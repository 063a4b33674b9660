"""Safety rails: a connection's automation pauses itself (no new claims; runs in flight
finish and report) when one of three triggers fires, each counted since the connection
last resumed (`resumed_at`) and set per connection on the card:

- **errors**: of the requests made with the connection's token within the last
  `breaker_error_window` seconds, more than `breaker_error_percent` % were errors (a 5xx, a
  timeout or a failed connection: `integrations.asana.client`; 429 is the budget's, not an
  error), once at least `breaker_min_requests` were made. The answers are counted in the
  budget's shared store (`budget.note_answer`), so every process's requests count;
- **failures**: the connection's last `breaker_failures` finished runs all failed (a stopped
  or interrupted run neither counts nor breaks the streak; a done one breaks it);
- **claims**: `breaker_claims_per_hour` tasks were claimed within the last hour (someone
  tagged a whole project): the claim that would be one more pauses instead. Claims racing
  in several processes may each pass the count before either is written, so the limit can
  be overshot by the number of processes claiming at that moment.

Every claim passes `check_claim` (from `claims.claim`, where polling, webhook deliveries,
retries and approvals meet). Pausing and resuming are conditional UPDATEs with their audit row in the same
transaction: when two processes trip at once, one pauses and writes the one row.

A connection paused for errors sends one probe (`GET /users/me`) per `breaker_cooldown`
seconds instead of polling (`probe_if_due`, from the poll turn) and resumes by itself when
it succeeds; the other kinds stay paused until a person presses Resume (`resume`).
"""

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from integrations import audit
from integrations.asana import budget
from integrations.asana.client import client_for
from integrations.asana.errors import AsanaError
from integrations.audit import Action
from integrations.models import AsanaConnection, AuditLog, ProcessedTask, Run

log = logging.getLogger(__name__)

Kind = AsanaConnection.PauseKind
HOUR = timedelta(hours=1)
ACTOR = "safety rails"
# What the rails read of a connection: its thresholds and its pause.
FIELDS = (
    *(name for name in AsanaConnection.SETTINGS if name.startswith("breaker_")),
    "paused_at",
    "pause_kind",
    "pause_reason",
    "resumed_at",
    "probed_at",
)


class Paused(Exception):
    """The connection's automation is paused: nothing was claimed. `reason` says why."""

    def __init__(self, connection: AsanaConnection) -> None:
        self.reason = connection.pause_reason
        super().__init__(f"automation of {connection} is paused: {connection.pause_reason}")


def counted_since(connection: AsanaConnection, now: datetime, window: timedelta) -> datetime:
    """Where a trigger's count starts: `window` before `now`, but never before the last
    resume (what paused the connection before is not counted twice)."""
    start = now - window
    return max(start, connection.resumed_at) if connection.resumed_at else start


def errors_reason(connection: AsanaConnection, now: datetime) -> str:
    """Why Asana's errors should pause the connection now, or "" when they should not."""
    window = timedelta(seconds=connection.breaker_error_window)
    since = counted_since(connection, now, window)
    requests, errors = budget.store().answers(budget.answers_key(connection.pk), since.timestamp())
    if requests < connection.breaker_min_requests:
        return ""
    if errors * 100 <= connection.breaker_error_percent * requests:
        return ""
    return (
        f"Asana answered {errors} of the last {requests} requests with an error "
        f"({errors * 100 // requests} %) within {connection.breaker_error_window} s; "
        f"the limit is {connection.breaker_error_percent} %"
    )


def failures_reason(connection: AsanaConnection) -> str:
    """Why failed runs should pause the connection now, or ""."""
    wanted = connection.breaker_failures
    runs = Run.objects.filter(
        processed_task__connection=connection,
        finished_at__isnull=False,
        outcome__in=(Run.Outcome.DONE, Run.Outcome.FAILED),
    )
    if connection.resumed_at:
        runs = runs.filter(finished_at__gt=connection.resumed_at)
    latest = list(runs.order_by("-finished_at", "-id").values_list("outcome", flat=True)[:wanted])
    if len(latest) < wanted or any(outcome != Run.Outcome.FAILED for outcome in latest):
        return ""
    return f"the executor failed {wanted} run{'s' if wanted != 1 else ''} in a row"


def claims_reason(connection: AsanaConnection, now: datetime) -> str:
    """Why the number of claims should pause the connection before one more, or ""."""
    limit = connection.breaker_claims_per_hour
    claimed = ProcessedTask.objects.filter(
        connection=connection, claimed_at__gte=counted_since(connection, now, HOUR)
    ).count()
    if claimed < limit:
        return ""
    return (
        f"{claimed} tasks were claimed within the last hour, the limit is {limit} "
        "(was a whole project tagged?)"
    )


def pause(
    connection: AsanaConnection, kind: str, reason: str, *, now: datetime | None = None
) -> bool:
    """Pause the connection for `kind` (AsanaConnection.PauseKind) with `reason`; False when
    it already was paused (by another process, say). Audited as `automation.paused`."""
    now = now or timezone.now()
    with transaction.atomic():
        won = AsanaConnection.objects.filter(pk=connection.pk, paused_at__isnull=True).update(
            paused_at=now, pause_kind=kind, pause_reason=reason[:500], probed_at=None
        )
        if won:
            audit.record(
                Action.AUTOMATION_PAUSED,
                target=str(connection),
                outcome=AuditLog.Outcome.WARNING,
                detail=reason,
                actor_label=ACTOR,
                connection=connection,
            )
    if won:
        connection.paused_at, connection.pause_kind = now, kind
        connection.pause_reason, connection.probed_at = reason[:500], None
        log.warning("connection %s paused: %s", connection.workspace_gid, reason)
    return won == 1


def resume(
    connection: AsanaConnection,
    *,
    actor: audit.Actor = None,
    actor_label: str = "system",
    how: str = "",
    now: datetime | None = None,
) -> bool:
    """End the pause the connection is in now; counting starts again from here. False when
    it was not paused, or the pause changed meanwhile (resumed or paused again by another
    process). Audited as `automation.resumed` with the pause it ended and `how`."""
    now = now or timezone.now()
    stored = (
        AsanaConnection.objects.filter(pk=connection.pk).values("paused_at", "pause_reason").first()
    )
    if stored is None or stored["paused_at"] is None:
        return False
    with transaction.atomic():
        won = AsanaConnection.objects.filter(
            pk=connection.pk, paused_at=stored["paused_at"]
        ).update(paused_at=None, pause_kind="", pause_reason="", probed_at=None, resumed_at=now)
        if won:
            since = timezone.localtime(stored["paused_at"]).strftime("%Y-%m-%d %H:%M:%S")
            detail = f"paused since {since}: {stored['pause_reason']}"
            audit.record(
                Action.AUTOMATION_RESUMED,
                target=str(connection),
                detail=f"{detail}; {how}" if how else detail,
                actor=actor,
                actor_label=actor_label,
                connection=connection,
            )
    if won:
        connection.paused_at, connection.pause_kind, connection.pause_reason = None, "", ""
        connection.probed_at, connection.resumed_at = None, now
        log.info("connection %s resumed%s", connection.workspace_gid, f" ({how})" if how else "")
    return won == 1


def _trip(connection: AsanaConnection, kind: str, reason: str) -> None:
    """Pause for `reason` and raise Paused (with the pause in force, which may be another
    process's that came first)."""
    if not pause(connection, kind, reason):
        connection.refresh_from_db(fields=FIELDS)
    raise Paused(connection)


def check_claim(connection: AsanaConnection, *, now: datetime | None = None) -> None:
    """The one gate every claim passes (`claims.claim`). Raises Paused when the connection is
    paused, or when a trigger fires now (it is paused then). Reads the connection's stored
    pause and thresholds (the card may have changed them) into `connection`."""
    now = now or timezone.now()
    connection.refresh_from_db(fields=FIELDS)
    if connection.paused_at is not None:
        raise Paused(connection)
    if reason := claims_reason(connection, now):
        _trip(connection, Kind.CLAIMS, reason)
    if reason := failures_reason(connection):
        _trip(connection, Kind.FAILURES, reason)
    if reason := errors_reason(connection, now):
        _trip(connection, Kind.ERRORS, reason)


def check_errors(connection: AsanaConnection, *, now: datetime | None = None) -> bool:
    """After a poll: pause when Asana's errors call for it (even with nothing to claim, so
    an outage shows on the card). True when the connection is paused now."""
    connection.refresh_from_db(fields=FIELDS)
    if connection.paused_at is not None:
        return True
    if reason := errors_reason(connection, now or timezone.now()):
        pause(connection, Kind.ERRORS, reason)
        return True
    return False


def check_failures(connection: AsanaConnection) -> bool:
    """After a run failed: pause when it completes a streak (so the card shows it at once,
    not at the next claim). True when the connection is paused now."""
    connection.refresh_from_db(fields=FIELDS)
    if connection.paused_at is not None:
        return True
    if reason := failures_reason(connection):
        pause(connection, Kind.FAILURES, reason)
        return True
    return False


def probe_if_due(connection: AsanaConnection, *, now: datetime | None = None) -> bool:
    """For a connection paused for errors, once `breaker_cooldown` seconds have passed since
    the pause or the last probe: one process takes the probe (a conditional UPDATE of
    `probed_at`) and sends one `GET /users/me`, without retries. A success resumes the
    connection (audited as by "system"); a failure waits for the next cool-down and is shown
    as the last poll's result. True when the connection was resumed."""
    now = now or timezone.now()
    if connection.paused_at is None or connection.pause_kind != Kind.ERRORS:
        return False
    due_since = now - timedelta(seconds=connection.breaker_cooldown)
    # The row was just read: spare the database a write when the probe is plainly not due.
    if max(connection.paused_at, connection.probed_at or connection.paused_at) > due_since:
        return False
    won = (
        AsanaConnection.objects.filter(
            pk=connection.pk, pause_kind=Kind.ERRORS, paused_at__lte=due_since
        )
        .filter(Q(probed_at__isnull=True) | Q(probed_at__lte=due_since))
        .update(probed_at=now)
    )
    if not won:
        return False
    connection.probed_at = now
    try:
        with client_for(connection, max_retries=0) as client:
            client.me()
    except AsanaError as exc:
        result = f"paused for Asana's errors; the probe failed: {exc}"
        AsanaConnection.objects.filter(pk=connection.pk).update(last_poll_result=result[:500])
        connection.last_poll_result = result[:500]
        log.info("connection %s: probe failed: %s", connection.workspace_gid, exc)
        return False
    return resume(connection, how="a probe of Asana succeeded", now=now)
