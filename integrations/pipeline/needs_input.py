"""Asking for input: the executor's question in Asana, the task waiting for a reply, and the
reply that starts the next run.

An executor asks by ending with `{"needs_input": "Which environment should I deploy to?"}`.
The run's report (`report.Reporter`) adds `pilot-needs-input`, removes `pilot-in-progress` and
posts the question as a comment that @-mentions the person who should answer (`addressee`:
the task's assignee, else whoever added the pilot tag, else its creator); the ledger row is
then `waiting`, which no poll or webhook takes for a new task.

A **reply** is the next comment on the task written by a person: a `comment_added` story
after the cursor whose author is not the token's own user (`stories.token_user_gid`; system
stories have other subtypes). The cursor is the last reply taken, or the first question before any
reply, so a comment written while a later run was still going answers that run's question:
it is kept for the next round, not lost. Replies are noticed by webhook story events
(`webhooks.delivery`) and by every poll; both read the waiting task's stories (one request,
`look_at_waiting`) and claim the task back with one conditional UPDATE (waiting → claimed,
`resume`), so a reply seen by both at once starts one run (trigger `reply`), whose input
carries the conversation so far (`for_executor`). Everything lives in the ledger row
(`ProcessedTask.conversation`), so a restart while waiting loses nothing.

The same stories say whether someone stopped the waiting task in Asana (pilot tag removed,
completed, `pilot-stop` added: `stop_waiting`), and each poll posts one reminder after
PILOT_INPUT_REMIND_HOURS of waiting and releases the task (it fails, saying so) after
PILOT_INPUT_RELEASE_HOURS. An executor may ask PILOT_INPUT_MAX_ROUNDS questions; one more
fails the run (`too_many_questions`).
"""

import html
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from integrations import audit
from integrations.asana.client import AsanaClient
from integrations.asana.creates import create_once
from integrations.asana.errors import AsanaError, AsanaInvalidRequest
from integrations.asana.times import parse_time
from integrations.audit import Action
from integrations.models import AsanaConnection, AuditLog, ProcessedTask, Run
from integrations.pipeline.stop import (
    SIGNAL_TEXT,
    person_name,
    record_stop_request,
    story_signal,
)
from integrations.pipeline.stories import STORY_FIELDS, read_stories, token_user_gid
from integrations.pipeline.tags import WorkspaceTags, resolve_tags
from pilotsite.redact import redact

log = logging.getLogger(__name__)
State = ProcessedTask.State
Runner = ProcessedTask.Runner

QUESTION_PREFIX = "Pilot needs your input to continue:"
REPLY_HINT = "Reply with a comment on this task; Pilot goes on with your answer."
REMINDER_PREFIX = "Reminder: Pilot is still waiting for a reply to its question:"
STOPPED_WAITING = "stopped on request while waiting for input"
# Checked against the contract's opt_fields enum for GET /tasks/{task_gid}.
ADDRESSEE_FIELDS = ("assignee.name", "created_by")
COMMENT = "comment_added"


# -- the conversation ----------------------------------------------------------------------


def entry(
    kind: str, text: str, *, run: int, at: str = "", author: str = "", author_gid: str = ""
) -> dict[str, Any]:
    """One turn of the conversation as the ledger keeps it (see `ProcessedTask.conversation`)."""
    return {
        "kind": kind,
        "text": text,
        "author": author,
        "author_gid": author_gid,
        "at": at or timezone.now().isoformat(),
        "story_gid": "",
        "run": run,
    }


