"""Data that must survive restarts: connections, employees and their Asana users,
the processed-task ledger that keeps every task to one dispatch, and the audit log."""

import secrets
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from pilotsite.crypto import EncryptedTextField
from pilotsite.redact import mask
from pilotsite.untrusted import ascii_lower

gid_validator = RegexValidator(
    r"^\d{1,32}$", "An Asana GID is a number (digits only), for example 1204567890123456."
)


TAG_NAME_RULE = "The pilot tag name must be 1 to 100 characters (the default is `pilot`)."


def bounded(low: int, high: int, what: str) -> list:
    """Validators keeping a whole-number setting within [low, high], saying so in words."""
    # Django formats a validator's message with %-parameters: a literal % is doubled.
    rule = f"{what} must be from {low} to {high}.".replace("%", "%%")
    return [MinValueValidator(low, rule), MaxValueValidator(high, rule)]


def validate_tag_name(value: str) -> None:
    """A tag name Asana can hold and people can type: not only spaces, at most 100 characters."""
    if not value.strip() or len(value) > 100:
        raise ValidationError(TAG_NAME_RULE)


class AsanaConnection(models.Model):
    """One connected Asana workspace: its token, and the settings its card, the admin and
    `asana connect` change through `integrations.connect.save_connection`. Defaults and
    limits of the settings are defined here, on the fields, and read from here by the forms,
    the command and the service."""

    class WatchMethod(models.TextChoices):
        """How polling finds newly tagged tasks (`integrations.pipeline.watch`)."""

        AUTO = "auto", "search when available"
        TAG_LIST = "tag_list", "tag list"
        WEBHOOKS_FIRST = "webhooks_first", "webhooks first"

    class RolloutMode(models.TextChoices):
        """What a claimed task goes through (`integrations.pipeline.approvals` and the
        reporter's shadow rule in `integrations.pipeline.report`)."""

        AUTOMATIC = "automatic", "automatic"
        SHADOW = "shadow", "shadow"
        APPROVAL = "approval", "approval required"

    class PauseKind(models.TextChoices):
        """Why the safety rails paused the connection (`integrations.pipeline.breaker`)."""

        ERRORS = "errors", "Asana errors"
        FAILURES = "failures", "failed runs"
        CLAIMS = "claims", "too many claims"

    # The settings a person chooses (the rest is written by the application).
    SETTINGS = (
        "pilot_tag",
        "polling_enabled",
        "poll_interval",
        "skip_backlog",
        "goals_sync_interval",
        "watch_method",
        "rollout_mode",
        "breaker_error_percent",
        "breaker_min_requests",
        "breaker_error_window",
        "breaker_cooldown",
        "breaker_failures",
        "breaker_claims_per_hour",
    )

    workspace_gid = models.CharField(max_length=32, unique=True, validators=[gid_validator])
    workspace_name = models.CharField(max_length=255, blank=True)
    access_token = EncryptedTextField(help_text="Personal access token; stored encrypted.")
    pilot_tag = models.CharField(
        max_length=100,
        default="pilot",
        validators=[validate_tag_name],
        error_messages={"blank": TAG_NAME_RULE},
    )
    # Cached tag GIDs: {"pilot": gid, "pilot-in-progress": gid, ...}. Cleared when pilot_tag changes.
    tag_gids = models.JSONField(default=dict, blank=True)
    polling_enabled = models.BooleanField(default=True)
    poll_interval = models.PositiveIntegerField(
        default=30,
        validators=[MinValueValidator(5, "The poll interval must be at least 5 seconds.")],
    )
    watch_method = models.CharField(
        max_length=16,
        choices=WatchMethod.choices,
        default=WatchMethod.AUTO,
        db_default=WatchMethod.AUTO,
        error_messages={
            "invalid_choice": "Unknown watch method %(value)r: use one of "
            + ", ".join(WatchMethod.values)
            + "."
        },
        help_text="automatic: search (open tagged tasks only, one request when idle) where the "
        "plan has it, else the tag list; tag list: every task ever tagged, each poll; webhooks "
        "first: poll at the reconciling interval while a webhook is healthy.",
    )
    rollout_mode = models.CharField(
        "rollout mode",
        max_length=16,
        choices=RolloutMode.choices,
        default=RolloutMode.AUTOMATIC,
        db_default=RolloutMode.AUTOMATIC,
        error_messages={
            "invalid_choice": "Unknown rollout mode %(value)r: use one of "
            + ", ".join(RolloutMode.values)
            + "."
        },
        help_text="Automatic: a tagged task runs and its result is posted in Asana. Shadow: it "
        "runs, nothing is written to Asana, and what would have been posted is shown in the "
        "admin. Approval required: it waits until an approver adds the pilot-approved tag in "
        "Asana, or someone with the approve permission approves it in the admin.",
    )
    # The last full pass over the tag list (search and webhooks first rely on it to catch
    # what search's eventual consistency or a quiet webhook missed).
    last_reconcile_at = models.DateTimeField(null=True, blank=True)
    # When Asana last answered 402 to a search: the plan has no search, so the tag list is
    # used until the next try (`integrations.pipeline.watch.SEARCH_RETRY`).
    search_unavailable_at = models.DateTimeField(null=True, blank=True)
    # When Asana first answered a search after it had not been tried or had answered 402:
    # search is detected on this workspace (shown on the card).
    search_detected_at = models.DateTimeField(null=True, blank=True)
    skip_backlog = models.BooleanField(
        default=False,
        help_text="On the first poll, record tasks that already carry the pilot tag as skipped "
        "instead of processing them.",
    )
    backlog_checked_at = models.DateTimeField(null=True, blank=True)
    goals_sync_interval = models.PositiveIntegerField(
        default=86400,
        validators=[
            MinValueValidator(
                300, "The goal sync interval must be at least 300 seconds (5 minutes)."
            )
        ],
        help_text="Seconds between goal syncs.",
    )
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_poll_at = models.DateTimeField(null=True, blank=True)
    last_poll_result = models.CharField(max_length=500, blank=True)
    # The name of an executor the operator defined (executor_registry); picked on the card,
    # never a command. Database defaults too, so rows written by code that predates these
    # columns (an older migration's model state, say) still insert.
    executor = models.CharField(max_length=63, default="default", db_default="default")
    # Tag routing, first match wins: [{"tag": "docs", "executor": "docs-agent"}, ...].
    executor_routes = models.JSONField(
        default=list, blank=True, db_default=models.Value([], output_field=models.JSONField())
    )
    # Safety rails (`integrations.pipeline.breaker`): the thresholds, chosen on the card
    # (database defaults too, so rows written by code that predates these columns insert)…
    breaker_error_percent = models.PositiveSmallIntegerField(
        "Asana error share that pauses (%)",
        default=50,
        db_default=50,
        validators=bounded(1, 100, "The share of Asana errors (%)"),
    )
    breaker_min_requests = models.PositiveIntegerField(
        "requests before the error share counts",
        default=20,
        db_default=20,
        validators=bounded(1, 10_000, "The number of requests before the error share counts"),
    )
    breaker_error_window = models.PositiveIntegerField(
        "error window (seconds)",
        default=300,
        db_default=300,
        validators=bounded(60, 3600, "The error window (seconds)"),
    )
    breaker_cooldown = models.PositiveIntegerField(
        "cool-down before a probe (seconds)",
        default=300,
        db_default=300,
        validators=bounded(30, 86_400, "The cool-down before a probe (seconds)"),
    )
    breaker_failures = models.PositiveIntegerField(
        "failed runs in a row that pause",
        default=5,
        db_default=5,
        validators=bounded(1, 1000, "The number of failed runs in a row"),
    )
    breaker_claims_per_hour = models.PositiveIntegerField(
        "claims in an hour before a pause",
        default=50,
        db_default=50,
        validators=bounded(1, 100_000, "The number of claims in an hour"),
    )
    # …and the state: paused since when, why (a sentence) and for which kind of trigger;
    # counting starts again at `resumed_at`; `probed_at` is the last probe of a connection
    # paused for Asana's errors.
    paused_at = models.DateTimeField(null=True, blank=True)
    pause_kind = models.CharField(
        max_length=16, choices=PauseKind.choices, blank=True, default="", db_default=""
    )
    pause_reason = models.CharField(max_length=500, blank=True, default="", db_default="")
    resumed_at = models.DateTimeField(null=True, blank=True)
    probed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["workspace_name", "workspace_gid"]

    def __str__(self) -> str:
        return f"{self.workspace_name or 'Workspace'} ({self.workspace_gid})"

    @property
    def masked_token(self) -> str:
        return mask(self.access_token)

    @property
    def healthy(self) -> bool | None:
        if self.last_checked_at is None:
            return None
        return not self.last_error


