"""The goals tab (`/admin/?tab=goals`): managers see their reports' goals; "Sync now".

Scope is enforced in the queries (goals.scope): a user who is not a superuser only ever loads
employees whose `manager` is that user, whatever the URL says.
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef, Prefetch, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse

from goals.jobs import request_sync
from goals.models import CLOSED_STATUSES, EmployeeGoalState, Goal, GoalStatus, GoalSync, KeyResult
from goals.scope import scoped_employees, scoped_syncs
from integrations.audit import Action, record
from integrations.models import AsanaConnection, AsanaMapping
from pilotsite.admin import tab_post
from pilotsite.liveness import cluster_absent_note, liveness

EMPLOYEES_PER_PAGE = 25
# The status filter's values: Asana's own, and "none" for goals nobody has rated ("" is "all").
STATUS_FILTER = {s.value or "none": s.value for s in GoalStatus}
STATUS_GROUPS = (
    ("Open", [(s.value or "none", s.label) for s in GoalStatus if s not in CLOSED_STATUSES]),
    ("Closed", [(s.value, s.label) for s in GoalStatus if s in CLOSED_STATUSES]),
)
RECENT_SYNCS = 10


def context(request: HttpRequest) -> dict:
    user = request.user
    if not user.has_perm("goals.view_goal"):
        return {}  # the admin site shows the refusal; nothing is loaded for it
    status = request.GET.get("status", "")
    status = status if status in STATUS_FILTER else ""
    search = request.GET.get("q", "").strip()

    employees = scoped_employees(user)
    if search:
        employees = employees.filter(Q(name__icontains=search) | Q(email__icontains=search))
    goals = Goal.objects.order_by("connection_id", "position")
    if status:
        employees = employees.filter(goals__status=STATUS_FILTER[status]).distinct()
        goals = goals.filter(status=STATUS_FILTER[status])
    # Annotated, not looked up per row: the tab's query count stays flat.
    employees = employees.annotate(
        is_mapped=Exists(AsanaMapping.objects.filter(employee=OuterRef("pk")))
    )
    employees = employees.order_by("name", "email").prefetch_related(
        Prefetch("goals", queryset=goals),
        Prefetch("goals__key_results", queryset=KeyResult.objects.order_by("position")),
        Prefetch("goal_states", queryset=EmployeeGoalState.objects.select_related("connection")),
    )
    page = Paginator(employees, EMPLOYEES_PER_PAGE).get_page(request.GET.get("page"))

    return {
        "goals_page": page,
        "goals_status": status,
        "goals_search": search,
        "goals_status_groups": STATUS_GROUPS,
        **syncs_context(user),
    }


def syncs_context(user) -> dict:
    """The goal syncs section: recent syncs, the running and queued ones, "Sync now"."""
    can_sync = user.has_perm("goals.change_goal")
    if not user.has_perm("goals.view_goal"):
        raise PermissionDenied
    recent = list(scoped_syncs(user).select_related("connection")[:RECENT_SYNCS])
    running = [s for s in recent if s.is_live]
    queued = [s for s in recent if s.state == GoalSync.State.QUEUED]
    return {
        "goals_can_sync": can_sync,
        "goals_connections": list(AsanaConnection.objects.all()) if can_sync else [],
        "goals_recent_syncs": recent,
        "goals_running": running,
        "goals_queued": queued,
        "goals_busy": bool(running or queued),
        "goals_running_connections": {s.connection_id for s in running + queued},
        "liveness": liveness() if queued else None,
    }


@tab_post("goals.change_goal")
def sync_now(request: HttpRequest, connection_id: int) -> HttpResponse:
    connection = get_object_or_404(AsanaConnection, pk=connection_id)
    requested = request_sync(connection)
    sync = requested.sync
    if requested.outcome == "running":
        messages.warning(
            request,
            f"A goal sync for {connection} is already running "
            f"({sync.employees_done} of {sync.employees_total} employees done).",
        )
    elif requested.outcome == "already queued":
        messages.warning(
            request,
            f"A goal sync for {connection} is already queued (since "
            f"{sync.started_at:%Y-%m-%d %H:%M:%S}); it starts when a worker takes it.",
        )
    else:
        record(
            Action.GOALS_SYNC_REQUESTED,
            target=str(connection),
            actor=request.user,
            connection=connection,
        )
        absent = cluster_absent_note(f"The goal sync for {connection}")
        if absent:
            messages.warning(request, absent)
        else:
            messages.success(request, f"Goal sync for {connection} queued; progress shows below.")
    return redirect(reverse("admin:index") + "?tab=goals")


def syncs_fragment(request: HttpRequest) -> HttpResponse:
    """The goal syncs section alone, for the tab to refresh itself while a sync runs."""
    if not (request.user.is_active and request.user.is_staff):
        raise PermissionDenied
    return render(request, "goals/_syncs.html", syncs_context(request.user))


urlpatterns = [
    path("sync/<int:connection_id>/", sync_now, name="sync"),
    path("syncs/", syncs_fragment, name="syncs"),
]
