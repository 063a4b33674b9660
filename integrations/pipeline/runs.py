"""Claim, execute, report: the service code shared by `runpollers`, django-q2 and webhooks.

A claim is a row in the processed-task ledger (unique per connection and task): a new row
is inserted in a savepoint and losing the race raises IntegrityError; a failed row is
taken back with a conditional UPDATE that only one claimant can win. Each claim carries
a token (`claimed_by`) and a lease; the runner renews the lease while it works, and a
lease that runs out means the claimant died: `recover_stale` reports such a task failed
("interrupted"), which makes it retryable, or finishes a report that was cut short.
"""

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Self

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db import connection as db_connection
from django.db.models import F, Q
from django.utils import timezone

from integrations import audit
from integrations.asana.client import AsanaClient, client_for
from integrations.asana.errors import AsanaError, AsanaForbidden, AsanaNotFound
from integrations.audit import Action
from integrations.models import AsanaConnection, AuditLog, ProcessedTask, Run
from integrations.pipeline import breaker, needs_input
from integrations.pipeline.convert import DETAIL_FIELDS, convert, tag_names
from integrations.pipeline.execute import Execution, RunControl
from integrations.pipeline.executors import Choice, choose, describe, execute, executor_configured
from integrations.pipeline.gather import gather
from integrations.pipeline.progress import ProgressComment
from integrations.pipeline.report import GONE, Reporter
from integrations.pipeline.tags import eligibility, resolve_tags
from pilotsite.redact import redact
from pilotsite.schedules import send_on_commit

log = logging.getLogger(__name__)
State = ProcessedTask.State
Runner = ProcessedTask.Runner
INTERRUPTED = (
    "interrupted: the process running this task stopped before it finished "
    "(its lease expired); remove the pilot-failed tag or retry from the admin to run it again"
)

STOPPED_AFTER = "stopped on request (the process running it ended first)"
STOPPED_WAITING = "stopped on request while waiting for input"


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


# -- claiming --------------------------------------------------------------------------


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


# -- running ---------------------------------------------------------------------------


class LeaseKeeper:
    """Renews a running task's lease from a thread until the work is over."""

    def __init__(self, pk: int, token: str) -> None:
        self.pk, self.token = pk, token
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"lease-{pk}")

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def tick_seconds(self) -> float:
        """How long the thread sleeps between looks; a subclass looks more often."""
        return run_lease().total_seconds() / 4

    def tick(self) -> None:
        """Called every `tick_seconds()` (from the keeper's thread)."""

    def _renew(self) -> None:
        renewed = ProcessedTask.objects.filter(
            pk=self.pk, claimed_by=self.token, state=State.RUNNING
        ).update(lease_expires_at=timezone.now() + run_lease())
        if not renewed and not self.lost:
            self.lost = True
            log.warning("processed task %s: lease lost to another process", self.pk)

    def _run(self) -> None:
        renew_every = run_lease().total_seconds() / 4
        renewed_at = time.monotonic()
        try:
            while not self._stop.wait(self.tick_seconds()):
                self.tick()
                if time.monotonic() - renewed_at >= renew_every:
                    self._renew()
                    renewed_at = time.monotonic()
        finally:
            # This thread ends here: its own connection must not outlive it (with
            # CONN_MAX_AGE, close_old_connections would keep it open until collected).
            db_connection.close()