class Employee(models.Model):
    name = models.CharField(max_length=200)
    email = models.EmailField(max_length=254)
    manager = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="reports",
    )
    is_approver = models.BooleanField(
        "approver",
        default=False,
        db_default=False,
        help_text="May approve a task waiting for approval by adding the pilot-approved tag "
        "in Asana (as the Asana user this employee is mapped to).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "email"]
        constraints = [models.UniqueConstraint(Lower("email"), name="employee_email_unique_ci")]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"

    def clean(self) -> None:
        self.email = ascii_lower((self.email or "").strip())


class AsanaMapping(models.Model):
    """Which Asana user an employee is in one workspace."""

    employee = models.ForeignKey(Employee, on_delete=models.CASCADE, related_name="mappings")
    connection = models.ForeignKey(
        AsanaConnection, on_delete=models.CASCADE, related_name="mappings"
    )
    asana_user_gid = models.CharField("Asana user GID", max_length=32, validators=[gid_validator])
    asana_user_name = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["employee__name"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "asana_user_gid"], name="mapping_unique_asana_user"
            ),
            models.UniqueConstraint(
                fields=["connection", "employee"], name="mapping_unique_employee"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.employee} → {self.asana_user_gid}"


class ProcessedTask(models.Model):
    """The ledger row that keeps a task to one dispatch (unique per connection and task)."""

    class State(models.TextChoices):
        CLAIMED = "claimed", "claimed"
        RUNNING = "running", "running"
        DONE = "done", "done"
        FAILED = "failed", "failed"
        SKIPPED = "skipped", "skipped"
        STOPPED = "stopped", "stopped"
        AWAITING_APPROVAL = "awaiting_approval", "awaiting approval"
        APPROVED = "approved", "approved, waiting to run"
        REJECTED = "rejected", "rejected"
        # The executor asked a question; a reply in Asana claims the task back
        # (`integrations.pipeline.needs_input`).
        WAITING = "waiting", "waiting for input"

    class Runner(models.TextChoices):
        """Who holds the claim; its value also starts the claim token, for people reading logs."""

        QUEUE = "q", "django-q2 cluster"
        POLLERS = "runpollers", "runpollers"
        RECOVERY = "recovery", "recovery"
        IN_PROCESS = "worker", "in process"

    # States that keep a task from being claimed again. A failed task is eligible again
    # once its `pilot-failed` tag is removed in Asana; a stopped or rejected one once a
    # person tags it with the pilot tag again (the stop or the rejection removed it); an
    # approved one is claimed by the next poll or at once by the approval; a task waiting for
    # input only by a reply (`needs_input.resume`).
    BLOCKING_STATES = (
        State.CLAIMED,
        State.RUNNING,
        State.DONE,
        State.SKIPPED,
        State.AWAITING_APPROVAL,
        State.WAITING,
    )
    # States a claim may take back with a conditional UPDATE.
    RECLAIMABLE_STATES = (State.FAILED, State.STOPPED, State.APPROVED, State.REJECTED)

    class Decision(models.TextChoices):
        APPROVED = "approved", "approved"
        REJECTED = "rejected", "rejected"

    connection = models.ForeignKey(AsanaConnection, on_delete=models.CASCADE, related_name="tasks")
    task_gid = models.CharField(max_length=32, validators=[gid_validator])
    task_name = models.CharField(max_length=500, blank=True)
    permalink_url = models.URLField(max_length=500, blank=True)
    # Asana's `resource_subtype` as read when the run started: an `approval` is never completed.
    task_subtype = models.CharField("Asana task subtype", max_length=32, blank=True)
    state = models.CharField(max_length=24, choices=State.choices, default=State.CLAIMED)
    # Run in shadow mode: executed, nothing written to Asana (what would have been is on
    # the run). A shadow row is never claimed again by itself: the task keeps its pilot tag.
    shadow = models.BooleanField(default=False, db_default=False)
    # The approval of this attempt (approval mode): who decided, when, and their note.
    decision = models.CharField(
        max_length=16, choices=Decision.choices, blank=True, default="", db_default=""
    )
    decided_by = models.CharField(max_length=200, blank=True, default="", db_default="")
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True, default="", db_default="")
    source = models.CharField(max_length=16, blank=True, help_text="poll, webhook or admin")
    skip_reason = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    claimed_by = models.CharField(max_length=100, blank=True)
    runner = models.CharField(
        max_length=16, choices=Runner.choices, blank=True, default="", db_default=""
    )
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # When the executor's run ended (recorded with the outcome): how long it ran is measured
    # to here, not to `finished_at`, which a report finished by recovery sets much later.
    executed_at = models.DateTimeField(null=True, blank=True)
    # Reporting steps already applied in Asana for this attempt, so a retried report
    # never posts the same comment or tag twice.
    report_steps = models.JSONField(default=list, blank=True)
    # The execution's outcome ("success"/"failure"), saved before reporting starts so an
    # interrupted report is finished with the same outcome instead of running the task again.
    outcome = models.CharField(max_length=16, blank=True)
    # Which named executor ran this attempt, and why it was that one.
    executor = models.CharField(max_length=63, blank=True, default="", db_default="")
    executor_reason = models.CharField(max_length=200, blank=True, default="", db_default="")
    result_summary = models.TextField(blank=True)
    result_url = models.URLField(max_length=1000, blank=True)
    result_url_title = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    output = models.TextField(blank=True)
    # The questions the executor asked and the replies they got, oldest first: each
    # {"kind": "question" | "reply", "text", "author", "author_gid", "at" (ISO time),
    # "story_gid", "run" (the run that asked, or that the reply started)}. A fresh claim
    # starts a new conversation.
    conversation = models.JSONField(
        default=list, blank=True, db_default=models.Value([], output_field=models.JSONField())
    )
    # When the task began waiting for a reply, and when its one reminder was posted.
    waiting_since = models.DateTimeField(null=True, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "task_gid"], name="processed_task_unique")
        ]
        indexes = [
            models.Index(fields=["state", "lease_expires_at"]),
            # The safety rails count a connection's claims of the last hour.
            models.Index(fields=["connection", "claimed_at"], name="processed_task_claimed"),
        ]
        permissions = [
            ("approve_processedtask", "Can approve or reject tasks awaiting approval"),
        ]

    def __str__(self) -> str:
        return f"ASANA-{self.task_gid} ({self.get_state_display()})"

    @property
    def ran_until(self) -> datetime | None:
        """When the run's time stops counting: the executor's end, else the row's finish."""
        return self.executed_at or self.finished_at


