"""Approval mode: a claimed task waits for a person's approval before it runs.

The runner, finding a claimed task of a connection in approval mode that nobody approved
yet, does not execute it: the ledger row becomes `awaiting_approval` (a blocking state, so
nothing claims it again), and the task gets `pilot-awaiting-approval` and a comment naming
who may approve (`wait`). Then, one of:

- **approved** (`approve`, a conditional UPDATE from `awaiting_approval`, so the admin's
  button and the Asana tag arriving together approve it once): in the admin by a user
  holding `integrations.approve_processedtask`, or in Asana by adding `pilot-approved` —
  accepted only when the person who added it, read from the task's stories (the newest
  `added_to_tag` story of that tag, its `created_by`), is a mapped employee marked as an
  approver. The row becomes `approved`; the next claim (the approval's job, the next poll
  or a webhook delivery) runs it as the same attempt, with trigger `approval`;
- **refused**: `pilot-approved` added by anyone else is answered with a comment and
  removed; the task keeps waiting;
- **rejected** (`reject`, in the admin): the row becomes `rejected` and is never run;
  the report (`finish_rejection`) removes the pilot tag and the waiting tag and says how to
  ask again: tag the task with the pilot tag again, which makes it a new attempt;
- **stopped in Asana** while waiting (pilot tag removed, completed, `pilot-stop`): the
  wait ends as a stop, reported like a rejection (`end_wait`).

`check_waiting` looks at the waiting tasks in Asana: every poll for all of a connection's,
each webhook delivery for those its events mention. It costs one task read per waiting
task, plus one stories read when the task carries `pilot-approved` or a stop signal.
Every approval, rejection and refusal is audited with who and when.
"""

import logging
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from integrations import audit
from integrations.asana.client import AsanaClient, client_for
from integrations.asana.errors import AsanaError, AsanaForbidden, AsanaNotFound
from integrations.audit import Action
from integrations.models import AsanaConnection, AsanaMapping, ProcessedTask, Run
from integrations.pipeline import breaker
from integrations.pipeline.claims import Runner, claim, claim_lease, new_token
from integrations.pipeline.convert import APPROVED_TAG
from integrations.pipeline.report import Reporter
from integrations.pipeline.runs import run_claimed
from integrations.pipeline.stop import (
    SIGNAL_STORIES,
    SIGNAL_TEXT,
    STOP_FIELDS,
    person_name,
    stop_signal,
)
from integrations.pipeline.tags import WorkspaceTags, resolve_tags
from pilotsite.redact import redact

log = logging.getLogger(__name__)
State = ProcessedTask.State
Decision = ProcessedTask.Decision

APPROVE_PERM = "integrations.approve_processedtask"
AWAITING_PREFIX = "Waiting for approval"
REJECTED_PREFIX = "Rejected by "
REFUSED_MARK = "may not approve this task"
ACTOR = "pipeline"


def approver_names(connection: AsanaConnection) -> list[str]:
    """The employees mapped in this connection's workspace and marked as approvers."""
    return list(
        AsanaMapping.objects.filter(connection=connection, employee__is_approver=True)
        .order_by("employee__name")
        .values_list("employee__name", flat=True)
    )


def awaiting_text(connection: AsanaConnection) -> str:
    """The waiting comment: who may approve, and how."""
    names = ", ".join(approver_names(connection)) or (
        "nobody yet (mark mapped employees as approvers in pilotsite's admin)"
    )
    return (
        f"{AWAITING_PREFIX}: pilotsite runs this task only once it is approved. Approvers "
        f"approve it by adding the tag {APPROVED_TAG!r}: {names}. A pilotsite user with the "
        "approve permission can approve or reject it in pilotsite's admin (Processed tasks)."
    )


def rejected_text(by: str, note: str, pilot_tag: str) -> str:
    note = redact(note.strip())
    return (
        f"{REJECTED_PREFIX}{redact(by)}{': ' + note if note else ''}. pilotsite did not run this "
        f"task. To ask again, tag it {pilot_tag!r} again."
    )


def stopped_waiting_text(by: str, pilot_tag: str) -> str:
    return (
        f"Stopped by {redact(by)} while it waited for approval: pilotsite did not run this "
        f"task. To ask again, tag it {pilot_tag!r} again."
    )


def refused_text(who: str, names: list[str]) -> str:
    allowed = ", ".join(names) or "nobody yet"
    return (
        f"{redact(who)} added {APPROVED_TAG!r} but {REFUSED_MARK}: only approvers can "
        f"({allowed}). The tag was removed; the task keeps waiting for approval."
    )