class RunWatcher(LeaseKeeper):
    """While an execution runs, every PILOT_STOP_CHECK_SECONDS: shows its new progress lines
    on the run (the run page has them at once), hands a stop request to the execution
    (`control.stop`), and keeps the lease; the one Asana progress comment is kept up to
    date from a thread of its own (`ProgressComment`), so a slow Asana never delays a stop.
    """

    def __init__(self, pt: ProcessedTask, run: Run, control: RunControl) -> None:
        super().__init__(pt.pk, pt.claimed_by)
        self.run_pk = run.pk
        self.control = control
        self.stop_requested = False
        self._kept: list[dict[str, str]] = list(run.progress or [])
        self._pending: list[dict[str, str]] = []
        self._lines_lock = threading.Lock()
        self.comment = ProgressComment(pt, run)
        control.progress = self.add

    def add(self, text: str) -> None:
        """A progress line from the execution (any thread): kept until the next tick."""
        with self._lines_lock:
            self._pending.append({"at": timezone.now().isoformat(), "text": text})

    def tick_seconds(self) -> float:
        return settings.PILOT_STOP_CHECK_SECONDS

    def tick(self) -> None:
        try:
            self._flush()
            asked = (
                Run.objects.filter(pk=self.run_pk, stop_requested_at__isnull=False)
                .values_list("pk", flat=True)
                .first()
            )
        except Exception:  # the database hiccuped: look again at the next tick
            log.exception("run %s: could not look at its stop flag", self.run_pk)
            return
        if asked and not self.stop_requested:
            self.stop_requested = True
            self.control.stop.set()
            log.info("run %s: stop requested, ending the executor", self.run_pk)

    def _flush(self) -> None:
        with self._lines_lock:
            fresh, self._pending = self._pending, []
        if not fresh:
            return
        self._kept = (self._kept + fresh)[-Run.PROGRESS_KEPT :]
        Run.objects.filter(pk=self.run_pk).update(progress=self._kept)
        self.comment.offer([line["text"] for line in self._kept])

    def __enter__(self) -> "RunWatcher":
        self.comment.start()
        return super().__enter__()

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        self.comment.close()
        self._flush()


def run_claimed(
    processed_task_id: int,
    claim_token: str | None = None,
    *,
    client: AsanaClient | None = None,
    task: dict | None = None,
) -> ProcessedTask | None:
    """Execute a claimed task and report the outcome; None when the claim is no longer ours.

    `task` is the task as its claimant read it (`claim_eligible`) moments ago, in the same
    job: it is not read again. Without it (a claim that waited in a queue) it is re-read,
    and a task that stopped being eligible meanwhile is released."""
    pt = ProcessedTask.objects.select_related("connection").filter(pk=processed_task_id).first()
    if pt is None or pt.state != State.CLAIMED or (claim_token and pt.claimed_by != claim_token):
        return None
    token = pt.claimed_by
    now = timezone.now()
    started = ProcessedTask.objects.filter(pk=pt.pk, state=State.CLAIMED, claimed_by=token).update(
        state=State.RUNNING,
        started_at=now,
        finished_at=None,
        lease_expires_at=now + run_lease(),
        report_steps=[],
        outcome="",
        error="",
        output="",
        skip_reason="",
        result_summary="",
        result_url="",
        result_url_title="",
    )
    if not started:
        return None
    pt.refresh_from_db()
    own_client = client is None
    client = client or client_for(pt.connection)
    try:
        with LeaseKeeper(pt.pk, token):
            _run(pt, client, task)
        # None when the claim was released and its row deleted.
        row = ProcessedTask.objects.select_related("connection").filter(pk=pt.pk).first()
        resumed = _reply_already_there(row, client)
    finally:
        if own_client:
            client.close()
    if resumed is None:
        return row
    if resumed.runner == Runner.QUEUE:
        enqueue(resumed)
        return row
    return run_claimed(resumed.pk, resumed.claimed_by, client=client if not own_client else None)


def _reply_already_there(row: ProcessedTask | None, client: AsanaClient) -> ProcessedTask | None:
    """A task that just began waiting may have its reply already (written while the run
    was going): claimed back at once, for the runner that ran it. One stories read."""
    if row is None or row.state != State.WAITING:
        return None
    from integrations.pipeline import needs_input

    try:
        look = needs_input.look_at_waiting(row.connection, client, gids=[row.task_gid])
    except AsanaError as exc:
        log.warning("ASANA-%s: could not look for a reply yet: %s", row.task_gid, exc)
        return None
    for waiting, reply in look.replies:
        try:
            return needs_input.resume(
                waiting, reply, runner=Runner(row.runner or Runner.IN_PROCESS)
            )
        except breaker.Paused:
            return None  # taken by a poll once the connection is resumed
    return None


