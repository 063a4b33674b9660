"""Goals and key results pulled from Asana, per employee and connection, and the sync runs.

Asana stays the source of truth: these rows are a read-only copy that a sync replaces
wholesale for each employee, so the admin never edits them.
"""

import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from integrations.models import AsanaConnection, Employee

DESCRIPTION_MAX = 1000
GOALS_PER_EMPLOYEE_MAX = 200
# A running sync whose heartbeat is older than this belongs to a worker that died.
STALE_AFTER = datetime.timedelta(minutes=30)


class GoalStatus(models.TextChoices):
    """A goal's status as Asana sends it, stored as is and shown in Asana's own words.

    asana_oas.yaml, GoalResponse.status: "When the goal is open, its status can be `green`,
    `yellow`, and `red` to reflect 'On Track', 'At Risk', and 'Off Track', respectively. When
    the goal is closed, the value can be `missed`, `achieved`, `partial`, or `dropped`", and it
    is nullable: nobody has rated the goal yet, stored as "".
    """

    ON_TRACK = "green", "On track"
    AT_RISK = "yellow", "At risk"
    OFF_TRACK = "red", "Off track"
    ACHIEVED = "achieved", "Achieved"
    PARTIAL = "partial", "Partial"
    MISSED = "missed", "Missed"
    DROPPED = "dropped", "Dropped"
    NO_STATUS = "", "No status"


# The statuses Asana gives a goal once it is closed.
CLOSED_STATUSES = frozenset(
    {GoalStatus.ACHIEVED, GoalStatus.PARTIAL, GoalStatus.MISSED, GoalStatus.DROPPED}
)


class _Progress:
    """What goals and key results share on screen: their name, and progress as a percentage."""

    name: str
    progress: float | None
    status: str
    due_on: datetime.date | None
    time_period_end_on: datetime.date | None

    def __str__(self) -> str:
        return self.name

    @property
    def progress_percent(self) -> int | None:
        return None if self.progress is None else round(self.progress * 100)

    @property
    def is_closed(self) -> bool:
        """Asana closed the goal (achieved, partial, missed or dropped)."""
        return self.status in CLOSED_STATUSES

    @property
    def deadline(self) -> datetime.date | None:
        """The goal's due date, else the last day of its Asana time period, else None."""
        return self.due_on or self.time_period_end_on


def status_field() -> models.CharField:
    """A goal's or key result's status: Asana's value as sent."""
    return models.CharField(
        max_length=16,
        choices=GoalStatus.choices,
        blank=True,
        default=GoalStatus.NO_STATUS,
        help_text="Asana's status value as sent (empty: no status).",
    )


class Goal(_Progress, models.Model):
    employee = models.ForeignKey(Employee, on_delete=models.CASCADE, related_name="goals")
    connection = models.ForeignKey(AsanaConnection, on_delete=models.CASCADE, related_name="goals")
    asana_gid = models.CharField("Asana GID", max_length=32)
    # Where Asana listed the goal, so the kept 200 and the tab follow Asana's order.
    position = models.PositiveIntegerField(default=0)
    name = models.CharField(max_length=500)
    description = models.TextField(blank=True, max_length=DESCRIPTION_MAX)
    due_on = models.DateField(null=True, blank=True)
    start_on = models.DateField(null=True, blank=True)
    time_period_name = models.CharField(
        max_length=100, blank=True, help_text="Asana time period's name, e.g. Q4 FY26."
    )
    time_period_end_on = models.DateField(
        null=True, blank=True, help_text="Last day of the Asana time period."
    )
    status = status_field()
    has_metric = models.BooleanField(default=False)
    metric_initial = models.FloatField(null=True, blank=True)
    metric_current = models.FloatField(null=True, blank=True)
    metric_target = models.FloatField(null=True, blank=True)
    metric_unit = models.CharField(
        max_length=16, blank=True, help_text="none, currency or percentage"
    )
    metric_currency = models.CharField(max_length=3, blank=True)
    progress = models.FloatField(
        null=True, blank=True, help_text="0–1, computed from the metric's initial/current/target."
    )

    class Meta:
        ordering = ["employee__name", "position", "asana_gid"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "employee", "asana_gid"], name="goal_unique_per_employee"
            )
        ]

    @property
    def progress_text(self) -> str:
        """Progress as people read it, with the metric when it adds something; "" without
        progress. The one rule for the tab and the status-draft prompt:

        - counting up from zero: `36% (4,000 EUR of 11,000 EUR)`;
        - a percentage metric from 0% to 100% is its own progress: `40%`;
        - from another start: `30% (4,000 EUR now, from 1,000 EUR to 11,000 EUR)`;
        - a target below the start (fewer bugs, lower costs):
          `80% (8 now, from 20 down to 5)`.

        The percentage is of the way from start to target (goals.fields.progress)."""
        if self.progress_percent is None:
            return ""
        shown = f"{self.progress_percent}%"
        if not self.has_metric or self.metric_current is None or self.metric_target is None:
            return shown
        start = self.metric_initial or 0.0
        current, target, initial = (
            _metric_value(v, self.metric_unit, self.metric_currency)
            for v in (self.metric_current, self.metric_target, start)
        )
        if self.metric_target < start:
            return f"{shown} ({current} now, from {initial} down to {target})"
        if start:
            return f"{shown} ({current} now, from {initial} to {target})"
        if self.metric_unit == "percentage" and self.metric_target == 1:
            return shown
        return f"{shown} ({current} of {target})"