# -- taking a waiting row for a report ---------------------------------------------------


def _take(pt: ProcessedTask, state: str) -> bool:
    """Take the row for a report (a short lease), so two processes never report the same
    step at once; False when someone else holds it or its state moved on."""
    now = timezone.now()
    token = new_token(Runner.IN_PROCESS)
    won = ProcessedTask.objects.filter(
        Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now), pk=pt.pk, state=state
    ).update(claimed_by=token, lease_expires_at=now + claim_lease())
    if won:
        pt.claimed_by = token
    return won == 1


def _let_go(pt: ProcessedTask) -> None:
    ProcessedTask.objects.filter(pk=pt.pk, claimed_by=pt.claimed_by).update(lease_expires_at=None)


# -- the runner's side -------------------------------------------------------------------


def wait(pt: ProcessedTask, client: AsanaClient, tags: WorkspaceTags) -> None:
    """A claimed task of a connection in approval mode, not approved yet: it waits. The row
    becomes `awaiting_approval`; the task gets `pilot-awaiting-approval` and the comment. A
    report cut short by Asana is finished by the next `check_waiting`."""
    with transaction.atomic():
        ProcessedTask.objects.filter(pk=pt.pk, claimed_by=pt.claimed_by).update(
            state=State.AWAITING_APPROVAL,
            started_at=None,
            lease_expires_at=timezone.now() + claim_lease(),
        )
        audit.record_task(
            Action.PIPELINE_AWAITING_APPROVAL,
            pt,
            outcome="ok",
            detail="waiting for approval",
            actor_label=ACTOR,
        )
    pt.state = State.AWAITING_APPROVAL
    _report_awaiting(pt, client, tags)
    _let_go(pt)
    log.info("ASANA-%s is waiting for approval", pt.task_gid)


def _report_awaiting(pt: ProcessedTask, client: AsanaClient, tags: WorkspaceTags) -> None:
    try:
        Reporter(client, pt, tags).awaiting(awaiting_text(pt.connection))
    except AsanaError as exc:
        log.warning("ASANA-%s: the waiting report is not finished: %s", pt.task_gid, exc)


def end_wait(pt: ProcessedTask, client: AsanaClient, tags: WorkspaceTags, by: str) -> None:
    """The wait ends without a run (stopped in Asana, or untagged after its approval): the
    pilot and waiting tags go, one comment says who and how to ask again, the row is
    `stopped` (taken again once the task is tagged with the pilot tag again). The caller
    holds the row (`claimed_by`)."""
    try:
        Reporter(client, pt, tags).wait_ended(stopped_waiting_text(by, pt.connection.pilot_tag))
    except AsanaError as exc:
        if not exc.permanent:
            # Tried again later, with the steps done kept: a waiting row by the next look at
            # the waiting tasks; an approved one the runner held is approved again, and the
            # next claim finds it still ineligible and ends the wait.
            log.warning("ASANA-%s: could not end the wait: %s", pt.task_gid, exc)
            ProcessedTask.objects.filter(
                pk=pt.pk, claimed_by=pt.claimed_by, state__in=(State.CLAIMED, State.RUNNING)
            ).update(state=State.APPROVED)
            _let_go(pt)
            return
    now = timezone.now()
    with transaction.atomic():
        ProcessedTask.objects.filter(pk=pt.pk, claimed_by=pt.claimed_by).update(
            state=State.STOPPED, finished_at=now, lease_expires_at=None, error=f"stopped by {by}"
        )
        audit.record_task(
            Action.PIPELINE_STOP_REQUESTED,
            pt,
            outcome="ok",
            detail=f"{by}, while waiting for approval",
            actor_label=ACTOR,
        )
    log.info("ASANA-%s: the wait for approval ended (%s)", pt.task_gid, by)


# -- deciding ----------------------------------------------------------------------------


def admin_name(user: User | AnonymousUser) -> str:
    assert user.is_authenticated  # the admin's views need a signed-in user
    return f"{user.get_full_name() or user.get_username()} (in pilotsite)"


def approve(pt: ProcessedTask, *, by: str, note: str = "", actor: audit.Actor = None) -> bool:
    """Approve a waiting task: a conditional UPDATE from `awaiting_approval`, so of two
    approvals arriving together (the admin's button, the Asana tag) exactly one counts.
    `by` says who and how; `note` (optional) is posted with the "started" comment. Audited
    as `pipeline.approved` in the same transaction. False when it was not waiting."""
    now = timezone.now()
    with transaction.atomic():
        won = ProcessedTask.objects.filter(pk=pt.pk, state=State.AWAITING_APPROVAL).update(
            state=State.APPROVED,
            decision=Decision.APPROVED,
            decided_by=by[:200],
            decided_at=now,
            decision_note=note.strip(),
            lease_expires_at=None,
        )
        if won:
            _audit_decision(Action.PIPELINE_APPROVED, pt, by, note, actor)
    if won:
        log.info("ASANA-%s approved by %s", pt.task_gid, by)
    return won == 1


