"""A run's progress in Asana: ONE comment per run, created at the first progress line and
then edited in place (`PUT /stories/{story_gid}`, spec "Update a story": only comment
stories can have their text updated), at most once per PILOT_PROGRESS_SECONDS, never a
stream of comments. It works from a thread of its own with its own client; when Asana
refuses or fails, progress stays on the run page and the run goes on. When the run ends,
its report brings the comment up to date once (`final_progress_text`, used by `report`).
"""

import logging
import threading
import time
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import connection as db_connection

from integrations import audit
from integrations.asana.client import client_for
from integrations.asana.creates import create_once
from integrations.asana.errors import AsanaError
from integrations.audit import Action
from integrations.models import AuditLog, ProcessedTask

if TYPE_CHECKING:
    from integrations.models import Run

log = logging.getLogger(__name__)

PROGRESS_PREFIX = "Pilot is working on this task."
LINES_SHOWN = 5


def progress_comment_text(lines: list[str], run_url: str = "") -> str:
    """The progress comment: what the executor said last (up to LINES_SHOWN lines, oldest
    first) and, when the site's public URL is known, the run page."""
    shown = "\n".join(f"• {line}" for line in lines[-LINES_SHOWN:])
    text = f"{PROGRESS_PREFIX} Latest progress:\n{shown}"
    return f"{text}\nFollow the run: {run_url}" if run_url else text


class ProgressComment:
    """Keeps a run's one progress comment in Asana up to date (see the module's docstring).

    `offer(lines)` hands the latest lines (any thread); `start()` / `close()` run the thread.
    """

    def __init__(self, pt: ProcessedTask, run: "Run") -> None:
        self.pt, self.run_pk, self.gid = pt, run.pk, pt.task_gid
        self.story_gid = run.progress_story_gid
        self.run_url = run_page_url(run.pk)
        self.given_up = False
        self._lines: list[str] | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name=f"progress-{run.pk}")

    def offer(self, lines: list[str]) -> None:
        if self.pt.shadow:
            # Shadow mode writes nothing to Asana: the progress stays on the run page.
            return
        with self._lock:
            self._lines = list(lines)
        self._wake.set()

    def start(self) -> None:
        if not self.pt.shadow:
            self._thread.start()

    def close(self) -> None:
        self._closed.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join()

    def _take(self) -> list[str] | None:
        with self._lock:
            lines, self._lines = self._lines, None
        return lines

    def _loop(self) -> None:
        client = None
        try:
            while not self._closed.is_set():
                self._wake.wait()
                self._wake.clear()
                if self._closed.is_set() or self.given_up:
                    return
                lines = self._take()
                if not lines:
                    continue
                client = client or client_for(self.pt.connection)
                self._push(client, lines)
                # At most one Asana write per interval; a close ends the wait at once.
                self._closed.wait(settings.PILOT_PROGRESS_SECONDS)
                if self._lines:
                    self._wake.set()
        finally:
            if client is not None:
                client.close()
            db_connection.close()

    def _push(self, client, lines: list[str]) -> None:
        from integrations.models import Run

        text = progress_comment_text(lines, self.run_url)
        try:
            if not self.story_gid:
                story = create_once(
                    lambda: client.add_comment(self.gid, text=text),
                    lambda: next(
                        (
                            s
                            for s in client.stories(self.gid)
                            if s.get("resource_subtype") == "comment_added"
                            and str(s.get("text") or "").strip() == text.strip()
                        ),
                        None,
                    ),
                    what=f"ASANA-{self.gid} progress comment",
                    sleep=time.sleep,
                )
                self.story_gid = str(story.get("gid") or "")
                Run.objects.filter(pk=self.run_pk).update(
                    progress_story_gid=self.story_gid, progress_shown=text
                )
                self._audit(Action.ASANA_COMMENT, AuditLog.Outcome.OK, text)
            else:
                client.update_comment(self.story_gid, text=text)
                Run.objects.filter(pk=self.run_pk).update(progress_shown=text)
                self._audit(Action.ASANA_UPDATE_COMMENT, AuditLog.Outcome.OK, text)
        except AsanaError as exc:
            log.warning("ASANA-%s: progress not shown in Asana: %s", self.gid, exc)
            self._audit(Action.ASANA_UPDATE_COMMENT, AuditLog.Outcome.WARNING, f"{text} — {exc}")
            if exc.permanent:
                # Deleted, not ours, refused: the run page keeps the progress.
                self.given_up = True

    def _audit(self, action: Action, outcome: str, detail: str) -> None:
        audit.record_task(action, self.pt, outcome=outcome, detail=detail, actor_label="pipeline")


def final_progress_text(run: "Run") -> str:
    """The text a run's progress comment should end with, or "" when there is nothing to
    edit: no progress comment, or the comment already shows the run's last lines."""
    if not run.progress_story_gid or not run.progress:
        return ""
    text = progress_comment_text([line["text"] for line in run.progress], run_page_url(run.pk))
    return "" if text == run.progress_shown else text


def run_page_url(run_pk: int) -> str:
    """The run page's public address when PILOTSITE_PUBLIC_URL is set, else ""."""
    base = (settings.PILOTSITE_PUBLIC_URL or "").rstrip("/")
    if not base:
        return ""
    from django.urls import reverse

    return base + reverse("admin:integrations:run", args=[run_pk])
