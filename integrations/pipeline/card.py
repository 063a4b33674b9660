"""What the pipeline part of an Asana card shows: the executor, the last poll, counts of
tasks in progress / waiting for input / done / failed and the latest processed tasks."""

from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db.models import Count, OuterRef, Subquery
from django.urls import reverse
from django.utils import timezone

from integrations.models import AsanaConnection, ProcessedTask, Run
from integrations.pipeline import watch
from integrations.pipeline.executors import executor_configured, executor_description
from integrations.pipeline.tags import duplicate_tags_text
from pilotsite.untrusted import web_url

if TYPE_CHECKING:
    from django.db.models import QuerySet

State = ProcessedTask.State
RECENT_SHOWN = 15
OUTPUT_EXCERPT = 600


def asana_url(processed: ProcessedTask) -> str:
    """The task's permalink when Asana gave an http(s) one, else its standard address."""
    return web_url(processed.permalink_url) or f"https://app.asana.com/0/0/{processed.task_gid}"


def seconds(start: datetime | None, end: datetime | None) -> str | None:
    """How long from start to end, for people ("1.5 s"); None when either is unknown."""
    return f"{(end - start).total_seconds():.1f} s" if start and end else None


def _row(processed: ProcessedTask) -> dict[str, Any]:
    output = processed.output.strip()
    latest_run = getattr(processed, "latest_run", None)
    return {
        "task": processed,
        "asana_url": asana_url(processed),
        "admin_url": reverse("admin:integrations_processedtask_change", args=[processed.pk]),
        "run_url": reverse("admin:integrations:run", args=[latest_run]) if latest_run else None,
        "waited": seconds(processed.claimed_at, processed.started_at),
        "ran": seconds(processed.started_at, processed.ran_until),
        "output_excerpt": ("…" + output[-OUTPUT_EXCERPT:])
        if len(output) > OUTPUT_EXCERPT
        else output,
    }


# django-q2 runs the poll schedule at most once a minute: with only a q cluster polling,
# that is the interval actually kept.
CLUSTER_POLL_SECONDS = 60


def last_poll_overdue(
    connection: AsanaConnection, pollers_alive: bool, now: datetime | None = None
) -> bool:
    """Polling is on and the last poll (or, before the first, the connection's creation) is
    older than twice the interval kept: `poll_interval` when `runpollers` is alive, at least
    a minute when only the q cluster polls."""
    if not connection.polling_enabled:
        return False
    now = now or timezone.now()
    kept = watch.poll_interval_now(connection, now)
    if not pollers_alive:
        kept = max(kept, CLUSTER_POLL_SECONDS)
    since = connection.last_poll_at or connection.created_at
    return (now - since).total_seconds() > 2 * kept


def with_latest_run(tasks: "QuerySet[ProcessedTask]") -> "QuerySet[ProcessedTask]":
    """`tasks` each annotated with `latest_run`: the pk of its run with the highest number
    (None before its first run), in the same query, so a list of rows costs no query per row."""
    latest = Run.objects.filter(processed_task=OuterRef("pk")).order_by("-number", "-pk")
    return tasks.annotate(latest_run=Subquery(latest.values("pk")[:1]))


def rollout_summary(connection: AsanaConnection) -> str:
    """The rollout mode as the card's summary says it beside the polling mode; "" when
    automatic (the ordinary case needs no words)."""
    Mode = AsanaConnection.RolloutMode
    if connection.rollout_mode == Mode.SHADOW:
        return "shadow — nothing is written to Asana"
    if connection.rollout_mode == Mode.APPROVAL:
        return "approval required"
    return ""


def card(connection: AsanaConnection, pollers_alive: bool = True) -> dict[str, Any]:
    tasks = ProcessedTask.objects.filter(connection=connection)
    interval = watch.poll_interval_now(connection)
    if not pollers_alive:
        interval = max(interval, CLUSTER_POLL_SECONDS)
    by_state = dict(tasks.values_list("state").annotate(n=Count("id")).values_list("state", "n"))
    changelist = reverse("admin:integrations_processedtask_changelist")
    filtered = f"{changelist}?connection__id__exact={connection.pk}"
    in_progress = tasks.filter(state__in=(State.CLAIMED, State.RUNNING)).order_by("claimed_at")
    return {
        "executor_configured": executor_configured(connection),
        "executor": executor_description(connection),
        "last_poll_at": connection.last_poll_at,
        "last_poll_result": connection.last_poll_result,
        "last_poll_overdue": last_poll_overdue(connection, pollers_alive),
        "interval_kept": interval,
        "watch": watch.describe(connection),
        "rollout_mode": connection.get_rollout_mode_display(),
        "rollout_summary": rollout_summary(connection),
        "duplicate_tags": duplicate_tags_text(connection),
        "counts": [
            {
                "label": label,
                "count": sum(by_state.get(s, 0) for s in states),
                "url": f"{filtered}&state__in={','.join(states)}",
            }
            for label, states in (
                ("in progress", (State.RUNNING, State.CLAIMED)),
                ("waiting for input", (State.WAITING,)),
                ("done", (State.DONE,)),
                ("failed", (State.FAILED,)),
                ("skipped", (State.SKIPPED,)),
                ("awaiting approval", (State.AWAITING_APPROVAL,)),
            )
        ],
        "in_progress": [_row(p) for p in in_progress[:RECENT_SHOWN]],
        "recent": [_row(p) for p in with_latest_run(tasks).order_by("-updated_at")[:RECENT_SHOWN]],
        "all_url": filtered,
        "busy": in_progress.exists(),
    }