def _metric_value(value: float, unit: str, currency: str) -> str:
    # Asana stores a percentage metric as a fraction: 0.25 is shown as 25%.
    number = value * 100 if unit == "percentage" else value
    text = f"{number:,.2f}".rstrip("0").rstrip(".")
    if unit == "percentage":
        return f"{text}%"
    return f"{text} {currency}" if unit == "currency" and currency else text


class KeyResult(_Progress, models.Model):
    """A sub-goal of a kept goal."""

    goal = models.ForeignKey(Goal, on_delete=models.CASCADE, related_name="key_results")
    asana_gid = models.CharField("Asana GID", max_length=32)
    position = models.PositiveIntegerField(default=0)
    name = models.CharField(max_length=500)
    status = status_field()
    due_on = models.DateField(null=True, blank=True)
    time_period_name = models.CharField(
        max_length=100, blank=True, help_text="Asana time period's name, e.g. Q4 FY26."
    )
    time_period_end_on = models.DateField(
        null=True, blank=True, help_text="Last day of the Asana time period."
    )
    progress = models.FloatField(null=True, blank=True)
    metric_current = models.FloatField(null=True, blank=True)
    metric_target = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["goal", "position", "asana_gid"]
        constraints = [
            models.UniqueConstraint(fields=["goal", "asana_gid"], name="key_result_unique_per_goal")
        ]


class EmployeeGoalState(models.Model):
    """The outcome of the last successful sync for one employee in one workspace."""

    employee = models.ForeignKey(Employee, on_delete=models.CASCADE, related_name="goal_states")
    connection = models.ForeignKey(
        AsanaConnection, on_delete=models.CASCADE, related_name="goal_states"
    )
    last_synced_at = models.DateTimeField()
    owned = models.PositiveIntegerField(default=0, help_text="Goals Asana lists for the employee.")
    kept = models.PositiveIntegerField(default=0)
    truncated = models.BooleanField(
        default=False, help_text=f"The employee owns more than {GOALS_PER_EMPLOYEE_MAX} goals."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "employee"], name="goal_state_unique_per_employee"
            )
        ]

    def __str__(self) -> str:
        return f"{self.employee} goals synced {self.last_synced_at:%Y-%m-%d %H:%M}"


