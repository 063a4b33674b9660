"""Running a claimed task: start it, read what the executor needs, run the executor while
the run watcher keeps the lease, then record and report the outcome (`outcome`)."""

import logging

from django.conf import settings
from django.utils import timezone

from integrations.asana.client import AsanaClient, client_for
from integrations.asana.errors import AsanaError
from integrations.audit import Action
from integrations.models import AsanaConnection, AuditLog, ProcessedTask, Run
from integrations.pipeline import breaker, needs_input
from integrations.pipeline.claims import release, run_lease
from integrations.pipeline.convert import DETAIL_FIELDS, convert, tag_names
from integrations.pipeline.dispatch import enqueue
from integrations.pipeline.execute import Execution, RunControl
from integrations.pipeline.executors import Choice, choose, describe, execute
from integrations.pipeline.gather import gather
from integrations.pipeline.lease import LeaseKeeper, RunWatcher
from integrations.pipeline.outcome import finish_report, record_outcome
from integrations.pipeline.report import GONE, Reporter
from integrations.pipeline.tags import eligibility
from pilotsite.redact import redact

log = logging.getLogger(__name__)
State = ProcessedTask.State
Runner = ProcessedTask.Runner


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
        executed_at=None,
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
    from integrations.pipeline import approvals  # it runs approved tasks through this module

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
    record_outcome(pt, execution)
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


def _skip(pt: ProcessedTask, reason: str) -> None:
    ProcessedTask.objects.filter(pk=pt.pk, claimed_by=pt.claimed_by).update(
        state=State.SKIPPED,
        skip_reason=reason[:200],
        finished_at=timezone.now(),
        lease_expires_at=None,
    )
    log.info("ASANA-%s skipped: %s", pt.task_gid, reason)
