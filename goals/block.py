"""The [GOALS] block of an employee's performance-review prompt.

One line per goal, in deadline order (undated last), then name; its key results beneath in
Asana's order. Each part is present only when known, always in this order, joined by " — ":

    - NAME — status: STATUS — due YYYY-MM-DD (PERIOD) | no due date — progress N%
      — pace +N%/week (needed +N%/week) | forecast: not enough history yet
      — projected N% by the deadline (likely | at risk | unlikely) — flags: FLAG, FLAG
      - Key result: NAME — status: STATUS — progress N%

Percentages are of the way from the metric's start to its target (goals.forecast); the
pace, the projection and the flags follow goals.forecast's documented rules. The same text
is shown on the goals tab (copyable) and printed by `manage.py goalsblock EMAIL`.
"""

import datetime

from goals import insight
from goals.insight import deadline_text, percent
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


def goal_line(row: insight.GoalInsight) -> str:
    goal = row.goal
    parts = [goal.name, f"status: {status_text(goal)}", deadline_text(goal)]
    if goal.progress is not None:
        parts.append(f"progress {percent(goal.progress)}")
    parts.extend(p for p in (row.pace_text, row.projection_text) if p)
    if row.flags:
        parts.append("flags: " + ", ".join(row.flags))
    return "- " + " — ".join(parts)


def kr_line(kr: KeyResult) -> str:
    parts = [f"Key result: {kr.name}", f"status: {status_text(kr)}"]
    if kr.progress is not None:
        parts.append(f"progress {percent(kr.progress)}")
    return "  - " + " — ".join(parts)


def render(rows: list[insight.GoalInsight], mapped: bool) -> str:
    """The block for already loaded insights (the tab renders it without another query)."""
    lines = [HEADER]
    for row in rows:
        lines.append(goal_line(row))
        lines.extend(kr_line(kr) for kr in row.key_results)
    if len(lines) == 1:
        lines.append(NO_GOALS if mapped else NOT_MAPPED)
    return "\n".join(lines)


def goals_block(employee: Employee, *, now: datetime.datetime | None = None) -> str:
    """The employee's block, as of `now` (default: the current time)."""
    ((loaded, rows),) = insight.load(Employee.objects.filter(pk=employee.pk), now=now)
    return render(rows, loaded.mappings.exists())