class GoalSync(models.Model):
    class State(models.TextChoices):
        # Requested ("Sync now") and waiting in django-q2's queue for a worker.
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        SUCCEEDED = "succeeded", "succeeded"
        FAILED = "failed", "failed"

    connection = models.ForeignKey(
        AsanaConnection, on_delete=models.CASCADE, related_name="goal_syncs"
    )
    source = models.CharField(max_length=16, help_text="schedule, command or admin")
    employee_email = models.EmailField(blank=True, help_text="Set when one employee was synced.")
    state = models.CharField(max_length=16, choices=State.choices, default=State.RUNNING)
    phase = models.CharField(max_length=40, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    # Touched on every progress step: a running row that stops moving is a dead worker.
    heartbeat_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    employees_total = models.PositiveIntegerField(default=0)
    employees_done = models.PositiveIntegerField(default=0)
    goals_kept = models.PositiveIntegerField(default=0)
    key_results = models.PositiveIntegerField(default=0)
    goals_removed = models.PositiveIntegerField(default=0)
    skipped_unowned = models.PositiveIntegerField(default=0)
    skipped_unmapped = models.PositiveIntegerField(default=0)
    employees_truncated = models.PositiveIntegerField(default=0)
    requests = models.PositiveIntegerField(default=0, help_text="Asana API calls made.")
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection"],
                condition=Q(state="running"),
                name="one_running_goal_sync_per_connection",
            ),
            # "Sync now" pressed twice queues one sync.
            models.UniqueConstraint(
                fields=["connection"],
                condition=Q(state="queued"),
                name="one_queued_goal_sync_per_connection",
            ),
        ]

    def __str__(self) -> str:
        return f"goal sync {self.started_at:%Y-%m-%d %H:%M} ({self.state})"

    @property
    def is_live(self) -> bool:
        """Running, and its worker still reporting progress."""
        return (
            self.state == self.State.RUNNING and self.heartbeat_at >= timezone.now() - STALE_AFTER
        )

    @property
    def skipped(self) -> int:
        return self.skipped_unowned + self.skipped_unmapped


class ProgressSnapshot(models.Model):
    """What a sync saw of one goal or one key result, written only when it changed.

    A row is added when the progress value (the metric's current value or the computed
    progress), the status, the target or the deadline differs from the item's latest row, or
    when the item has none; an unchanged item adds nothing. Between two rows the values held
    as recorded; until when they were last seen is the employee's `EmployeeGoalState
    .last_synced_at`. Rows older than `GOALS_HISTORY_RETENTION_DAYS` are pruned, except each
    item's latest, which stays the baseline for the next comparison.
    """

    goal = models.ForeignKey(
        Goal, null=True, blank=True, on_delete=models.CASCADE, related_name="snapshots"
    )
    key_result = models.ForeignKey(
        KeyResult, null=True, blank=True, on_delete=models.CASCADE, related_name="snapshots"
    )
    taken_at = models.DateTimeField()
    progress = models.FloatField(null=True, blank=True, help_text="0–1, as on the goal.")
    current = models.FloatField(null=True, blank=True)
    target = models.FloatField(null=True, blank=True)
    status = models.CharField(max_length=16, blank=True)
    deadline = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["taken_at", "id"]
        indexes = [
            models.Index(fields=["goal", "taken_at"], name="snapshot_goal_time"),
            models.Index(fields=["key_result", "taken_at"], name="snapshot_kr_time"),
            models.Index(fields=["taken_at"], name="snapshot_time"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(goal__isnull=False, key_result__isnull=True)
                | Q(goal__isnull=True, key_result__isnull=False),
                name="snapshot_of_goal_or_key_result",
            )
        ]

    def __str__(self) -> str:
        return f"snapshot {self.taken_at:%Y-%m-%d %H:%M}"


class StatusDraft(models.Model):
    """A status update for a goal drafted by the model, waiting for a person's decision.

    Nothing is posted to Asana until someone approves it (`goals.llm.drafts.approve`); a
    rejected draft is kept with who rejected it. `figures` is the text of the stored history
    that the prompt carried, so what the model was told can be checked afterwards.
    """

    class State(models.TextChoices):
        PENDING = "pending", "waiting for review"
        # Approved and being sent: taken by one conditional UPDATE, so it is sent once.
        POSTING = "posting", "approved, posting"
        POSTED = "posted", "approved and posted"
        REJECTED = "rejected", "rejected"
        FAILED = "failed", "approved, posting failed"

    # asana_oas.yaml, StatusUpdateBase.status_type: the values Asana allows on goals.
    class StatusType(models.TextChoices):
        ON_TRACK = "on_track", "On track"
        AT_RISK = "at_risk", "At risk"
        OFF_TRACK = "off_track", "Off track"
        ACHIEVED = "achieved", "Achieved"
        PARTIAL = "partial", "Partial"
        MISSED = "missed", "Missed"
        DROPPED = "dropped", "Dropped"

    goal = models.ForeignKey(Goal, on_delete=models.CASCADE, related_name="status_drafts")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    text = models.TextField()
    figures = models.TextField(blank=True)
    status_type = models.CharField(max_length=16, choices=StatusType.choices, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    asana_gid = models.CharField("Asana status update GID", max_length=32, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"status draft for {self.goal} ({self.state})"