def _run(pt: ProcessedTask, client: AsanaClient, task: dict | None) -> None:
    from integrations.pipeline import approvals  # it claims through this module

    connection = pt.connection
    if task is None:
        try:
            task = client.task(pt.task_gid, DETAIL_FIELDS)
        except GONE as exc:
            _skip(pt, f"deleted or not accessible in Asana: {exc}")
            return
        except AsanaError as exc:
            release(pt, pt.claimed_by, f"could not read the task: {exc}")
            return
    approved = pt.decision == ProcessedTask.Decision.APPROVED
    try:
        tags, reason = eligibility(
            connection, client, task, resuming=approved or pt.source == "reply"
        )
    except AsanaError as exc:
        release(pt, pt.claimed_by, f"could not read the workspace's tags: {exc}")
        return
    if reason and approved:
        # Untagged or completed after its approval: the wait ends instead of the run.
        approvals.end_wait(pt, client, tags, f"pilotsite ({reason} after it was approved)")
        return
    if reason:
        release(pt, pt.claimed_by, reason)
        return
    pt.task_subtype = str(task.get("resource_subtype") or "")[:32]
    ProcessedTask.objects.filter(pk=pt.pk).update(
        task_name=str(task.get("name") or "")[:500],
        permalink_url=str(task.get("permalink_url") or "")[:500],
        task_subtype=pt.task_subtype,
    )
    # A reply goes on with the task its question came from: no new approval is asked for.
    resumed = pt.source == "reply"
    if (
        not approved
        and not resumed
        and connection.rollout_mode == AsanaConnection.RolloutMode.APPROVAL
    ):
        approvals.wait(pt, client, tags)
        return
    # Read only for a run that goes ahead (a task waiting for approval needs none of it).
    try:
        context = gather(connection, client, task, tags)
    except GONE as exc:
        _skip(pt, f"deleted or not accessible in Asana: {exc}")
        return
    except AsanaError as exc:
        release(pt, pt.claimed_by, f"could not read the task's stories or attachments: {exc}")
        return
    run = _new_run(pt)
    reporter = Reporter(client, pt, tags, run=run, carried=set(tag_names(task)))
    try:
        reporter.started()
    except GONE as exc:
        if not pt.report_steps:
            _skip(pt, f"deleted or not accessible in Asana: {exc}")
            return
        execution = Execution(ok=False, error=f"Asana refused the start report: {exc}")
    except AsanaError as exc:
        execution = Execution(ok=False, error=f"could not report the start in Asana: {exc}")
    else:
        log.debug("ASANA-%s started: %s", pt.task_gid, task.get("name") or "")
        converted = convert(task, context)
        converted["conversation"] = needs_input.for_executor(pt.conversation)
        choice = _chosen(pt, converted)
        Run.objects.filter(pk=run.pk).update(executor=choice.name)
        control = RunControl()
        with RunWatcher(pt, run, control) as watcher:
            execution = _execute(converted, choice, control)
        asked = needs_input.questions_asked(pt.conversation)
        if execution.needs_input and asked >= settings.PILOT_INPUT_MAX_ROUNDS:
            execution = Execution(
                ok=False,
                error=needs_input.too_many_questions(execution.needs_input),
                output=execution.output,
            )
        if watcher.stop_requested and not execution.stopped and not control.stop.is_set():
            # Asked to stop after the executor had finished: its result stands.
            log.info("ASANA-%s: stop came after the run finished; reporting it", pt.task_gid)
    _record_outcome(pt, execution)
    finish_report(pt, client)


