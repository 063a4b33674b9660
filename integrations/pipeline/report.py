"""Reporting a task's progress and outcome on the task in Asana, exactly once.

Each step is written to `ProcessedTask.report_steps` after Asana confirms it, and a step
already recorded is never sent again, so a report interrupted by a 429, a 500, a timeout
or a crash can be resumed without duplicating a comment or a tag. A comment or attachment
whose POST was answered 5xx or not at all may have landed: every create goes through
`create_once`, which checks the task's stories (or attachments) before sending it again.
Every mutation is audited with its outcome.

The new status tag is added before `pilot-in-progress` is removed, so the task carries
a status tag at every moment and a concurrent poll never takes it for a new task.

Shadow mode is decided here, in one place (`Reporter._sends`): a shadow row's reporter
sends nothing and records each write it would have sent on the run (`Run.would_post`).
"""

import functools
import html
import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings

from integrations import audit
from integrations.asana.client import AsanaClient
from integrations.asana.creates import create_once
from integrations.asana.errors import (
    AsanaError,
    AsanaForbidden,
    AsanaInvalidRequest,
    AsanaNotFound,
)
from integrations.asana.richtext import to_text
from integrations.asana.times import parse_time
from integrations.audit import Action
from integrations.models import AuditLog, ProcessedTask, Run
from integrations.pipeline.convert import APPROVED_TAG, AWAITING_TAG, NEEDS_INPUT_TAG
from integrations.pipeline.execute import last_lines
from pilotsite.redact import redact
from pilotsite.untrusted import web_url

if TYPE_CHECKING:
    from integrations.pipeline.tags import WorkspaceTags

log = logging.getLogger(__name__)

ACTOR = "pipeline"
STARTED_TEXT = "Pilot started working on this task"
RESUMED_TEXT = "Pilot got a reply and is working on this task again"
DONE_TEXT = "Successfully completed"
# An executor that exits 0 without a result says nothing about what it did; the comment
# says so rather than reading like a report with its summary missing.
NO_SUMMARY = "no summary was given"
# Completing an approval task through the API records it as approved (the spec's
# `approval_status`: "If you set completed to true, this field will be set to `approved`"),
# so pilotsite never completes one: the decision belongs to the approver.
APPROVAL_NOTE = (
    "This is an approval task: pilotsite does not approve or complete it; the approver decides."
)
FAILED_PREFIX = "Failed: "
FAILURE_DETAIL_LIMIT = 1000
ATTEMPTS = 3
# Asana's clock and ours may differ a little; a story older than this before the attempt
# started belongs to an earlier attempt.
CLOCK_SLACK = timedelta(seconds=5)
GONE = (AsanaNotFound, AsanaForbidden)


