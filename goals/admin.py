"""Read-only admin for synced goals. Asana is the source of truth, so nothing is edited here,
and a manager only ever loads their own reports' rows (enforced in `get_queryset`, by the
rule in integrations.people.scope)."""

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from goals.models import EmployeeGoalState, Goal, GoalSync, KeyResult, StatusDraft
from goals.scope import scoped_syncs
from integrations.people.scope import OutsideReportsMessage, ReportsScopedAdmin, sees_everyone
from pilotsite.admin import ReadOnlyAdmin


class ManagerScopedAdmin(ReportsScopedAdmin, ReadOnlyAdmin):
    manager_lookup = "employee__manager"


@admin.display(description="Progress", ordering="progress")
def progress_percent(obj: Goal | KeyResult) -> str:
    """Progress as people read it ("40%"); Asana stores a fraction."""
    return "—" if obj.progress_percent is None else f"{obj.progress_percent}%"


class KeyResultInline(admin.TabularInline):
    model = KeyResult
    # django-stubs types `fields` and `readonly_fields` as names only; Django's admin docs allow
    # a callable in readonly_fields (and so in fields), as in list_display.
    fields = ("name", "status", "due_on", progress_percent)  # type: ignore[assignment]
    readonly_fields = fields  # type: ignore[assignment]
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Goal)
class GoalAdmin(ManagerScopedAdmin):
    list_display = ("name", "employee", "status", "due_on", progress_percent, "connection")
    readonly_fields = (progress_percent,)  # type: ignore[assignment]  # callable: see above
    list_filter = ("status", "connection")
    search_fields = ("name", "employee__name", "employee__email", "asana_gid")
    list_select_related = ("employee", "connection")
    inlines = [KeyResultInline]


@admin.register(KeyResult)
class KeyResultAdmin(ManagerScopedAdmin):
    manager_lookup = "goal__employee__manager"
    list_display = ("name", "goal", "status", "due_on", progress_percent)
    list_filter = ("status",)
    search_fields = ("name", "goal__name", "goal__employee__name", "goal__employee__email")
    list_select_related = ("goal",)


@admin.register(EmployeeGoalState)
class EmployeeGoalStateAdmin(ManagerScopedAdmin):
    list_display = ("employee", "connection", "last_synced_at", "owned", "kept", "truncated")
    list_filter = ("truncated", "connection")
    list_select_related = ("employee", "connection")


# A sync's figures that count the whole workspace's employees, goals and requests.
WORKSPACE_COUNTS = frozenset(
    {
        "employees_done",
        "employees_total",
        "goals_kept",
        "key_results",
        "goals_removed",
        "skipped_unmapped",
        "skipped_unowned",
        "employees_truncated",
        "requests",
    }
)


@admin.register(GoalSync)
class GoalSyncAdmin(OutsideReportsMessage, ReadOnlyAdmin):
    """Whole-workspace syncs and those of one employee the user may see (goals.scope). A
    sync's counts are of the whole workspace: only who sees every employee gets them."""

    list_display = (
        "started_at",
        "connection",
        "source",
        "state",
        "employees_done",
        "employees_total",
        "goals_kept",
        "key_results",
        "skipped_unmapped",
        "skipped_unowned",
        "error",
    )
    list_filter = ("state", "source", "connection")
    list_select_related = ("connection",)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return scoped_syncs(request.user)

    def get_list_display(self, request: HttpRequest):
        if sees_everyone(request.user):
            return self.list_display
        return [f for f in self.list_display if f not in WORKSPACE_COUNTS]

    def get_fields(self, request: HttpRequest, obj: GoalSync | None = None):
        fields = super().get_fields(request, obj)
        if sees_everyone(request.user):
            return fields
        return [f for f in fields if f not in WORKSPACE_COUNTS]


@admin.register(StatusDraft)
class StatusDraftAdmin(ReportsScopedAdmin, ReadOnlyAdmin):
    """Status drafts with who asked, who approved or rejected them, and what was posted."""

    manager_lookup = "goal__employee__manager"
    list_display = (
        "goal",
        "state",
        "status_type",
        "requested_by",
        "decided_by",
        "decided_at",
        "created_at",
    )
    list_filter = ("state",)
    list_select_related = ("goal", "requested_by", "decided_by")