def _trigger(pt: ProcessedTask) -> str:
    """What started this attempt: a reply to the task's question; the intake for a first
    one; for a retry, the admin when "Retry" was pressed since the previous run ended, else
    Asana (pilot-failed removed or the pilot tag added again); an approved attempt, the
    approval."""
    if pt.source == "reply":
        return Run.Trigger.REPLY
    if pt.decision == ProcessedTask.Decision.APPROVED:
        return Run.Trigger.APPROVAL
    if pt.attempts <= 1:
        return Run.Trigger.WEBHOOK if pt.source == "webhook" else Run.Trigger.POLL
    previous = Run.objects.filter(processed_task=pt).order_by("-number").first()
    since = previous.finished_at if previous and previous.finished_at else None
    retried = AuditLog.objects.filter(action=Action.PIPELINE_RETRY, target=f"task {pt.task_gid}")
    if since is not None:
        retried = retried.filter(created_at__gte=since)
    return Run.Trigger.ADMIN_RETRY if retried.exists() else Run.Trigger.ASANA_RETRY


def _new_run(pt: ProcessedTask) -> Run:
    run, _ = Run.objects.get_or_create(
        processed_task=pt,
        number=pt.attempts,
        defaults={
            "trigger": _trigger(pt),
            "claimed_by": pt.claimed_by,
            "approved_by": pt.decided_by[:150] if pt.decision == "approved" else "",
        },
    )
    return run


def _chosen(pt: ProcessedTask, task: dict) -> Choice:
    """Pick the executor for the task and record it (and why) on the ledger row."""
    choice = choose(pt.connection, task["labels"])
    ProcessedTask.objects.filter(pk=pt.pk, claimed_by=pt.claimed_by).update(
        executor=choice.name, executor_reason=choice.reason[:200]
    )
    pt.executor, pt.executor_reason = choice.name, choice.reason[:200]
    return choice


def _execute(task: dict, choice: Choice, control: RunControl) -> Execution:
    if choice.spec is None:
        return Execution(ok=False, error=describe(choice.name))
    try:
        return execute(task, choice.spec, control)
    except Exception as exc:  # the executor machinery itself failed (cannot start, say)
        log.exception("ASANA-%s: the executor could not run", task.get("gid"))
        return Execution(ok=False, error=redact(f"the executor could not run: {exc}"))


def _outcome_of(execution: Execution) -> str:
    if execution.stopped:
        return "stopped"
    if execution.ok and execution.needs_input:
        return "needs_input"
    return "success" if execution.ok else "failure"


def _record_outcome(pt: ProcessedTask, execution: Execution) -> None:
    fields: dict[str, Any] = {
        "outcome": _outcome_of(execution),
        "result_summary": execution.summary,
        "result_url": execution.url,
        "result_url_title": execution.url_title,
        "error": execution.error,
        "output": execution.output,
    }
    if fields["outcome"] == "needs_input":
        # Recorded with the outcome, so an interrupted report posts this very question.
        question = needs_input.entry(
            "question", execution.needs_input, run=pt.attempts, author="the executor"
        )
        fields["conversation"] = [*(pt.conversation or []), question]
    ProcessedTask.objects.filter(pk=pt.pk, claimed_by=pt.claimed_by).update(**fields)
    for name, value in fields.items():
        setattr(pt, name, value)
    Run.objects.filter(processed_task=pt, number=pt.attempts).update(
        output=execution.output, result_url=execution.url, error=execution.error
    )


RUN_OUTCOMES = {
    "success": Run.Outcome.DONE,
    "failure": Run.Outcome.FAILED,
    "stopped": Run.Outcome.STOPPED,
    "needs_input": Run.Outcome.NEEDS_INPUT,
}
LEDGER_STATES = {
    "success": State.DONE,
    "stopped": State.STOPPED,
    "needs_input": State.WAITING,
}