def reject(pt: ProcessedTask, *, by: str, note: str = "", actor: audit.Actor = None) -> bool:
    """Reject a waiting task: it is never run. Conditional UPDATE to `rejected` (so a
    rejection and an approval never both count), a run recorded with outcome `rejected`,
    audited as `pipeline.rejected`. The report in Asana is `finish_rejection`'s (the
    decision's job, or the next look at the waiting tasks). False when it was not waiting."""
    now = timezone.now()
    with transaction.atomic():
        won = ProcessedTask.objects.filter(pk=pt.pk, state=State.AWAITING_APPROVAL).update(
            state=State.REJECTED,
            decision=Decision.REJECTED,
            decided_by=by[:200],
            decided_at=now,
            decision_note=note.strip(),
            lease_expires_at=None,
            finished_at=None,
        )
        if won:
            text = f"rejected by {by}" + (f": {note.strip()}" if note.strip() else "")
            Run.objects.get_or_create(
                processed_task=pt,
                number=pt.attempts,
                defaults={
                    "trigger": Run.Trigger.APPROVAL,
                    "outcome": Run.Outcome.REJECTED,
                    "started_at": now,
                    "finished_at": now,
                    "error": redact(text),
                },
            )
            _audit_decision(Action.PIPELINE_REJECTED, pt, by, note, actor)
    if won:
        log.info("ASANA-%s rejected by %s", pt.task_gid, by)
    return won == 1


def _audit_decision(
    action: Action, pt: ProcessedTask, by: str, note: str, actor: audit.Actor
) -> None:
    audit.record(
        action,
        target=f"task {pt.task_gid}",
        detail=by + (f" — note: {note.strip()}" if note.strip() else ""),
        actor=actor,
        actor_label=ACTOR if actor is None else "",
        connection=pt.connection,
    )


def finish_rejection(pt: ProcessedTask, client: AsanaClient) -> bool:
    """Report a rejection in Asana (the pilot, waiting and approved tags removed, the
    "Rejected by" comment with the note); True once reported. Safe to run twice."""
    if not _take(pt, State.REJECTED):
        return False
    try:
        tags = resolve_tags(pt.connection, client)
        text = rejected_text(pt.decided_by, pt.decision_note, pt.connection.pilot_tag)
        Reporter(client, pt, tags).wait_ended(text)
    except AsanaError as exc:
        log.warning("ASANA-%s: the rejection is not reported yet: %s", pt.task_gid, exc)
        _let_go(pt)
        return False
    ProcessedTask.objects.filter(pk=pt.pk, claimed_by=pt.claimed_by).update(
        finished_at=timezone.now(), lease_expires_at=None
    )
    return True


def after_decision(pk: int) -> str:
    """What follows a decision made in the admin (its job, queued by the button): an
    approved task is claimed and run here; a rejection is reported in Asana. Safe to run
    twice, and after the next poll did it already. Returns what it did, for the job's log."""
    pt = ProcessedTask.objects.select_related("connection").filter(pk=pk).first()
    if pt is None:
        return "gone"
    if pt.state == State.REJECTED and pt.finished_at is None:
        with client_for(pt.connection) as client:
            reported = finish_rejection(pt, client)
        return (
            f"ASANA-{pt.task_gid} rejection {'reported' if reported else 'left for the next poll'}"
        )
    if pt.state != State.APPROVED:
        return f"ASANA-{pt.task_gid} is {pt.state}: nothing to do"
    try:
        claimed = claim(pt.connection, pt.task_gid, source="admin", runner=Runner.QUEUE)
    except breaker.Paused as exc:
        return f"ASANA-{pt.task_gid} waits: {exc}"
    if claimed is None:
        return f"ASANA-{pt.task_gid} was claimed by another process"
    done = run_claimed(claimed.pk, claimed.claimed_by)
    return f"ASANA-{pt.task_gid} {done.state if done else 'released'}"


# -- looking at the waiting tasks in Asana -----------------------------------------------


@dataclass
class Checked:
    """What one look at the waiting tasks did, by task GID."""

    approved: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    rejections_reported: list[str] = field(default_factory=list)