class Run(models.Model):
    """One execution attempt of a ledger row: what started it, what it printed, how it ended.

    `progress` is a list of {"at": ISO time, "text": str}, the last PROGRESS_KEPT lines;
    `output` the bounded output (as on the ledger row). `stop_requested_at` is set by whoever
    asks the run to stop (the admin, a webhook, a poll); the process executing it looks at it
    every PILOT_STOP_CHECK_SECONDS and ends the executor's process group.
    """

    class Trigger(models.TextChoices):
        POLL = "poll", "poll"
        WEBHOOK = "webhook", "webhook"
        ADMIN_RETRY = "admin retry", "admin retry"
        ASANA_RETRY = "asana retry", "Asana retry"
        APPROVAL = "approval", "approval"
        REPLY = "reply", "reply"

    class Outcome(models.TextChoices):
        DONE = "done", "done"
        FAILED = "failed", "failed"
        STOPPED = "stopped", "stopped"
        INTERRUPTED = "interrupted", "interrupted"
        REJECTED = "rejected", "rejected"
        NEEDS_INPUT = "needs input", "needs input"

    PROGRESS_KEPT = 200

    processed_task = models.ForeignKey(ProcessedTask, on_delete=models.CASCADE, related_name="runs")
    number = models.PositiveIntegerField(default=1, help_text="the ledger row's attempt")
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    approved_by = models.CharField(max_length=150, blank=True)
    executor = models.CharField(max_length=63, blank=True)
    claimed_by = models.CharField(max_length=100, blank=True, help_text="the executing process")
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    # When the executor ended (as on the ledger row); the duration shown runs to here.
    executed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True)
    progress = models.JSONField(default=list, blank=True)
    output = models.TextField(blank=True)
    result_url = models.URLField(max_length=1000, blank=True)
    error = models.TextField(blank=True)
    stop_requested_at = models.DateTimeField(null=True, blank=True)
    stop_requested_by = models.CharField(max_length=200, blank=True)
    # The one Asana comment that shows this run's progress, edited in place.
    progress_story_gid = models.CharField(max_length=32, blank=True)
    # The text that comment last had in Asana, so the run's end edits it only when it differs.
    progress_shown = models.TextField(blank=True, default="", db_default="")
    # Shadow mode: each write the run would have sent to Asana, in order:
    # [{"action": "asana.comment", "detail": "Successfully completed: …"}, ...].
    would_post = models.JSONField(
        default=list, blank=True, db_default=models.Value([], output_field=models.JSONField())
    )

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["processed_task", "number"], name="run_unique_number")
        ]
        # The safety rails read a connection's latest finished runs.
        indexes = [models.Index(fields=["finished_at"], name="run_finished")]

    def __str__(self) -> str:
        return f"run {self.number} of ASANA-{self.processed_task.task_gid}"

    @property
    def live(self) -> bool:
        return not self.outcome and self.finished_at is None


