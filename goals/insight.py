"""Goals with their forecast and flags, loaded for a set of employees in a fixed number of
queries (whatever the number of goals): the goals tab, its CSV export and the [GOALS] block
all read them from here.
"""

import datetime
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Exists, F, OuterRef, Prefetch, Q, QuerySet
from django.utils import timezone
from django.utils.safestring import SafeString

from goals import forecast as fc
from goals.chart import progress_svg
from goals.models import EmployeeGoalState, Goal, KeyResult, ProgressSnapshot
from integrations.models import Employee

# Risk order for "sort by risk": overdue first, then by how far the projection falls short,
# then stalled, then Asana's own status; closed goals last.
_STATUS_RISK = {"red": 0, "yellow": 1, "": 2, "green": 3}


def percent(fraction: float) -> str:
    """`40%`: a 0-1 fraction in whole percent."""
    return f"{round(fraction * 100)}%"


def signed_percent(fraction: float) -> str:
    """A pace in whole percentage points with its sign: `+5%`, `-2%`, `+0%`."""
    return f"{round(fraction * 100):+d}%"


def deadline_text(item: Goal | KeyResult) -> str:
    """`due 2026-09-30`, `due 2026-12-31 (Q4 FY26)` or `no due date`."""
    if item.deadline is None:
        return "no due date"
    period = f" ({item.time_period_name})" if item.time_period_name else ""
    return f"due {item.deadline:%Y-%m-%d}{period}"


@dataclass
class GoalInsight:
    """One goal with what the tab shows about it. `observed_until` is the employee's last
    sync of the goal's workspace (None before the first)."""

    goal: Goal
    forecast: fc.Forecast
    flags: list[str]
    observed_until: datetime.datetime | None
    key_results: list[KeyResult] = field(default_factory=list)

    @property
    def pace_text(self) -> str:
        """`pace +5%/week (needed +8%/week)`, `forecast: not enough history yet` or ""."""
        result = self.forecast
        if result.note == fc.NOT_ENOUGH_HISTORY and not self.goal.is_closed:
            return f"forecast: {fc.NOT_ENOUGH_HISTORY}"
        if result.pace is None:
            return ""
        needed = (
            f" (needed {signed_percent(result.needed_pace)}/week)"
            if result.needed_pace is not None
            else ""
        )
        return f"pace {signed_percent(result.pace)}/week{needed}"

    @property
    def projection_text(self) -> str:
        """`projected 70% by the deadline (unlikely)`, or "" when there is no projection."""
        result = self.forecast
        if result.projection is None or self.goal.is_closed:
            return ""
        return f"projected {percent(result.projection)} by the deadline ({result.label})"

    @property
    def forecast_text(self) -> str:
        """The pace and the projection on one line, as the tab shows them."""
        text = " · ".join(t for t in (self.pace_text, self.projection_text) if t)
        return text[:1].upper() + text[1:]

    @property
    def chart(self) -> SafeString:
        return progress_svg(
            self.forecast, self.goal.deadline, f"Progress of {self.goal.name} over time"
        )

    @property
    def risk(self) -> tuple:
        """Sort key, most at risk first."""
        goal = self.goal
        projection = self.forecast.projection
        return (
            goal.is_closed,
            fc.OVERDUE not in self.flags,
            fc.PROJECTED_TO_MISS not in self.flags,
            projection if projection is not None else 2.0,
            fc.STALLED not in self.flags,
            _STATUS_RISK.get(goal.status, 4),
            goal.name,
        )


def lookback_days(stalled_days: int) -> int:
    """How far back the tab loads snapshots: enough for the pace window and the stalled test;
    each item's last snapshot before that is loaded too, as the value carried in."""
    return max(fc.PACE_WINDOW_DAYS, stalled_days) + 1


def snapshots_queryset(now: datetime.datetime, stalled_days: int) -> QuerySet[ProgressSnapshot]:
    """A goal's snapshots within the lookback, and its latest one before it."""
    cutoff = now - datetime.timedelta(days=lookback_days(stalled_days))
    later_before_cutoff = ProgressSnapshot.objects.filter(
        goal=OuterRef("goal"), id__gt=OuterRef("id"), taken_at__lt=cutoff
    )
    return ProgressSnapshot.objects.filter(
        Q(taken_at__gte=cutoff) | ~Exists(later_before_cutoff)
    ).order_by("taken_at", "id")


def with_goals(
    employees: QuerySet[Employee], now: datetime.datetime, stalled_days: int
) -> QuerySet[Employee]:
    """`employees` with goals (deadline order), their snapshots and key results, and the sync
    states prefetched: five queries for any number of employees and goals."""
    goals = Goal.objects.order_by(
        F("due_on").asc(nulls_last=True),
        F("time_period_end_on").asc(nulls_last=True),
        "name",
        "asana_gid",
        "connection_id",
    )
    return employees.prefetch_related(
        Prefetch("goals", queryset=goals),
        Prefetch("goals__snapshots", queryset=snapshots_queryset(now, stalled_days)),
        Prefetch(
            "goals__key_results", queryset=KeyResult.objects.order_by("position", "asana_gid")
        ),
        Prefetch("goal_states", queryset=EmployeeGoalState.objects.select_related("connection")),
    )


def goal_insight(
    goal: Goal,
    observed_until: datetime.datetime | None,
    today: datetime.date,
    stalled_days: int,
) -> GoalInsight:
    """The forecast and flags of one goal whose snapshots are loaded."""
    points = [(s.taken_at, s.progress) for s in goal.snapshots.all() if s.progress is not None]
    has_target = goal.has_metric and goal.progress is not None
    deadline = goal.deadline
    result = fc.forecast(
        points, observed_until, has_target=has_target, deadline=deadline, today=today
    )
    flags = fc.flags(
        points,
        observed_until,
        closed=goal.is_closed,
        has_target=has_target,
        deadline=deadline,
        today=today,
        result=result,
        stalled_days=stalled_days,
    )
    return GoalInsight(goal, result, flags, observed_until, list(goal.key_results.all()))


def employee_insights(
    employee: Employee, today: datetime.date, stalled_days: int
) -> list[GoalInsight]:
    """The insights of an employee loaded through `with_goals`, in deadline order."""
    synced = {s.connection_id: s.last_synced_at for s in employee.goal_states.all()}
    return [
        goal_insight(goal, synced.get(goal.connection_id), today, stalled_days)
        for goal in employee.goals.all()
    ]


def load(
    employees: QuerySet[Employee],
    *,
    now: datetime.datetime | None = None,
    stalled_days: int | None = None,
) -> list[tuple[Employee, list[GoalInsight]]]:
    """Each employee of `employees` (in its order) with their goals' insights."""
    now = now or timezone.now()
    stalled_days = settings.GOALS_STALLED_DAYS if stalled_days is None else stalled_days
    today = timezone.localdate(now)
    return [
        (employee, employee_insights(employee, today, stalled_days))
        for employee in with_goals(employees, now, stalled_days)
    ]


def flatten(rows: Iterable[tuple[Employee, list[GoalInsight]]]) -> list[GoalInsight]:
    return [insight for _, insights in rows for insight in insights]
