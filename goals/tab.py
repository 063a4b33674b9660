"""The goals tab (`/admin/?tab=goals`): the managers' view of their reports' goals.

A summary of the viewer's scope (counts by Asana status and by flag, each a filter), then the
employees grouped by manager, each goal with a progress bar, a chart, its forecast and flags,
key results beneath, and each employee's [GOALS] block one click away; filters by status, flag
and employee, sorting by risk, a CSV export of every goal the filters select; "Sync now".

Scope is enforced in the queries (goals.scope): a user who is not a superuser only ever loads
employees they may see (their reports and their reports' reports), whatever the URL says.
The page loads in a fixed number of queries whatever the number of goals (goals.insight).
"""

import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import groupby
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Exists, Max, OuterRef, Q, Sum
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse

from goals import block, insight
from goals import forecast as fc
from goals.jobs import request_sync
from goals.llm import views as llm_views
from goals.llm.client import is_enabled as drafts_enabled
from goals.models import CLOSED_STATUSES, GoalStatus, GoalSync
from goals.scope import scoped_employees, scoped_syncs
from integrations.models import AsanaConnection, AsanaMapping, Employee
from integrations.people.scope import sees_everyone
from pilotsite.admin import tab_post
from pilotsite.liveness import cluster_absent_note, liveness

EMPLOYEES_PER_PAGE = 25
# The status filter's values: Asana's own, and "none" for goals nobody has rated ("" is "all").
STATUS_FILTER = {s.value or "none": s.value for s in GoalStatus}
STATUS_GROUPS = (
    ("Open", [(s.value or "none", s.label) for s in GoalStatus if s not in CLOSED_STATUSES]),
    ("Closed", [(s.value, s.label) for s in GoalStatus if s in CLOSED_STATUSES]),
)
# The flag filter's values (URL slug -> goals.forecast flag).
FLAG_FILTER = {"overdue": fc.OVERDUE, "miss": fc.PROJECTED_TO_MISS, "stalled": fc.STALLED}
SORTS = {"": "deadline", "risk": "risk"}
RECENT_SYNCS = 10


@dataclass
class EmployeeRow:
    """One employee on the tab: their goals as filtered and sorted, and their [GOALS] block."""

    employee: Employee
    goals: list[insight.GoalInsight]
    block: str

    @property
    def manager_name(self) -> str:
        manager = self.employee.manager
        if manager is None:
            return ""
        return manager.get_full_name() or manager.get_username()


@dataclass
class Filters:
    """What the tab's query string asks for, validated: unknown values mean "all"."""

    status: str = ""
    flag: str = ""
    search: str = ""
    sort: str = ""

    @classmethod
    def from_request(cls, request: HttpRequest) -> "Filters":
        get = request.GET
        return cls(
            status=get.get("status", "") if get.get("status", "") in STATUS_FILTER else "",
            flag=get.get("flag", "") if get.get("flag", "") in FLAG_FILTER else "",
            search=get.get("q", "").strip(),
            sort=get.get("sort", "") if get.get("sort", "") in SORTS else "",
        )

    @property
    def filters_goals(self) -> bool:
        return bool(self.status or self.flag)

    def keeps(self, row: insight.GoalInsight) -> bool:
        if self.status and row.goal.status != STATUS_FILTER[self.status]:
            return False
        return not self.flag or FLAG_FILTER[self.flag] in row.flags

    def query(self, **override: str) -> str:
        """The tab's query string with these filters (and overrides), for links."""
        values = {"tab": "goals", "q": self.search, "status": self.status, "flag": self.flag}
        values |= {"sort": self.sort, **override}
        return urlencode({k: v for k, v in values.items() if v})


def summary(rows: list[insight.GoalInsight], filters: Filters) -> dict:
    """Counts over every goal in the viewer's scope: by Asana status, and by flag; each with
    the link that filters the tab to it."""
    statuses = [
        {
            "label": s.label,
            "value": s.value or "none",
            "count": sum(1 for r in rows if r.goal.status == s.value),
            "url": "?" + filters.query(status=s.value or "none", flag="", page=""),
        }
        for s in GoalStatus
    ]
    flags = [
        {
            "label": flag,
            "value": slug,
            "count": sum(1 for r in rows if flag in r.flags),
            "url": "?" + filters.query(flag=slug, status="", page=""),
        }
        for slug, flag in FLAG_FILTER.items()
    ]
    return {"total": len(rows), "statuses": statuses, "flags": flags}


def employee_rows(user, filters: Filters) -> tuple[list[EmployeeRow], list[insight.GoalInsight]]:
    """Every employee `user` may see (scope enforced in the query), with their goals filtered
    and sorted as asked; and all their goals unfiltered, for the summary. Grouped by manager:
    the user's own reports first, then the others' by manager name."""
    employees = scoped_employees(user).select_related("manager")
    if filters.search:
        employees = employees.filter(
            Q(name__icontains=filters.search) | Q(email__icontains=filters.search)
        )
    # Annotated, not looked up per row: the tab's query count stays flat.
    employees = employees.annotate(
        is_mapped=Exists(AsanaMapping.objects.filter(employee=OuterRef("pk")))
    ).order_by("name", "email")
    rows, everything = [], []
    for employee, goals in insight.load(employees):
        everything.extend(goals)
        kept = [g for g in goals if filters.keeps(g)]
        if filters.filters_goals and not kept:
            continue
        if filters.sort == "risk":
            kept.sort(key=lambda g: g.risk)
        # `is_mapped` is the Exists annotation above; django-stubs types it on the queryset's
        # rows but loses it once they pass through insight.load.
        mapped = employee.is_mapped  # type: ignore[attr-defined]
        rows.append(EmployeeRow(employee, kept, block.render(goals, mapped)))

    def group(row: EmployeeRow) -> tuple:
        own = row.employee.manager_id == user.pk
        first = (min(g.risk for g in row.goals),) if filters.sort == "risk" and row.goals else ()
        return (not own, row.manager_name.lower(), *first, row.employee.name, row.employee.email)

    rows.sort(key=group)
    return rows, everything


