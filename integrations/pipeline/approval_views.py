"""Approve and Reject on a ledger row's admin page (`/admin/tabs/integrations/tasks/<id>/
decide/`): for staff holding `integrations.approve_processedtask` (and the view permission).
The decision itself is `approvals.approve` / `approvals.reject`; what follows it (running the
task, or reporting the rejection in Asana) is queued as `jobs.decided_job`, and the next poll
does it too when no q cluster is running."""

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse

from integrations.models import ProcessedTask
from integrations.pipeline import approvals
from pilotsite.admin import tab_post
from pilotsite.liveness import worker_absent_note
from pilotsite.schedules import send_on_commit

VIEW_PERM = "integrations.view_processedtask"
NOTE_LIMIT = 1000


def approval_context(pt: ProcessedTask, user: Any) -> dict[str, Any]:
    """What the row's admin page shows about its approval (nothing when it never waited)."""
    waiting = pt.state == ProcessedTask.State.AWAITING_APPROVAL
    if not (waiting or pt.decision):
        return {}
    return {
        "waiting": waiting,
        "approvers": approvals.approver_names(pt.connection),
        "may_decide": user.has_perm(approvals.APPROVE_PERM),
        "url": reverse("admin:integrations:decide", args=[pt.pk]),
        "decision": pt.get_decision_display(),
        "decided_by": pt.decided_by,
        "decided_at": pt.decided_at,
        "note": pt.decision_note,
    }


@tab_post(VIEW_PERM, approvals.APPROVE_PERM)
def decide_view(request: HttpRequest, pk: int) -> HttpResponse:
    from integrations.pipeline.jobs import decided_job  # the job module imports approvals

    pt = get_object_or_404(ProcessedTask.objects.select_related("connection"), pk=pk)
    back = HttpResponseRedirect(reverse("admin:integrations_processedtask_change", args=[pt.pk]))
    decision = request.POST.get("decision")
    note = (request.POST.get("note") or "").strip()[:NOTE_LIMIT]
    by = approvals.admin_name(request.user)
    if decision == "approve":
        decided = approvals.approve(pt, by=by, note=note, actor=request.user)
        done, next_step = "approved", "it runs now"
    elif decision == "reject":
        decided = approvals.reject(pt, by=by, note=note, actor=request.user)
        done, next_step = "rejected", "it will not run"
    else:
        messages.error(request, "Choose Approve or Reject.")
        return back
    name = pt.task_name or f"ASANA-{pt.task_gid}"
    if not decided:
        messages.warning(request, f"{name} was not {done}: it is no longer waiting for approval.")
        return back
    send_on_commit(decided_job, pt.pk, task_name=f"decided ASANA-{pt.task_gid}")
    absent = worker_absent_note(f"{name} was {done}")
    if absent:
        messages.warning(request, absent)
    else:
        messages.success(request, f"{name} was {done}: {next_step}.")
    return back


urlpatterns = [path("tasks/<int:pk>/decide/", decide_view, name="decide")]
