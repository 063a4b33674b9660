"""A run's outcome: recorded on the ledger row and the run, then reported in Asana and the
row closed (`finish_report`); a report cut short is finished by `recovery`."""

import logging
from typing import Any

from django.utils import timezone

from integrations.asana.client import AsanaClient
from integrations.asana.errors import AsanaError
from integrations.models import ProcessedTask, Run
from integrations.pipeline import breaker, needs_input
from integrations.pipeline.execute import Execution
from integrations.pipeline.report import Reporter
from integrations.pipeline.tags import resolve_tags
from pilotsite.redact import redact

log = logging.getLogger(__name__)
State = ProcessedTask.State
INTERRUPTED = (
    "interrupted: the process running this task stopped before it finished "
    "(its lease expired); remove the pilot-failed tag or retry from the admin to run it again"
)


def _outcome_of(execution: Execution) -> str:
    if execution.stopped:
        return "stopped"
    if execution.ok and execution.needs_input:
        return "needs_input"
    return "success" if execution.ok else "failure"


SHADOW_QUESTION = (
    "The executor asked for input: {question}\nIn shadow mode nothing is posted in Asana, so "
    "nobody was asked and no reply can come: the run ends here. Retry runs it again in the "
    "connection's mode of that moment."
)


def record_outcome(pt: ProcessedTask, execution: Execution) -> None:
    """Record the execution's outcome and the moment it ended (`executed_at`) on the ledger
    row (and on `pt`) and on its run, before any of it is reported: a report cut short is
    finished from what is recorded here, and its run's duration still ends at that moment.

    A shadow row's question is a failure saying so (`SHADOW_QUESTION`): the question is
    never posted, so waiting would take any later comment as the answer to it."""
    if pt.shadow and execution.ok and execution.needs_input and not execution.stopped:
        execution = Execution(
            ok=False,
            error=SHADOW_QUESTION.format(question=execution.needs_input),
            output=execution.output,
        )
    executed = timezone.now()
    fields: dict[str, Any] = {
        "executed_at": executed,
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
        output=execution.output,
        result_url=execution.url,
        error=execution.error,
        executed_at=executed,
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
    if pt.started_at and pt.executed_at:
        elapsed = f" in {(pt.executed_at - pt.started_at).total_seconds():.1f} s"
    detail = (pt.result_url or pt.result_summary) if state == State.DONE else pt.error
    detail = f": {redact(detail)[:200]}" if detail else ""
    log.info("ASANA-%s %s%s%s", pt.task_gid, state, elapsed, detail)
    return True