class Reporter:
    def __init__(
        self,
        client: AsanaClient,
        processed: ProcessedTask,
        tag_gids: "WorkspaceTags | dict[str, str]",
        *,
        sleep: Callable[[float], None] = time.sleep,
        run: "Run | None" = None,
        carried: set[str] | None = None,
    ) -> None:
        self.client = client
        self.run = run
        self.pt = processed
        self.tags = tag_gids
        self.gid = processed.task_gid
        self.steps: list[str] = list(processed.report_steps or [])
        self._sleep = sleep
        self.shadow = processed.shadow
        # The tag names the task carries, when the caller read them: a tag it does not
        # carry is not removed (one request saved).
        self.carried = carried

    # -- the reports -------------------------------------------------------------------

    def started(self) -> None:
        """`pilot-in-progress` and the "started" comment; a run a reply started then drops
        `pilot-needs-input` (after, so the task carries a status tag at every moment)."""
        from integrations.pipeline.progress import run_page_url

        url = run_page_url(self.run.pk) if self.run is not None else ""
        self._tag("pilot-in-progress")
        approval = ""
        resumed = self.run is not None and self.run.trigger == Run.Trigger.REPLY
        if resumed:
            self._tag(NEEDS_INPUT_TAG, add=False)
        elif self.pt.decision == ProcessedTask.Decision.APPROVED:
            # The waiting is over: its tag goes once `pilot-in-progress` is on, and so does
            # `pilot-approved`, so the next attempt asks for approval again.
            self._untag_every(AWAITING_TAG, "started")
            if self.carried is None or APPROVED_TAG in self.carried:
                self._untag_every(APPROVED_TAG, "started")
            approval = f" (approved by {redact(self.pt.decided_by)}"
            note = redact(self.pt.decision_note.strip())
            approval += f": {note})" if note else ")"
        text = f"{RESUMED_TEXT if resumed else STARTED_TEXT}{approval}"
        text = f"{text}. Follow it here: {url}" if url else text
        self._comment("comment:started", text=text)

    def awaiting(self, text: str) -> None:
        """Approval mode: the task waits; `pilot-awaiting-approval` and a comment saying who
        may approve (`text`)."""
        self._tag(AWAITING_TAG)
        self._comment("comment:awaiting", text=text)

    def refused(self, story_gid: str, text: str) -> None:
        """Someone who may not approve added `pilot-approved` (the story `story_gid`): a
        comment saying so, and the tag is removed so the task keeps waiting visibly."""
        self._comment(f"comment:refused:{story_gid}", text=text)
        self._untag_every(APPROVED_TAG, f"refused:{story_gid}")

    def wait_ended(self, text: str) -> None:
        """A waiting task is rejected, or stopped in Asana before it ran: the pilot tag
        (every tag of that name), `pilot-stop`, `pilot-approved` and then
        `pilot-awaiting-approval` go, and one comment (`text`) says why and how to ask
        again (tag it with the pilot tag again)."""
        pilot_gids = getattr(self.tags, "pilot_gids", ())
        for gid in pilot_gids:
            self._untag_gid("pilot", gid, "ended")
        for name in (STOP_TAG, APPROVED_TAG, AWAITING_TAG):
            self._untag_every(name, "ended")
        self._comment("comment:ended", text=text)

    @property
    def holding_tag(self) -> str:
        """The status tag the task carries until its outcome is reported: `pilot-needs-input`
        while it waits for a reply (its wait is being ended), else `pilot-in-progress`."""
        waited = self.run is not None and self.run.outcome == Run.Outcome.NEEDS_INPUT
        return NEEDS_INPUT_TAG if waited else "pilot-in-progress"

    def finished(self) -> None:
        """Report the recorded outcome; raises AsanaError when a step still fails. The run's
        progress comment is brought up to date first (its last lines were not yet shown)."""
        self._final_progress()
        if self.pt.outcome == "stopped":
            self._stopped()
        elif self.pt.outcome == "success":
            self._tag("pilot-done")
            self._tag(self.holding_tag, add=False)
            self._success_comment()
            if web_url(self.pt.result_url):
                self._attach_link()
            self._complete()
        elif self.pt.outcome == "needs_input":
            self._tag(NEEDS_INPUT_TAG)
            self._tag("pilot-in-progress", add=False)
            self._question()
        else:
            self._tag("pilot-failed")
            self._tag(self.holding_tag, add=False)
            self._comment("comment:failed", text=failure_text(self.pt.error))

    def _final_progress(self) -> None:
        """One last edit of the progress comment, when it lags behind the run's last lines.
        Non-blocking like `_complete`: the outcome's report goes on if Asana refuses it."""
        from integrations.pipeline.progress import final_progress_text

        step = "progress:final"
        # A shadow run never has a progress comment, so nothing is sent or recorded for it.
        text = final_progress_text(self.run) if self.run is not None else ""
        if self.run is None or step in self.steps or not text:
            return
        try:
            self.client.update_comment(self.run.progress_story_gid, text=text)
        except AsanaError as exc:
            log.warning("ASANA-%s: the progress comment stays behind: %s", self.gid, exc)
            self._audit(Action.ASANA_UPDATE_COMMENT, AuditLog.Outcome.WARNING, f"{text} — {exc}")
        else:
            Run.objects.filter(pk=self.run.pk).update(progress_shown=text)
            self._audit(Action.ASANA_UPDATE_COMMENT, AuditLog.Outcome.OK, text)
        self._done(step)

    def _question(self) -> None:
        """The executor's question, mentioning who should answer (`needs_input`)."""
        from integrations.pipeline import needs_input

        question = needs_input.current_question(self.pt) or {}
        tags = self.tags
        assert not isinstance(tags, dict), "a question is reported with the workspace's tags"
        self._step(
            "comment:question",
            lambda: needs_input.post_question(self.client, self.pt, tags, sleep=self._sleep),
            action=Action.ASANA_COMMENT,
            detail=f"{needs_input.QUESTION_PREFIX} {question.get('text', '')}",
        )

    def _stopped(self) -> None:
        """A stop: the pilot tag (every tag of that name) and `pilot-stop` go first, so no
        poll takes the task again, then `pilot-in-progress`; then "Stopped by …". Neither
        `pilot-done` nor `pilot-failed`: the task runs again only when someone tags it."""
        tags = self.tags
        pilot_gids = getattr(tags, "pilot_gids", ())
        stop_gids = tags.by_name.get(STOP_TAG, ()) if hasattr(tags, "by_name") else ()
        for name, gids in (("pilot", pilot_gids), (STOP_TAG, stop_gids)):
            for gid in gids:
                self._step(
                    f"untag:{name}:{gid}",
                    functools.partial(self.client.remove_tag, self.gid, gid),
                    action=Action.ASANA_REMOVE_TAG,
                    detail=f"{name} (stopped)",
                )
        self._tag(self.holding_tag, add=False)
        by = (self.run.stop_requested_by if self.run is not None else "") or "pilotsite"
        pilot = getattr(tags, "pilot_tag", "pilot")
        self._comment("comment:stopped", text=stopped_text(by, pilot))

    # -- steps -------------------------------------------------------------------------

    def _untag_every(self, name: str, why: str) -> None:
        """Remove every tag of this name (duplicates included) the workspace has."""
        by_name = getattr(self.tags, "by_name", {})
        for gid in by_name.get(name, ()):
            self._untag_gid(name, gid, why)

    def _untag_gid(self, name: str, gid: str, why: str) -> None:
        self._step(
            f"untag:{name}:{gid}:{why}",
            functools.partial(self.client.remove_tag, self.gid, gid),
            action=Action.ASANA_REMOVE_TAG,
            detail=f"{name} ({why})",
        )

    def _tag(self, name: str, *, add: bool = True) -> None:
        send = self.client.add_tag if add else self.client.remove_tag
        self._step(
            f"tag:{name}" if add else f"untag:{name}",
            lambda: send(self.gid, self.tags[name]),
            action=Action.ASANA_ADD_TAG if add else Action.ASANA_REMOVE_TAG,
            detail=name,
        )

    @property
    def is_approval(self) -> bool:
        return self.pt.task_subtype == "approval"

    def _success_comment(self) -> None:
        note = APPROVAL_NOTE if self.is_approval else ""
        if not self.pt.result_url:
            text = f"{DONE_TEXT}: {self.pt.result_summary or NO_SUMMARY}"
            self._comment("comment:done", text=f"{text}\n{note}" if note else text)
            return
        rich = success_html(
            self.pt.result_summary, self.pt.result_url, self.pt.result_url_title, note=note
        )
        try:
            self._comment("comment:done", html_text=rich)
        except AsanaInvalidRequest:
            # Asana refused the rich text: the link still gets to the task as plain text.
            self._comment("comment:done", text=to_text(rich))

    def _attach_link(self) -> None:
        url, name = self.pt.result_url, self.pt.result_url_title or self.pt.result_url

        def attach() -> None:
            create_once(
                lambda: self.client.add_external_attachment(self.gid, url, name),
                lambda: next(
                    (a for a in self.client.attachments(self.gid) if a.get("view_url") == url),
                    None,
                ),
                what=f"ASANA-{self.gid} attachment",
                sleep=self._sleep,
            )

        self._step("attachment", attach, action=Action.ASANA_ATTACH_LINK, detail=url)

    def _complete(self) -> None:
        if "complete" in self.steps:
            return
        detail = "left to the approver" if self.is_approval else "completed"
        if not self._sends("complete", Action.ASANA_COMPLETE_TASK, detail):
            return
        if self.is_approval:
            self._audit(Action.ASANA_COMPLETE_TASK, AuditLog.Outcome.OK, "left to the approver")
            self._done("complete")
            return
        try:
            self.client.update_task(self.gid, completed=True)
        except AsanaError as exc:
            if isinstance(exc, GONE):
                raise
            # Non-blocking: the task keeps pilot-done, the person can complete it by hand.
            log.warning("ASANA-%s: could not mark the task completed: %s", self.gid, exc)
            self._audit(Action.ASANA_COMPLETE_TASK, AuditLog.Outcome.WARNING, str(exc))
        else:
            self._audit(Action.ASANA_COMPLETE_TASK, AuditLog.Outcome.OK, "completed")
        self._done("complete")

    def _comment(self, step: str, *, text: str | None = None, html_text: str | None = None) -> None:
        def post() -> None:
            create_once(
                lambda: self.client.add_comment(self.gid, text=text, html_text=html_text),
                lambda: self._landed_comment(text, html_text),
                what=f"ASANA-{self.gid} comment",
                sleep=self._sleep,
            )

        self._step(step, post, action=Action.ASANA_COMMENT, detail=text or html_text or "")

    def _landed_comment(self, text: str | None, html_text: str | None) -> dict[str, Any] | None:
        """Our comment with this text posted during this attempt, or None."""
        wanted = (text if text is not None else to_text(html_text or "")).strip()
        attempt_began = self.pt.started_at or self.pt.claimed_at
        for story in self.client.stories(self.gid):
            if story.get("resource_subtype") != "comment_added":
                continue
            created = parse_time(story.get("created_at"))
            if created and attempt_began and created < attempt_began - CLOCK_SLACK:
                continue
            seen = {
                str(story.get("text") or "").strip(),
                to_text(story.get("html_text") or "").strip(),
            }
            if wanted in seen:
                return story
        return None

    def _step(self, step: str, send: Callable[[], None], *, action: Action, detail: str) -> None:
        """Send one mutation unless already recorded; retry what may succeed later."""
        if step in self.steps or not self._sends(step, action, detail):
            return
        for attempt in range(1, ATTEMPTS + 1):
            try:
                send()
            except AsanaError as exc:
                self._audit(action, AuditLog.Outcome.ERROR, f"{detail} — {exc}")
                if exc.permanent or attempt == ATTEMPTS:
                    raise
                self._sleep(settings.PILOT_REPORT_RETRY_SECONDS * attempt)
                continue
            self._audit(action, AuditLog.Outcome.OK, detail)
            self._done(step)
            return

    def _sends(self, step: str, action: Action, detail: str) -> bool:
        """Shadow mode's one rule: a shadow row's write is not sent; it is recorded on the
        run as what would have been posted (and the step counts as done). True: send it."""
        if not self.shadow:
            return True
        if self.run is not None:
            would = [
                *Run.objects.get(pk=self.run.pk).would_post,
                {"action": str(action), "detail": redact(detail)},
            ]
            Run.objects.filter(pk=self.run.pk).update(would_post=would)
        self._done(step)
        return False

    def _done(self, step: str) -> None:
        self.steps.append(step)
        ProcessedTask.objects.filter(pk=self.pt.pk, claimed_by=self.pt.claimed_by).update(
            report_steps=self.steps
        )
        self.pt.report_steps = list(self.steps)

    def _audit(self, action: Action, outcome: str, detail: str) -> None:
        audit.record_task(action, self.pt, outcome=outcome, detail=detail, actor_label=ACTOR)