def for_executor(conversation: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The conversation as the executor's input carries it: each question and reply, oldest
    first, as {"kind": "question" | "reply", "text", "author", "at" (ISO time)}."""
    return [
        {
            "kind": str(e.get("kind") or ""),
            "text": str(e.get("text") or ""),
            "author": str(e.get("author") or ""),
            "at": str(e.get("at") or ""),
        }
        for e in conversation
    ]


def questions_asked(conversation: list[dict[str, Any]]) -> int:
    return sum(1 for e in conversation if e.get("kind") == "question")


def too_many_questions(question: str) -> str:
    """The failure when an executor asks once more than PILOT_INPUT_MAX_ROUNDS allows."""
    rounds = settings.PILOT_INPUT_MAX_ROUNDS
    return (
        f"the executor asked for input more than {rounds} time(s) (PILOT_INPUT_MAX_ROUNDS); "
        f"its last question was: {question}"
    )


def released_text() -> str:
    """The failure a task waiting too long is released with (its comment says so)."""
    hours = settings.PILOT_INPUT_RELEASE_HOURS
    return (
        f"no reply came within {hours:g} hours of the question, so pilotsite released this "
        "task; remove the pilot-failed tag or retry from the admin to run it again (the "
        "conversation starts over)"
    )


def current_question(pt: ProcessedTask) -> dict[str, Any] | None:
    """The question the task waits on (the last one asked), or None."""
    for turn in reversed(pt.conversation or []):
        if turn.get("kind") == "question":
            return turn
    return None


def _cursor(conversation: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The last story taken into the conversation as a reply, else the first question."""
    for turn in reversed(conversation):
        if turn.get("kind") == "reply":
            return turn
    return next((t for t in conversation if t.get("kind") == "question"), None)


def stories_after_cursor(
    stories: list[dict[str, Any]], conversation: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The task's stories (oldest first, as Asana lists them) after the cursor: after its
    story when Asana still lists it, else those created later than it."""
    cursor = _cursor(conversation)
    if cursor is None:
        return []
    gid = str(cursor.get("story_gid") or "")
    for index, story in enumerate(stories):
        if gid and str(story.get("gid")) == gid:
            return stories[index + 1 :]
    since = parse_time(cursor.get("at"))
    if since is None:
        return []
    return [s for s in stories if (m := parse_time(s.get("created_at"))) and m > since]


def _author_gid(story: dict[str, Any]) -> str:
    return str((story.get("created_by") or {}).get("gid") or "")


def find_reply(
    stories: list[dict[str, Any]], conversation: list[dict[str, Any]], me: str
) -> dict[str, Any] | None:
    """The reply: the first comment after the cursor written by a person (a user who is not
    the token's own user `me`), or None."""
    for story in stories_after_cursor(stories, conversation):
        author = _author_gid(story)
        if story.get("resource_subtype") == COMMENT and author and author != me:
            return story
    return None


def stop_story(
    stories: list[dict[str, Any]], conversation: list[dict[str, Any]], tags: WorkspaceTags
) -> tuple[str, dict[str, Any] | None] | None:
    """(the stop signal, who) when a story after the cursor stops the waiting task: it was
    completed, its pilot tag removed or `pilot-stop` added (`stop.story_signal`); None
    otherwise."""
    for story in stories_after_cursor(stories, conversation):
        signal = story_signal(story, tags)
        if signal:
            return signal, story.get("created_by")
    return None


def reply_entry(story: dict[str, Any], connection: AsanaConnection, run: int) -> dict[str, Any]:
    """A reply story as a turn of the conversation."""
    author = story.get("created_by") or {}
    turn = entry(
        "reply",
        redact(str(story.get("text") or "").strip()),
        run=run,
        at=str(story.get("created_at") or ""),
        author=person_name(connection, author),
        author_gid=_author_gid(story),
    )
    turn["story_gid"] = str(story.get("gid") or "")
    return turn


# -- who asks, who answers -----------------------------------------------------------------


def addressee(client: AsanaClient, task_gid: str, tags: WorkspaceTags) -> dict[str, Any] | None:
    """Who should answer: the task's assignee, else whoever added the pilot tag (the newest
    `added_to_tag` story of a pilot tag, `stories.read_stories`), else the task's creator;
    None when Asana names nobody. One task read, plus one stories read when the task has
    no assignee."""
    task = client.task(task_gid, ADDRESSEE_FIELDS)
    if task.get("assignee"):
        return task["assignee"]
    tagger = read_stories(client, task_gid, own_user_gid="", pilot_tag_gids=tags.pilot_gids).tagger
    return tagger or task.get("created_by")


def mention(person: dict[str, Any] | None) -> str:
    """An Asana rich-text @-mention of the person (developers.asana.com "Rich text": a link
    to an object by its GID, `<a data-asana-gid="…"/>`), or "" when there is nobody."""
    gid = str((person or {}).get("gid") or "")
    return f'<a data-asana-gid="{gid}"/> ' if gid.isdigit() else ""


def question_html(question: str, person: dict[str, Any] | None) -> str:
    return (
        f"<body>{mention(person)}{QUESTION_PREFIX}\n{html.escape(question, quote=False)}\n"
        f"{REPLY_HINT}</body>"
    )


def reminder_html(question: str, person: dict[str, Any] | None) -> str:
    return (
        f"<body>{mention(person)}{REMINDER_PREFIX}\n{html.escape(question, quote=False)}\n"
        f"{REPLY_HINT}</body>"
    )


def _comment_with_mention(
    client: AsanaClient,
    pt: ProcessedTask,
    rich: str,
    marker: str,
    since: datetime | None,
    sleep: Callable[[float], None],
) -> dict[str, Any]:
    """Post the rich comment once (`create_once`: a lost answer is looked for among the
    task's comments carrying `marker` since `since`); when Asana refuses the rich text, the
    same words as plain text, without the mention."""
    from integrations.asana.richtext import to_text

    def landed() -> dict[str, Any] | None:
        for story in client.stories(pt.task_gid, STORY_FIELDS):
            created = parse_time(story.get("created_at"))
            if since and created and created < since - timedelta(seconds=5):
                continue
            if story.get("resource_subtype") == COMMENT and marker in str(story.get("text")):
                return story
        return None

    def send(**body: str) -> dict[str, Any]:
        return create_once(
            lambda: client.add_comment(pt.task_gid, **body),
            landed,
            what=f"ASANA-{pt.task_gid} comment",
            sleep=sleep,
        )

    try:
        return send(html_text=rich)
    except AsanaInvalidRequest:
        return send(text=to_text(rich))


def post_question(
    client: AsanaClient,
    pt: ProcessedTask,
    tags: WorkspaceTags,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Post this run's question (recorded in the conversation by the run) as a comment
    mentioning `addressee`, and record its story on the question's turn. Posted once: a
    question whose story is recorded is not posted again. Raises AsanaError."""
    conversation = list(pt.conversation or [])
    turn = current_question(pt)
    if turn is None or turn.get("run") != pt.attempts or turn.get("story_gid"):
        return
    person = addressee(client, pt.task_gid, tags)
    since = pt.started_at or pt.claimed_at
    story = _comment_with_mention(
        client, pt, question_html(turn["text"], person), QUESTION_PREFIX, since, sleep
    )
    index = conversation.index(turn)
    conversation[index] = turn | {
        "story_gid": str(story.get("gid") or ""),
        "at": str(story.get("created_at") or turn["at"]),
        "asked": str((person or {}).get("name") or ""),
        "asked_gid": str((person or {}).get("gid") or ""),
    }
    ProcessedTask.objects.filter(pk=pt.pk, claimed_by=pt.claimed_by).update(
        conversation=conversation
    )
    pt.conversation = conversation


# -- looking at waiting tasks --------------------------------------------------------------


@dataclass
class WaitingLook:
    """What one look at the waiting tasks found: `replies` (the row and its reply story, to
    be claimed with `resume`), the GIDs `stopped`, `reminded` and `released`."""

    replies: list[tuple[ProcessedTask, dict[str, Any]]] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    reminded: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)


def look_at_waiting(
    connection: AsanaConnection,
    client: AsanaClient,
    *,
    gids: Iterable[str] | None = None,
    timers: bool = False,
    now: datetime | None = None,
) -> WaitingLook:
    """Read the stories of the connection's waiting tasks (those in `gids` only, when
    given): one request each. A stop signal stops the task (`stop_waiting`); a reply is
    returned for `resume`; with `timers` (the poll), a task without either is reminded
    or released when its time has come. A failure on one task is logged and the others go
    on. Raises AsanaError when the tags or the token's user cannot be read."""
    rows = ProcessedTask.objects.filter(connection=connection, state=State.WAITING)
    if gids is not None:
        rows = rows.filter(task_gid__in=list(gids))
    waiting = list(rows.order_by("waiting_since", "pk"))
    found = WaitingLook()
    if not waiting:
        return found
    me = token_user_gid(client)
    tags = resolve_tags(connection, client)
    now = now or timezone.now()
    for pt in waiting:
        pt.connection = connection
        try:
            stories = list(client.stories(pt.task_gid, STORY_FIELDS))
        except AsanaError as exc:
            log.warning("ASANA-%s: could not read its stories: %s", pt.task_gid, exc)
            continue
        stop = stop_story(stories, pt.conversation, tags)
        if stop is not None:
            signal, user = stop
            by = f"{person_name(connection, user)} ({SIGNAL_TEXT[signal]})"
            if stop_waiting(pt, by=by, client=client):
                found.stopped.append(pt.task_gid)
            continue
        reply = find_reply(stories, pt.conversation, me)
        if reply is not None:
            found.replies.append((pt, reply))
        elif timers:
            _timers(pt, client, tags, now, found)
    return found


def _timers(
    pt: ProcessedTask, client: AsanaClient, tags: WorkspaceTags, now: datetime, found: WaitingLook
) -> None:
    since = pt.waiting_since
    if since is None:
        return
    waited = now - since
    if waited >= timedelta(hours=settings.PILOT_INPUT_RELEASE_HOURS):
        if close_waiting(pt, outcome="failure", error=released_text(), client=client):
            found.released.append(pt.task_gid)
        return
    due = waited >= timedelta(hours=settings.PILOT_INPUT_REMIND_HOURS)
    if due and pt.reminded_at is None and remind(pt, client, tags, now):
        found.reminded.append(pt.task_gid)


def remind(pt: ProcessedTask, client: AsanaClient, tags: WorkspaceTags, now: datetime) -> bool:
    """Post the one reminder (taken by a conditional UPDATE of `reminded_at`, given back
    when Asana fails so the next poll tries again). True when it was posted."""
    mine = ProcessedTask.objects.filter(
        pk=pt.pk, state=State.WAITING, attempts=pt.attempts, reminded_at__isnull=True
    )
    if mine.update(reminded_at=now) != 1:
        return False
    question = current_question(pt) or {}
    try:
        person = addressee(client, pt.task_gid, tags)
        rich = reminder_html(str(question.get("text") or ""), person)
        _comment_with_mention(client, pt, rich, REMINDER_PREFIX, now, time.sleep)
    except AsanaError as exc:
        ProcessedTask.objects.filter(pk=pt.pk, reminded_at=now).update(reminded_at=None)
        log.warning("ASANA-%s: the reminder was not posted: %s", pt.task_gid, exc)
        audit.record_task(
            Action.ASANA_COMMENT,
            pt,
            outcome=AuditLog.Outcome.ERROR,
            detail=f"{REMINDER_PREFIX} — {exc}",
            actor_label="pipeline",
        )
        return False
    pt.reminded_at = now
    audit.record_task(
        Action.ASANA_COMMENT,
        pt,
        outcome=AuditLog.Outcome.OK,
        detail=f"{REMINDER_PREFIX} {question.get('text', '')}",
        actor_label="pipeline",
    )
    return True


# -- leaving the wait ----------------------------------------------------------------------


def resume(pt: ProcessedTask, reply: dict[str, Any], *, runner: Runner) -> ProcessedTask | None:
    """Claim a waiting task back for `runner` with its reply: one conditional UPDATE
    (waiting → claimed, the reply added to the conversation), so when a webhook and a poll
    see the same reply at once only one run starts. None when someone else took it. Raises
    breaker.Paused, claiming nothing, while the connection's automation is paused (the
    reply is taken once it is resumed: it stays after the cursor)."""
    from integrations.pipeline import breaker
    from integrations.pipeline.claims import claim_lease, new_token

    breaker.check_claim(pt.connection)
    number = pt.attempts + 1
    conversation = [*(pt.conversation or []), reply_entry(reply, pt.connection, number)]
    now = timezone.now()
    won = ProcessedTask.objects.filter(pk=pt.pk, state=State.WAITING, attempts=pt.attempts).update(
        state=State.CLAIMED,
        runner=runner,
        claimed_by=new_token(runner),
        claimed_at=now,
        lease_expires_at=now + claim_lease(),
        source="reply",
        attempts=F("attempts") + 1,
        conversation=conversation,
    )
    if won != 1:
        return None
    audit.record_task(
        Action.PIPELINE_REPLY,
        pt,
        outcome=AuditLog.Outcome.OK,
        detail=f"{conversation[-1]['author']}: {conversation[-1]['text'][:200]}",
        actor_label="pipeline",
    )
    return ProcessedTask.objects.select_related("connection").get(pk=pt.pk)


def give_back(pt: ProcessedTask, token: str) -> bool:
    """Undo a reply's claim on which nothing ran: the task waits again and the reply is
    taken again by the next look (it leaves the conversation)."""
    conversation = [
        t
        for t in pt.conversation or []
        if not (t.get("kind") == "reply" and t.get("run") == pt.attempts)
    ]
    return (
        ProcessedTask.objects.filter(
            pk=pt.pk, claimed_by=token, state__in=(State.CLAIMED, State.RUNNING)
        ).update(
            state=State.WAITING,
            attempts=F("attempts") - 1,
            conversation=conversation,
            lease_expires_at=None,
        )
        == 1
    )


def close_waiting(
    pt: ProcessedTask,
    *,
    outcome: str,
    error: str,
    client: AsanaClient,
    by: str = "",
    actor: audit.Actor = None,
) -> bool:
    """End a waiting task's wait as `outcome` ("stopped" or "failure") and report it like a
    run's end (`outcome.finish_report`): taken by a conditional UPDATE (waiting → running), so
    a webhook and a poll never both report it. `by` (a stop) is recorded on the run that
    asked. False when the task no longer waits."""
    from integrations.pipeline.claims import new_token, run_lease
    from integrations.pipeline.outcome import finish_report

    now = timezone.now()
    token = new_token(Runner.IN_PROCESS)
    won = ProcessedTask.objects.filter(pk=pt.pk, state=State.WAITING, attempts=pt.attempts).update(
        state=State.RUNNING,
        runner=Runner.IN_PROCESS,
        claimed_by=token,
        lease_expires_at=now + run_lease(),
        outcome=outcome,
        error=error,
        report_steps=[],
    )
    if won != 1:
        return False
    if by:
        Run.objects.filter(processed_task=pt, number=pt.attempts).update(
            stop_requested_at=now, stop_requested_by=by[:200]
        )
        record_stop_request(pt, by=by, actor=actor)
    row = ProcessedTask.objects.select_related("connection").get(pk=pt.pk)
    finish_report(row, client)
    return True


def stop_waiting(
    pt: ProcessedTask, *, by: str, client: AsanaClient, actor: audit.Actor = None
) -> bool:
    """Stop a task waiting for input: reported like a stopped run (its pilot tags,
    `pilot-stop` and `pilot-needs-input` removed, "Stopped by …"); `by` says who and how."""
    return close_waiting(
        pt, outcome="stopped", error=STOPPED_WAITING, client=client, by=by, actor=actor
    )