def context(request: HttpRequest) -> dict:
    user = request.user
    if not user.has_perm("goals.view_goal"):
        return {}  # the admin site shows the refusal; nothing is loaded for it
    filters = Filters.from_request(request)
    rows, everything = employee_rows(user, filters)
    page = Paginator(rows, EMPLOYEES_PER_PAGE).get_page(request.GET.get("page"))
    groups = [
        (manager, list(members))
        for manager, members in groupby(page.object_list, key=lambda r: r.manager_name)
    ]
    return {
        "goals_page": page,
        "goals_groups": groups,
        "goals_summary": summary(everything, filters),
        "goals_filters": filters,
        "goals_status": filters.status,
        "goals_search": filters.search,
        "goals_flag": filters.flag,
        "goals_sort": filters.sort,
        "goals_status_groups": STATUS_GROUPS,
        "goals_flag_choices": [(slug, flag) for slug, flag in FLAG_FILTER.items()],
        "goals_page_query": filters.query(),
        "goals_export_query": filters.query(),
        "goals_can_draft": drafts_enabled() and user.has_perm(llm_views.PERMISSION),
        **syncs_context(user),
    }


CSV_HEADER = [
    "manager",
    "employee",
    "email",
    "kind",
    "name",
    "status",
    "deadline",
    "time period",
    "progress %",
    "pace %/week",
    "needed pace %/week",
    "projected % at deadline",
    "projection",
    "flags",
]


def _cell(value: object) -> object:
    """Text from Asana or the employee list, safe to open in a spreadsheet: a cell starting
    with = + - @ (a formula there) is kept as text with a leading apostrophe."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _pct(fraction: float | None) -> object:
    return "" if fraction is None else round(fraction * 100)


class _Echo:
    """The csv writer's file: each written line is handed back, to be streamed."""

    def write(self, line: str) -> str:
        return line


def csv_rows(rows: list[EmployeeRow]) -> Iterator[Sequence[object]]:
    """The export's header, then a row per goal and per key result of `rows`, in order."""
    yield CSV_HEADER
    for row in rows:
        person = [_cell(v) for v in (row.manager_name, row.employee.name, row.employee.email)]
        for item in row.goals:
            goal, result = item.goal, item.forecast
            yield [
                *person,
                "goal",
                _cell(goal.name),
                goal.get_status_display() or goal.status,
                goal.deadline.isoformat() if goal.deadline else "",
                _cell(goal.time_period_name),
                _pct(goal.progress),
                _pct(result.pace),
                _pct(result.needed_pace),
                _pct(result.projection),
                result.label or result.note,
                ", ".join(item.flags),
            ]
            for kr in item.key_results:
                yield [
                    *person,
                    "key result",
                    _cell(kr.name),
                    kr.get_status_display() or kr.status,
                    kr.deadline.isoformat() if kr.deadline else "",
                    _cell(kr.time_period_name),
                    _pct(kr.progress),
                    *[""] * 5,
                ]


def export_csv(request: HttpRequest) -> StreamingHttpResponse:
    """Every goal and key result the tab's filters select for this query string, on every
    page, in the tab's order, within the user's scope, as CSV. The rows are those the tab
    loads for its summary; the file is streamed line by line rather than built in memory."""
    user = request.user
    if not (user.is_active and user.is_staff and user.has_perm("goals.view_goal")):
        raise PermissionDenied
    rows, _ = employee_rows(user, Filters.from_request(request))
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow(line) for line in csv_rows(rows)),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = 'attachment; filename="goals.csv"'
    return response


def reports_synced(user) -> dict:
    """How the goals of the employees `user` sees were last synced, from each one's
    EmployeeGoalState (one query): `reports`, `synced` (synced at least once), `goals` (kept),
    `truncated` (more goals than are kept) and `last` (the latest sync, or None)."""
    return scoped_employees(user).aggregate(
        reports=Count("pk", distinct=True),
        synced=Count("goal_states__employee", distinct=True),
        goals=Coalesce(Sum("goal_states__kept"), 0),
        truncated=Count("goal_states", filter=Q(goal_states__truncated=True)),
        last=Max("goal_states__last_synced_at"),
    )


def syncs_context(user) -> dict:
    """The goal syncs section: recent syncs, the running and queued ones, "Sync now". A sync's
    counts are of the whole workspace, so only who sees every employee gets them; others get
    the same figures for their reports instead (`reports_synced`)."""
    can_sync = user.has_perm("goals.change_goal")
    if not user.has_perm("goals.view_goal"):
        raise PermissionDenied
    whole_workspace = sees_everyone(user)
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
        "goals_sync_counts": whole_workspace,
        "goals_reports_synced": None if whole_workspace else reports_synced(user),
    }


@tab_post("goals.change_goal")
def sync_now(request: HttpRequest, connection_id: int) -> HttpResponse:
    connection = get_object_or_404(AsanaConnection, pk=connection_id)
    requested = request_sync(connection, actor=request.user)
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
    path("export.csv", export_csv, name="export"),
    path("draft/goal/<int:goal_id>/", llm_views.request_draft, name="request_draft"),
    path("draft/<int:draft_id>/", llm_views.review, name="draft"),
]