def finish_report(pt: ProcessedTask, client: AsanaClient) -> bool:
    """Report the recorded outcome and close the task; False leaves it for recovery."""
    run = Run.objects.filter(processed_task=pt, number=pt.attempts).first()
    reporter = Reporter(client, pt, {}, run=run)
    note = ""
    try:
        reporter.tags = resolve_tags(pt.connection, client)
        reporter.finished()
    except AsanaError as exc:
        if not exc.permanent:
            # Still failing after retries: keep the outcome, let recovery finish the report.
            ProcessedTask.objects.filter(pk=pt.pk, claimed_by=pt.claimed_by).update(
                lease_expires_at=timezone.now()
            )
            log.warning("ASANA-%s: reporting interrupted, will resume: %s", pt.task_gid, exc)
            return False
        # Deleted, inaccessible or refused: retrying cannot help, so the ledger closes it.
        note = f"\n(could not report in Asana: {exc})"
    state = LEDGER_STATES.get(pt.outcome, State.FAILED)
    finished = timezone.now()
    waiting = state == State.WAITING
    closed = ProcessedTask.objects.filter(pk=pt.pk, claimed_by=pt.claimed_by).update(
        state=state,
        finished_at=finished,
        lease_expires_at=None,
        error=(pt.error + note).strip(),
        waiting_since=finished if waiting else None,
        reminded_at=None,
    )
    if closed and run is not None:
        interrupted = pt.outcome == "failure" and pt.error == INTERRUPTED
        Run.objects.filter(pk=run.pk).update(
            finished_at=finished,
            outcome=Run.Outcome.INTERRUPTED if interrupted else RUN_OUTCOMES[pt.outcome],
            error=(pt.error + note).strip(),
        )
        if pt.outcome == "failure" and not interrupted:
            breaker.check_failures(pt.connection)
    elapsed = ""
    if pt.started_at:
        elapsed = f" in {(timezone.now() - pt.started_at).total_seconds():.1f} s"
    detail = (pt.result_url or pt.result_summary) if state == State.DONE else pt.error
    detail = f": {redact(detail)[:200]}" if detail else ""
    log.info("ASANA-%s %s%s%s", pt.task_gid, state, elapsed, detail)
    return True


def _skip(pt: ProcessedTask, reason: str) -> None:
    ProcessedTask.objects.filter(pk=pt.pk, claimed_by=pt.claimed_by).update(
        state=State.SKIPPED,
        skip_reason=reason[:200],
        finished_at=timezone.now(),
        lease_expires_at=None,
    )
    log.info("ASANA-%s skipped: %s", pt.task_gid, reason)


# -- recovery --------------------------------------------------------------------------


def recover_stale(now: datetime | None = None, *, runner: Runner = Runner.RECOVERY) -> int:
    """Give back stale claims and report stale runs; returns how many rows were handled."""
    now = now or timezone.now()
    handled = 0
    stale = ProcessedTask.objects.filter(lease_expires_at__lt=now)
    for pt in stale.filter(state=State.CLAIMED):
        if release(pt, pt.claimed_by, "claim expired before it started"):
            handled += 1
    for pt in stale.filter(state=State.RUNNING).select_related("connection"):
        token = new_token(runner)
        taken = ProcessedTask.objects.filter(
            pk=pt.pk, state=State.RUNNING, claimed_by=pt.claimed_by, lease_expires_at__lt=now
        ).update(claimed_by=token, runner=runner, lease_expires_at=timezone.now() + run_lease())
        if not taken:
            continue
        pt.claimed_by = token
        handled += 1
        if not pt.outcome:
            asked = Run.objects.filter(
                processed_task=pt, number=pt.attempts, stop_requested_at__isnull=False
            ).exists()
            if asked:
                log.warning(
                    "ASANA-%s: found interrupted while stopping, reporting the stop", pt.task_gid
                )
                execution = Execution(ok=False, stopped=True, error=STOPPED_AFTER, output=pt.output)
            else:
                log.warning("ASANA-%s: found interrupted, reporting it failed", pt.task_gid)
                execution = Execution(ok=False, error=INTERRUPTED, output=pt.output)
            _record_outcome(pt, execution)
        try:
            with client_for(pt.connection) as client, LeaseKeeper(pt.pk, token):
                finish_report(pt, client)
        except Exception:  # one bad row must not stop recovery (its lease runs out again)
            log.exception("ASANA-%s: recovery failed", pt.task_gid)
    return handled


# -- entry points ----------------------------------------------------------------------


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
