"""The [GOALS] block of an employee's performance-review prompt."""

from django.db.models import F, Prefetch

from goals.models import Goal, KeyResult
from integrations.models import Employee

HEADER = "[GOALS]"
NO_GOALS = "No goals are recorded in Asana for this employee."
# A review prompt must not read "no goals" as a fact about someone whose goals are never read.
NOT_MAPPED = (
    "This employee is not mapped to an Asana user, so their goals are not synced: "
    "map them on the integrations tab first."
)


def status_text(item: Goal | KeyResult) -> str:
    """A goal's status in Asana's words, with "(closed)" once Asana closed it."""
    label = item.get_status_display() or item.status
    return f"{label} (closed)" if item.is_closed else label


def _due(goal: Goal | KeyResult) -> str:
    return f"due {goal.due_on:%Y-%m-%d}" if goal.due_on else "no due date"


def goals_block(employee: Employee) -> str:
    """Goals ordered by due date (undated last), then name; key results in Asana's order."""
    goals = (
        Goal.objects.filter(employee=employee)
        .order_by(F("due_on").asc(nulls_last=True), "name", "asana_gid", "connection_id")
        .prefetch_related(
            Prefetch("key_results", queryset=KeyResult.objects.order_by("position", "asana_gid"))
        )
    )
    lines = [HEADER]
    for goal in goals:
        lines.append(f"- {goal.name} — status: {status_text(goal)} — {_due(goal)}")
        for kr in goal.key_results.all():
            lines.append(f"  - Key result: {kr.name} — status: {status_text(kr)}")
    if len(lines) == 1:
        lines.append(NO_GOALS if employee.mappings.exists() else NOT_MAPPED)
    return "\n".join(lines)
