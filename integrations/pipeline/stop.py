"""Stopping a running task: who may ask, how the request reaches the executing process, and
how Asana's signals are read.

A stop is a request on the live run (`Run.stop_requested_at`, a conditional UPDATE, so two
requests never both count); the process executing the run sees it within
PILOT_STOP_CHECK_SECONDS (`lease.RunWatcher`), ends the executor's process group and reports
the stop (`report.Reporter._stopped`). A run whose outcome is already recorded (it is
reporting) cannot be asked any more: its report is neither undone nor repeated.

In Asana a run is stopped by removing its pilot tag, completing the task or adding
`pilot-stop`: read from the task as it is now (`stop_signal`), or from a story that records
it (`story_signal`: a task waiting for input, whose stories are read anyway). Webhook
deliveries look at the running tasks their events mention; each poll looks at every task
the connection has running (one task read each).
"""

import logging
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.utils import timezone

from integrations import audit
from integrations.asana.client import AsanaClient
from integrations.asana.errors import AsanaError, AsanaForbidden, AsanaNotFound
from integrations.audit import Action
from integrations.models import AsanaConnection, AsanaMapping, ProcessedTask, Run
from integrations.pipeline.report import STOP_TAG
from integrations.pipeline.tags import WorkspaceTags, resolve_tags

log = logging.getLogger(__name__)

# Checked against the contract's opt_fields enum for GET /tasks/{task_gid}.
STOP_FIELDS = ("completed", "tags.name")
# Story subtypes that carry each signal (StoryCompact.resource_subtype in the spec).
SIGNAL_STORIES = {
    "completed": ("marked_complete",),
    "untagged": ("removed_from_tag",),
    "stop-tagged": ("added_to_tag",),
}
STORY_SIGNALS = {subtype: signal for signal, kinds in SIGNAL_STORIES.items() for subtype in kinds}
SIGNAL_TEXT = {
    "completed": "completed the task in Asana",
    "untagged": "removed the pilot tag in Asana",
    "stop-tagged": f"added the {STOP_TAG} tag in Asana",
    "admin": "pressed Stop in pilotsite",
}


def live_run(processed: ProcessedTask) -> Run | None:
    """The ledger row's run that is executing now, or None."""
    if processed.state != ProcessedTask.State.RUNNING:
        return None
    return (
        Run.objects.filter(processed_task=processed, number=processed.attempts, outcome="")
        .order_by("-id")
        .first()
    )


def request_stop(run: Run, *, by: str, actor: audit.Actor = None) -> bool:
    """Ask a live run to stop; `by` says who and how ("Ann Lee (removed the pilot tag in
    Asana)"). False when the run is over, is already reporting its outcome, or was already
    asked (the first request wins). Audited as `pipeline.stop_requested`."""
    pt = run.processed_task
    if ProcessedTask.objects.filter(pk=pt.pk).exclude(outcome="").exists():
        return False
    asked = Run.objects.filter(
        pk=run.pk, outcome="", finished_at__isnull=True, stop_requested_at__isnull=True
    ).update(stop_requested_at=timezone.now(), stop_requested_by=by[:200])
    if asked:
        record_stop_request(pt, by=by, actor=actor)
    return asked == 1


def record_stop_request(pt: ProcessedTask, *, by: str, actor: audit.Actor = None) -> None:
    """The audit row of a stop asked of `pt`'s run (`pipeline.stop_requested`), whether it was
    running or waiting; `by` says who and how, `actor` is the admin user (None from Asana)."""
    audit.record(
        Action.PIPELINE_STOP_REQUESTED,
        target=f"task {pt.task_gid}",
        detail=by,
        actor=actor,
        actor_label="pipeline" if actor is None else "",
        connection=pt.connection,
    )


def stop_from_admin(run: Run, *, actor: User | AnonymousUser) -> bool:
    """The Stop button: the admin user is the person who stopped it."""
    assert actor.is_authenticated  # the admin's views and actions need a signed-in user
    name = actor.get_full_name() or actor.get_username()
    return request_stop(run, by=f"{name} ({SIGNAL_TEXT['admin']})", actor=actor)


def stop_waiting_from_admin(processed: ProcessedTask, *, actor: User | AnonymousUser) -> bool:
    """The Stop button (or action) on a task waiting for input: no process runs it, so the
    stop is reported in Asana from here (`needs_input.stop_waiting`). False when the task no
    longer waits. Raises AsanaError when no client can be made for its connection."""
    from integrations.asana.client import client_for
    from integrations.pipeline.needs_input import stop_waiting

    assert actor.is_authenticated
    name = actor.get_full_name() or actor.get_username()
    by = f"{name} ({SIGNAL_TEXT['admin']})"
    with client_for(processed.connection) as client:
        return stop_waiting(processed, by=by, client=client, actor=actor)


