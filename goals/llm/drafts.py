"""Status drafts: asked of the model, reviewed by a person, posted to Asana only on approval.

- `request_draft` builds the prompt from `prompt.txt` with figures computed from the stored
  history (goals.insight, goals.forecast) — never from the model — asks the model
  (goals.llm.client) and stores a pending `StatusDraft`.
- `approve` takes the draft with one conditional UPDATE (pending or failed -> posting), so two
  approvals never post twice, then posts `POST /status_updates` with the goal as parent
  through `create_once` (a lost answer is looked for before sending again), records the
  outcome and audits who approved it.
- `reject` keeps the draft, marked rejected with who rejected it. Nothing else posts.
"""

import datetime
from pathlib import Path

from django.contrib.auth.models import User
from django.db.models import Q
from django.utils import timezone

from goals import insight
from goals.block import kr_line, status_text
from goals.insight import deadline_text, percent
from goals.llm.client import complete
from goals.models import Goal, GoalStatus, StatusDraft
from integrations.asana.client import AsanaClient, client_for
from integrations.asana.creates import create_once
from integrations.asana.errors import AsanaError
from integrations.audit import Action, record
from integrations.models import AuditLog
from pilotsite.redact import redact

PROMPT = Path(__file__).with_name("prompt.txt")
TEXT_MAX = 5000
# The status type the review form suggests, from the goal's status in Asana.
SUGGESTED_TYPE = {
    GoalStatus.ON_TRACK: StatusDraft.StatusType.ON_TRACK,
    GoalStatus.AT_RISK: StatusDraft.StatusType.AT_RISK,
    GoalStatus.OFF_TRACK: StatusDraft.StatusType.OFF_TRACK,
    GoalStatus.ACHIEVED: StatusDraft.StatusType.ACHIEVED,
    GoalStatus.PARTIAL: StatusDraft.StatusType.PARTIAL,
    GoalStatus.MISSED: StatusDraft.StatusType.MISSED,
    GoalStatus.DROPPED: StatusDraft.StatusType.DROPPED,
}


class DraftError(Exception):
    """A decision that cannot be taken as asked; the message says what to do."""


def figures(goal: Goal, now: datetime.datetime | None = None) -> dict[str, str]:
    """The prompt's values for `goal`, from the stored goal, key results and snapshots."""
    now = now or timezone.now()
    employees = insight.load(type(goal.employee).objects.filter(pk=goal.employee_id), now=now)
    row = next(r for _, rows in employees for r in rows if r.goal.pk == goal.pk)
    history = [
        f"- {s.taken_at:%Y-%m-%d}: {percent(s.progress)}"
        for s in row.goal.snapshots.all()
        if s.progress is not None
    ]
    progress = goal.progress_text or "no metric"
    return {
        "name": goal.name,
        "owner": goal.employee.name,
        "status": status_text(goal),
        "deadline": deadline_text(goal),
        "progress": progress,
        "forecast": "; ".join(t for t in (row.pace_text, row.projection_text) if t)
        or row.forecast.note
        or "none",
        "flags": ", ".join(row.flags) or "none",
        "key_results": "\n".join(kr_line(kr).strip() for kr in row.key_results) or "none",
        "history": "\n".join(history) or "none recorded",
    }


def prompt(values: dict[str, str]) -> str:
    return PROMPT.read_text(encoding="utf-8").format_map(values)


def request_draft(goal: Goal, user: User) -> StatusDraft:
    """Ask the model for a draft of `goal`'s status update; raises goals.llm.client.LLMError."""
    values = figures(goal)
    text = complete([{"role": "user", "content": prompt(values)}])
    draft = StatusDraft.objects.create(
        goal=goal,
        text=text[:TEXT_MAX],
        figures="\n".join(f"{k}: {v}" for k, v in values.items()),
        status_type=SUGGESTED_TYPE.get(goal.status, ""),
        requested_by=user,
    )
    record(
        Action.GOALS_STATUS_DRAFTED,
        target=str(goal),
        actor=user,
        connection=goal.connection,
    )
    return draft


def _validate(text: str, status_type: str) -> str:
    text = text.strip()
    if not text:
        raise DraftError("The status update is empty: write the text to post, or reject it.")
    if len(text) > TEXT_MAX:
        raise DraftError(f"The status update is longer than {TEXT_MAX} characters: shorten it.")
    if status_type not in StatusDraft.StatusType.values:
        raise DraftError(
            "Pick the goal's status for this update (On track, At risk, Off track, Achieved, "
            "Partial, Missed or Dropped)."
        )
    return text


def approve(
    draft: StatusDraft,
    user: User,
    text: str,
    status_type: str,
    *,
    client: AsanaClient | None = None,
) -> StatusDraft:
    """Post the (edited) draft to Asana as a status update on its goal, once.

    Raises DraftError when the text or type is not acceptable or the draft was decided
    already; an Asana failure leaves the draft "failed" with the error (it may be approved
    again) and is audited.
    """
    text = _validate(text, status_type)
    now = timezone.now()
    taken = StatusDraft.objects.filter(
        Q(state=StatusDraft.State.PENDING) | Q(state=StatusDraft.State.FAILED), pk=draft.pk
    ).update(
        state=StatusDraft.State.POSTING,
        text=text,
        status_type=status_type,
        decided_by=user,
        decided_at=now,
        error="",
    )
    if not taken:
        raise DraftError("This draft was already approved or rejected.")
    draft.refresh_from_db()
    goal = draft.goal
    own_client = client is None
    client = client or client_for(goal.connection)
    try:
        posted = create_once(
            lambda: client.create_status_update(goal.asana_gid, status_type, text),
            lambda: next(
                (
                    u
                    for u in client.status_updates(goal.asana_gid)
                    if u.get("text") == text and u.get("status_type") == status_type
                ),
                None,
            ),
            what=f"status update on goal {goal.asana_gid}",
        )
    except AsanaError as exc:
        message = redact(str(exc))
        StatusDraft.objects.filter(pk=draft.pk).update(
            state=StatusDraft.State.FAILED, error=message
        )
        record(
            Action.GOALS_STATUS_POSTED,
            target=str(goal),
            outcome=AuditLog.Outcome.ERROR,
            detail=message,
            actor=user,
            connection=goal.connection,
        )
        draft.refresh_from_db()
        return draft
    finally:
        if own_client:
            client.close()
    StatusDraft.objects.filter(pk=draft.pk).update(
        state=StatusDraft.State.POSTED, asana_gid=str(posted.get("gid") or "")
    )
    record(
        Action.GOALS_STATUS_POSTED,
        target=str(goal),
        detail=f"{StatusDraft.StatusType(status_type).label}: {text}",
        actor=user,
        connection=goal.connection,
    )
    draft.refresh_from_db()
    return draft


def reject(draft: StatusDraft, user: User) -> StatusDraft:
    """Keep the draft, marked rejected by `user`; raises DraftError once it was decided."""
    done = StatusDraft.objects.filter(
        Q(state=StatusDraft.State.PENDING) | Q(state=StatusDraft.State.FAILED), pk=draft.pk
    ).update(state=StatusDraft.State.REJECTED, decided_by=user, decided_at=timezone.now())
    if not done:
        raise DraftError("This draft was already approved or rejected.")
    record(
        Action.GOALS_STATUS_REJECTED,
        target=str(draft.goal),
        actor=user,
        connection=draft.goal.connection,
    )
    draft.refresh_from_db()
    return draft