STOP_TAG = "pilot-stop"
STOPPED_PREFIX = "Stopped by "


def stopped_text(by: str, pilot_tag: str) -> str:
    """The stop comment: who stopped the run (and how), and how to run the task again."""
    return (
        f"{STOPPED_PREFIX}{redact(by)}. The executor was ended and nothing was reported as "
        f"done or failed. To run this task again, tag it {pilot_tag!r} again."
    )


def failure_text(error: str) -> str:
    """The failure comment: "Failed: " and the recorded error, redacted and bounded to
    about FAILURE_DETAIL_LIMIT characters. The first line (what went wrong) is kept, and of
    the rest (the end of the executor's standard error) the last lines, where the actual
    error is, with a mark saying that earlier output was dropped."""
    detail = redact(error or "unknown error").strip()
    if len(detail) > FAILURE_DETAIL_LIMIT:
        head, _, rest = detail.partition("\n")
        head = head[: FAILURE_DETAIL_LIMIT // 4]
        detail = f"{head}\n{last_lines(rest, FAILURE_DETAIL_LIMIT - len(head) - 1, dropped=True)}"
    return FAILED_PREFIX + detail


def success_html(summary: str, url: str, title: str, *, note: str = "") -> str:
    """Asana rich text: valid XML in <body>, the link as <a href> when it is http(s) (else
    its text), everything escaped; `note` is a last line of its own."""
    text = html.escape(title or url, quote=False)
    href = web_url(url)
    link = f'<a href="{html.escape(href, quote=True)}">{text}</a>' if href else text
    body = f"{DONE_TEXT} — {link}\n{html.escape(summary or NO_SUMMARY, quote=False)}"
    if note:
        body += f"\n{html.escape(note, quote=False)}"
    return f"<body>{body}</body>"