# Checked against the contract's opt_fields enum for GET /tasks/{task_gid}/stories.
TAG_STORY_FIELDS = ("resource_subtype", "created_at", "created_by.name", "tag.name")


def _newest_story(
    client: AsanaClient, pt: ProcessedTask, subtypes: tuple[str, ...], tag_name: str = ""
) -> dict[str, Any] | None:
    """The task's newest story of these subtypes (about the tag `tag_name`, when given)."""
    found = None
    for story in client.stories(pt.task_gid, TAG_STORY_FIELDS):
        if story.get("resource_subtype") not in subtypes:
            continue
        if tag_name and str((story.get("tag") or {}).get("name") or "") != tag_name:
            continue
        found = story
    return found


def _approver(connection: AsanaConnection, user: dict[str, Any] | None) -> str | None:
    """The name of the mapped approver this Asana user is, or None."""
    gid = str((user or {}).get("gid") or "")
    if not gid:
        return None
    mapping = (
        AsanaMapping.objects.select_related("employee")
        .filter(connection=connection, asana_user_gid=gid, employee__is_approver=True)
        .first()
    )
    return mapping.employee.name if mapping else None


def check_waiting(
    connection: AsanaConnection, client: AsanaClient, *, gids: list[str] | None = None
) -> Checked:
    """Look at the connection's waiting tasks in Asana (those in `gids` only, when given):
    finish reports cut short, end the wait of those Asana asks to stop, approve those an
    approver tagged `pilot-approved`, refuse the tag of anyone else; and report rejections
    not reported yet. See the module's docstring for the cost."""
    checked = Checked()
    rows = ProcessedTask.objects.filter(connection=connection).filter(
        Q(state=State.AWAITING_APPROVAL) | Q(state=State.REJECTED, finished_at__isnull=True)
    )
    if gids is not None:
        rows = rows.filter(task_gid__in=gids)
    waiting = list(rows.select_related("connection"))
    if not waiting:
        return checked
    tags = resolve_tags(connection, client)
    for pt in waiting:
        if pt.state == State.REJECTED:
            if finish_rejection(pt, client):
                checked.rejections_reported.append(pt.task_gid)
            continue
        try:
            _check_one(pt, client, tags, checked)
        except (AsanaNotFound, AsanaForbidden):
            continue  # deleted or hidden: it waits until someone decides in the admin
        except AsanaError as exc:
            log.warning("ASANA-%s: could not look at its approval: %s", pt.task_gid, exc)
    return checked


def _check_one(
    pt: ProcessedTask, client: AsanaClient, tags: WorkspaceTags, checked: Checked
) -> None:
    held = pt.lease_expires_at is not None and pt.lease_expires_at > timezone.now()
    if held:
        return
    if "comment:awaiting" not in (pt.report_steps or []) and _take(pt, State.AWAITING_APPROVAL):
        _report_awaiting(pt, client, tags)
        _let_go(pt)
    task = client.task(pt.task_gid, STOP_FIELDS)
    signal = stop_signal(task, tags)
    if signal is not None:
        story = _newest_story(client, pt, SIGNAL_STORIES[signal])
        who = person_name(pt.connection, (story or {}).get("created_by"))
        if _take(pt, State.AWAITING_APPROVAL):
            end_wait(pt, client, tags, f"{who} ({SIGNAL_TEXT[signal]})")
            checked.stopped.append(pt.task_gid)
        return
    if not _carries(task, APPROVED_TAG):
        return
    story = _newest_story(client, pt, ("added_to_tag",), APPROVED_TAG)
    user = (story or {}).get("created_by")
    name = _approver(pt.connection, user)
    if name is not None:
        if approve(pt, by=f"{name} (added {APPROVED_TAG} in Asana)"):
            checked.approved.append(pt.task_gid)
        return
    story_gid = str((story or {}).get("gid") or "unknown")
    if f"comment:refused:{story_gid}" in (pt.report_steps or []):
        return
    who = person_name(pt.connection, user) if user else "someone (Asana did not say who)"
    if not _take(pt, State.AWAITING_APPROVAL):
        return
    try:
        Reporter(client, pt, tags).refused(
            story_gid, refused_text(who, approver_names(pt.connection))
        )
    finally:
        _let_go(pt)
    audit.record_task(
        Action.PIPELINE_APPROVAL_REFUSED,
        pt,
        outcome="warning",
        detail=f"{who} added {APPROVED_TAG} but is not an approver",
        actor_label=ACTOR,
    )
    checked.refused.append(pt.task_gid)


def _carries(task: dict[str, Any], name: str) -> bool:
    return any(str(t.get("name") or "") == name for t in task.get("tags") or [])