def stop_signal(task: dict[str, Any], tags: WorkspaceTags) -> str | None:
    """Which Asana signal asks this running task to stop ("completed", "untagged",
    "stop-tagged"), or None. `task` is read with `completed` and `tags.name`."""
    if task.get("completed"):
        return "completed"
    carried = {str(t.get("gid")): str(t.get("name") or "") for t in task.get("tags") or []}
    if not set(carried) & set(tags.pilot_gids):
        return "untagged"
    if any(_is_stop_tag(gid, name, tags) for gid, name in carried.items()):
        return "stop-tagged"
    return None


def story_signal(story: dict[str, Any], tags: WorkspaceTags) -> str | None:
    """Which signal this story records ("completed"; "untagged": a pilot tag removed;
    "stop-tagged": the stop tag added), or None. `story` is read with `resource_subtype`
    and `tag.name`."""
    signal = STORY_SIGNALS.get(str(story.get("resource_subtype")))
    tag = story.get("tag") or {}
    gid, name = str(tag.get("gid") or ""), str(tag.get("name") or "")
    if signal == "untagged" and gid not in tags.pilot_gids:
        return None
    if signal == "stop-tagged" and not _is_stop_tag(gid, name, tags):
        return None
    return signal


def _is_stop_tag(gid: str, name: str, tags: WorkspaceTags) -> bool:
    """A tag asks for a stop when it is one of the workspace's STOP_TAG tags or named so."""
    return gid in tags.by_name.get(STOP_TAG, ()) or name == STOP_TAG


def person_name(connection: AsanaConnection, user: dict[str, Any] | None) -> str:
    """A person as pilotsite knows them: the mapped employee's name, else Asana's name for
    the user, else "someone in Asana"."""
    gid = str((user or {}).get("gid") or "")
    if gid:
        mapping = (
            AsanaMapping.objects.select_related("employee")
            .filter(connection=connection, asana_user_gid=gid)
            .first()
        )
        if mapping is not None:
            return mapping.employee.name
    return str((user or {}).get("name") or "") or "someone in Asana"


def _who_from_stories(client: AsanaClient, pt: ProcessedTask, signal: str) -> dict | None:
    """The `created_by` of the newest story carrying the signal (one stories read)."""
    wanted = SIGNAL_STORIES[signal]
    found = None
    for story in client.stories(pt.task_gid):
        if story.get("resource_subtype") in wanted:
            found = story.get("created_by") or found
    return found


def check_running(
    connection: AsanaConnection,
    client: AsanaClient,
    *,
    gids: list[str] | None = None,
    users: dict[str, dict] | None = None,
) -> list[str]:
    """Look at the connection's running tasks (those in `gids` only, when given) in Asana
    and ask each that carries a stop signal to stop. `users` gives the person behind each
    task's latest event (a webhook's `user`); otherwise the task's stories say who. Returns
    the GIDs asked to stop. Costs one task read per running task, plus one stories read per
    stop when `users` does not say who."""
    running = ProcessedTask.objects.filter(connection=connection, state=ProcessedTask.State.RUNNING)
    if gids is not None:
        running = running.filter(task_gid__in=gids)
    rows = list(running)
    if not rows:
        return []
    tags = resolve_tags(connection, client)
    stopped: list[str] = []
    for pt in rows:
        run = live_run(pt)
        if run is None or run.stop_requested_at is not None:
            continue
        try:
            task = client.task(pt.task_gid, STOP_FIELDS)
        except (AsanaNotFound, AsanaForbidden):
            # Deleted or hidden: the run reports what it can when it ends.
            continue
        except AsanaError as exc:
            log.warning("ASANA-%s: could not look for a stop signal: %s", pt.task_gid, exc)
            continue
        signal = stop_signal(task, tags)
        if signal is None:
            continue
        user = (users or {}).get(pt.task_gid)
        if user is None:
            try:
                user = _who_from_stories(client, pt, signal)
            except AsanaError:
                user = None
        by = f"{person_name(connection, user)} ({SIGNAL_TEXT[signal]})"
        if request_stop(run, by=by):
            stopped.append(pt.task_gid)
    return stopped
