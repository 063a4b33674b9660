"""The run page (`/admin/tabs/integrations/runs/<id>/`): a run as it happens — status,
elapsed time, progress lines, the tail of its output, a link to the Asana task — and its
Stop button. The live part refreshes itself (pilotsite/live.js) every second while the run
is live and stops refreshing once it is over."""

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from integrations.asana.errors import AsanaError
from integrations.models import ProcessedTask, Run
from integrations.pipeline import needs_input
from integrations.pipeline.card import asana_url
from integrations.pipeline.stop import stop_from_admin, stop_waiting_from_admin
from pilotsite.admin import tab_post

VIEW_PERM = "integrations.view_processedtask"
STOP_PERM = "integrations.change_processedtask"
OUTPUT_TAIL = 4000
LIVE_SECONDS = 1


def _may_view(request: HttpRequest) -> None:
    user = request.user
    if not (user.is_active and user.is_staff and user.has_perm(VIEW_PERM)):
        raise PermissionDenied


# The status badge's colour (pilotsite/tabs.css) for each status word.
STATUS_BADGE = {
    "running": "pilot-status-live",
    "stopping": "pilot-status-warning",
    "waiting for input": "pilot-status-warning",
    "done": "pilot-status-ok",
    "failed": "pilot-status-error",
    "interrupted": "pilot-status-error",
}


def elapsed_text(seconds: float) -> str:
    """A duration for people: "45 s", "2 min 05 s", "1 h 02 min" (seconds dropped)."""
    whole = max(int(seconds), 0)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def _progress_lines(run: Run) -> list[dict[str, Any]]:
    """The run's progress lines with the local time each arrived (None when unreadable)."""
    lines = []
    for line in run.progress or []:
        at = parse_datetime(str(line.get("at") or ""))
        lines.append({"text": line.get("text", ""), "at": timezone.localtime(at) if at else None})
    return lines


def _conversation(pt: ProcessedTask, run: Run) -> list[dict[str, Any]]:
    """The questions and replies up to this run, oldest first, each turn's `at` (Asana's
    ISO 8601 `created_at`) as a local datetime (None when unreadable) to show like the
    page's other times."""
    turns = []
    for turn in pt.conversation or []:
        if turn.get("run", 0) <= run.number:
            at = parse_datetime(str(turn.get("at") or ""))
            turns.append({**turn, "at": timezone.localtime(at) if at else None})
    return turns


def waiting_run(run: Run) -> bool:
    """The run asked a question and its task still waits for the reply."""
    pt = run.processed_task
    return (
        run.outcome == Run.Outcome.NEEDS_INPUT
        and pt.state == ProcessedTask.State.WAITING
        and pt.attempts == run.number
    )


def run_context(run: Run, request: HttpRequest) -> dict[str, Any]:
    """What the page shows: the run, its status word and badge, elapsed time, progress lines
    and the last OUTPUT_TAIL characters of its output; while its task waits for input, the
    question and since when."""
    pt = run.processed_task
    end = run.executed_at or run.finished_at or timezone.now()
    waiting = waiting_run(run)
    if run.live:
        status = "stopping" if run.stop_requested_at else "running"
    elif waiting:
        status = "waiting for input"
    else:
        status = run.outcome or "finished"
    output = run.output or (pt.output if pt.attempts == run.number else "")
    return {
        "run": run,
        "task": pt,
        "status": status,
        "status_badge": STATUS_BADGE.get(status, ""),
        "elapsed": elapsed_text((end - run.started_at).total_seconds()),
        # A stopped run's error only repeats its status; a failure's says what went wrong.
        "error": "" if run.outcome == Run.Outcome.STOPPED else run.error,
        "progress": _progress_lines(run),
        "output_tail": output[-OUTPUT_TAIL:],
        "output_cut": len(output) > OUTPUT_TAIL,
        "asana_url": asana_url(pt),
        "may_stop": ((run.live and not run.stop_requested_at) or waiting)
        and request.user.has_perm(STOP_PERM),
        "question": needs_input.current_question(pt) if waiting else None,
        "conversation": _conversation(pt, run),
        "live_seconds": LIVE_SECONDS if run.live else 0,
    }


def _run(pk: int) -> Run:
    return get_object_or_404(Run.objects.select_related("processed_task__connection"), pk=pk)


def run_page(request: HttpRequest, pk: int) -> HttpResponse:
    _may_view(request)
    run = _run(pk)
    context = {**admin.site.each_context(request), **run_context(run, request)}
    return render(request, "integrations/run.html", context)


def run_live(request: HttpRequest, pk: int) -> HttpResponse:
    _may_view(request)
    return render(request, "integrations/_run_live.html", run_context(_run(pk), request))


@tab_post(VIEW_PERM, STOP_PERM)
def stop_view(request: HttpRequest, pk: int) -> HttpResponse:
    run = _run(pk)
    if waiting_run(run):
        try:
            stopped = stop_waiting_from_admin(run.processed_task, actor=request.user)
        except AsanaError as exc:
            messages.error(request, f"{run} was not stopped: {exc}")
        else:
            if stopped:
                messages.success(request, f"{run} was stopped while it waited for input.")
            else:
                messages.warning(request, f"{run} was not stopped: it no longer waits for input.")
    elif stop_from_admin(run, actor=request.user):
        messages.success(request, f"Stop requested: {run} ends within a few seconds.")
    else:
        messages.warning(
            request, f"{run} was not stopped: it had already finished or is reporting."
        )
    back = request.POST.get("next") or ""
    if back.startswith("/admin/") and "//" not in back:
        return HttpResponseRedirect(back)
    return HttpResponseRedirect(reverse("admin:integrations:run", args=[run.pk]))


urlpatterns = [
    path("runs/<int:pk>/", run_page, name="run"),
    path("runs/<int:pk>/live/", run_live, name="run-live"),
    path("runs/<int:pk>/stop/", stop_view, name="run-stop"),
]