class WebhookRegistration(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", "pending handshake"
        ACTIVE = "active", "active"
        FAILING = "failing", "failing"
        GONE = "gone", "deleted by Asana"

    connection = models.ForeignKey(
        AsanaConnection, on_delete=models.CASCADE, related_name="webhooks"
    )
    hook_id = models.CharField(
        max_length=64, unique=True, default=secrets.token_urlsafe, editable=False
    )
    resource_gid = models.CharField(max_length=32, validators=[gid_validator])
    # The resource's name (a project's, usually) as Asana gave it at registration.
    resource_name = models.CharField(max_length=255, blank=True)
    target_url = models.URLField(max_length=500)
    webhook_gid = models.CharField(max_length=32, blank=True)
    secret = EncryptedTextField(blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    last_delivery_at = models.DateTimeField(null=True, blank=True)
    # Any verified request from Asana, heartbeats included.
    last_contact_at = models.DateTimeField(null=True, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"webhook on {self.resource_gid} ({self.state})"


class WebhookDelivery(models.Model):
    """Digest of each accepted delivery body, so a replayed body is acknowledged but not
    processed twice. Rows are pruned after WEBHOOK_DELIVERY_RETENTION days."""

    registration = models.ForeignKey(
        WebhookRegistration, on_delete=models.CASCADE, related_name="deliveries"
    )
    body_sha256 = models.CharField(max_length=64)
    event_count = models.PositiveIntegerField(default=0)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["registration", "body_sha256"], name="webhook_delivery_unique_body"
            )
        ]

    def __str__(self) -> str:
        return f"delivery {self.body_sha256[:12]} ({self.event_count} events)"


class AuditLogQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise ValidationError("The audit log is append-only.")

    def delete(self):
        raise ValidationError("The audit log is append-only.")


class AuditLog(models.Model):
    """Append-only: every admin change, every mutation sent to Asana, every webhook received."""

    class Outcome(models.TextChoices):
        OK = "ok", "ok"
        WARNING = "warning", "warning"
        ERROR = "error", "error"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=150, help_text="user name, or system/poller/webhook")
    action = models.CharField(max_length=100)
    target = models.CharField(max_length=300, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.OK)
    detail = models.TextField(blank=True)
    connection = models.ForeignKey(
        AsanaConnection, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = AuditLogQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        # Imported here: the audit package writes this table, so it imports this module.
        from integrations.audit.actions import action_label

        when = f"{self.created_at:%Y-%m-%d %H:%M:%S}"
        return f"{when} {self.actor_label}: {action_label(self.action)} {self.target}".rstrip()

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValidationError("The audit log is append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValidationError("The audit log is append-only.")
