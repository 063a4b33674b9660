"""The integrations models in the admin. Tokens and secrets are never displayed, the audit log
is read-only, and every change made here is also written to the audit log."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join, strip_tags
from django.utils.safestring import mark_safe
from django.utils.text import Truncator
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables

from integrations.asana.errors import AsanaError
from integrations.asana.tokens import TokenField
from integrations.audit.actions import action_label
from integrations.audit.text import describe
from integrations.connect import ConnectError, Workspace, save_connection, verify_workspace
from integrations.models import (
    AsanaConnection,
    AsanaMapping,
    AuditLog,
    Employee,
    ProcessedTask,
    Run,
    WebhookRegistration,
)
from integrations.people.mapping import MappingError, check_mapping, known_users, user_name
from integrations.people.scope import ReportsScopedAdmin
from integrations.pipeline import retry
from integrations.pipeline.approval_views import approval_context
from integrations.pipeline.card import asana_url, seconds
from integrations.pipeline.execute import OUTPUT_LIMIT
from integrations.pipeline.stop import live_run, stop_from_admin, stop_waiting_from_admin
from integrations.webhooks.registration import mask_hook_ids
from pilotsite.admin import AuditedAdmin, ReadOnlyAdmin
from pilotsite.liveness import worker_absent_note
from pilotsite.untrusted import external_link


class AsanaConnectionForm(forms.ModelForm):
    new_token = TokenField(
        label="Personal access token",
        required=False,
        help_text="Leave blank to keep the stored token. A new token is verified with Asana.",
    )

    class Meta:
        model = AsanaConnection
        fields = [
            "workspace_gid",
            "pilot_tag",
            "polling_enabled",
            "poll_interval",
            "skip_backlog",
            "goals_sync_interval",
            "watch_method",
            "rollout_mode",
        ]

    @method_decorator(sensitive_variables("token", "data"))
    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        token = data.get("new_token")
        gid = data.get("workspace_gid") or self.instance.workspace_gid
        self.verified_workspace: Workspace | None = None
        if not token and not self.instance.pk:
            self.add_error("new_token", "A new connection needs a personal access token.")
        elif token and gid:
            try:
                self.verified_workspace = verify_workspace(token, gid)
            except ConnectError as exc:
                self.add_error("new_token", str(exc))
        return data


@admin.register(AsanaConnection)
class AsanaConnectionAdmin(AuditedAdmin):
    form = AsanaConnectionForm
    list_display = [
        "__str__",
        "masked_token",
        "pilot_tag",
        "polling_enabled",
        "poll_interval",
        "rollout_mode",
        "last_checked_at",
        "healthy",
    ]
    readonly_fields = [
        "workspace_name",
        "masked_token",
        "last_checked_at",
        "last_error",
        "last_poll_at",
        "last_poll_result",
        "backlog_checked_at",
        # Chosen on the card, where only defined executors can be picked and rules are checked.
        "executor",
        "executor_routes",
        # The safety rails' state changes only by tripping, a probe or Resume on the card.
        "paused_at",
        "pause_kind",
        "pause_reason",
        "resumed_at",
        "created_at",
        "updated_at",
    ]

    @method_decorator(sensitive_post_parameters("new_token"))
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        return super().changeform_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change) -> None:
        # The one write path (token, workspace name, health, cached tags, audit row).
        # The form has run the model's rules already, so this refuses nothing.
        data = form.cleaned_data
        save_connection(
            obj,
            settings={name: data[name] for name in AsanaConnection.SETTINGS if name in data},
            token=data.get("new_token") or "",
            workspace=form.verified_workspace,
            actor=request.user,
        )

    # save_connection wrote the audit row; Django's own history entry is still kept.
    def log_addition(self, request, obj, message):
        return admin.ModelAdmin.log_addition(self, request, obj, message)

    def log_change(self, request, obj, message):
        return admin.ModelAdmin.log_change(self, request, obj, message)

    def get_readonly_fields(self, request, obj=None):
        # Another workspace is another connection: add one instead of repointing this one.
        extra = ["workspace_gid"] if obj is not None else []
        return [*extra, *self.readonly_fields]

    @admin.display(description="Token")
    def masked_token(self, obj: AsanaConnection) -> str:
        return obj.masked_token

    @admin.display(boolean=True)
    def healthy(self, obj: AsanaConnection) -> bool | None:
        return obj.healthy


class AsanaMappingForm(forms.ModelForm):
    """A mapping added or changed in the admin, checked by the mapping policy every way of
    mapping follows (integrations.people.mapping); this form is where an employee's
    existing mapping may be changed to another Asana user."""

    class Meta:
        model = AsanaMapping
        fields = ["employee", "connection", "asana_user_gid", "asana_user_name"]

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        connection, gid = data.get("connection"), data.get("asana_user_gid")
        if connection is None or not gid or self.has_error("asana_user_gid"):
            return data
        # In the employee's page the employee is the page's, not a field of this form.
        employee = (
            data.get("employee") or Employee.objects.filter(pk=self.instance.employee_id).first()
        )
        users, _ = known_users(connection)
        try:
            check_mapping(
                connection,
                employee or Employee(name="This employee"),
                gid,
                users=users,
                editing=self.instance if self.instance.pk else None,
            )
        except MappingError as exc:
            self.add_error("asana_user_gid", str(exc))
            return data
        if not data.get("asana_user_name"):
            self.instance.asana_user_name = data["asana_user_name"] = user_name(users, gid)
        return data


class AsanaMappingInline(admin.TabularInline):
    model = AsanaMapping
    form = AsanaMappingForm
    extra = 0
    fields = ["connection", "asana_user_gid", "asana_user_name"]


@admin.register(Employee)
class EmployeeAdmin(ReportsScopedAdmin, AuditedAdmin):
    list_display = ["name", "email", "manager", "is_approver"]
    list_select_related = ["manager"]
    # Only managers of the rows this user may load: a manager's list names nobody else.
    list_filter = [("manager", admin.RelatedOnlyFieldListFilter), "is_approver"]
    search_fields = ["name", "email"]
    inlines = [AsanaMappingInline]


@admin.register(AsanaMapping)
class AsanaMappingAdmin(ReportsScopedAdmin, AuditedAdmin):
    form = AsanaMappingForm
    manager_lookup = "employee__manager"
    list_display = ["employee", "connection", "asana_user_gid", "asana_user_name"]
    list_select_related = ["employee", "connection"]
    list_filter = ["connection"]
    search_fields = ["employee__name", "employee__email", "asana_user_gid", "asana_user_name"]


class RunInline(admin.TabularInline):
    """The ledger row's runs, newest first, each linking to its run page."""

    model = Run
    extra = 0
    can_delete = False
    verbose_name_plural = "Runs"
    empty_value_display = "—"
    fields = readonly_fields = (
        "run_page",
        "trigger",
        "outcome_text",
        "started_at",
        "finished_at",
        "approved_by",
        "stop_requested_by",
    )
    ordering = ["-number"]

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="Run")
    def run_page(self, obj: Run) -> str:
        return run_link(obj)

    @admin.display(description="Outcome")
    def outcome_text(self, obj: Run) -> str:
        return run_status(obj)


def run_status(run: Run) -> str:
    """A run's state in a word: its outcome, or "running" / "stopping" while it is live."""
    if run.live:
        return "stopping" if run.stop_requested_at else "running"
    return run.get_outcome_display() or "finished"


def run_link(run: Run) -> str:
    """ "Run 2 (running)" linking to the run page."""
    label = f"Run {run.number}" + (f" ({run_status(run)})" if run.live else "")
    return format_html(
        '<a href="{}">{}</a>', reverse("admin:integrations:run", args=[run.pk]), label
    )


def stop_button(run: Run, back: str) -> str:
    """A Stop button for a live run inside the admin's own form (the change list's, the
    change page's): it posts that form, with its CSRF token, to the run's stop view, which
    sends the user back to `back`."""
    return format_html(
        '<button type="submit" class="button pilot-stop" formaction="{}" name="next" '
        'value="{}" aria-label="Stop run {} of ASANA-{}">Stop</button>',
        reverse("admin:integrations:run-stop", args=[run.pk]),
        back,
        run.number,
        run.processed_task.task_gid,
    )


# The list shows this many runs per row, newest first.
LIST_RUNS = 3
# The list's Result column: characters shown, and at most this many in its hover title.
RESULT_SHOWN = 100
RESULT_TITLE = 1000
# What the change page shows first; every other field of the row follows under "Details".
TASK_FIELDS = ("task_link", "workspace", "state", "source", "executor", "executor_reason")
RESULT_FIELDS = ("outcome", "result_summary", "result_link", "error", "skip_reason")
TIME_FIELDS = (
    "attempts",
    "claimed_at",
    "started_at",
    "executed_at",
    "finished_at",
    "waited",
    "ran",
)
# Shown through task_link, result_link and output_text instead.
SHOWN_OTHERWISE = {"connection", "task_gid", "task_name", "permalink_url"}
SHOWN_OTHERWISE |= {"result_url", "result_url_title", "output"}


@admin.register(ProcessedTask)
class ProcessedTaskAdmin(AuditedAdmin):
    """The dispatch ledger; rows are written by the pipeline, not by hand. Every field is
    read-only: the change permission is for the list's actions and the Stop button."""

    inlines = [RunInline]
    empty_value_display = "—"
    change_form_template = "admin/integrations/processedtask/change_form.html"

    list_display = [
        "task",
        "workspace",
        "state_column",
        "executor",
        "claimed",
        "ran",
        "runs_column",
        "result",
    ]
    list_select_related = ["connection"]
    list_filter = ["state", "source", "executor", "connection"]
    search_fields = ["task_gid", "task_name"]
    date_hierarchy = "created_at"
    actions = ["retry_failed_tasks", "release_skipped_tasks", "stop_running_tasks"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        # A deleted row would let the task run again; "Release" and "Retry" are the ways.
        return False

    def get_queryset(self, request: HttpRequest):
        # The list's runs column: one query for every row's runs, without their output.
        runs_shown = Run.objects.only(
            "id", "processed_task_id", "number", "outcome", "finished_at", "stop_requested_at"
        ).order_by("-number")
        return super().get_queryset(request).prefetch_related(Prefetch("runs", runs_shown))

    @admin.display(description="State", ordering="state")
    def state_column(self, obj: ProcessedTask) -> str:
        """The state, marked when the task ran in shadow mode, as on the card: a shadow
        *done* was never reported in Asana."""
        if not obj.shadow:
            return obj.get_state_display()
        return format_html(
            '{}<br><small class="pilot-shadow" title="{}">shadow</small>',
            obj.get_state_display(),
            "shadow mode: nothing was written to Asana",
        )

    @admin.display(description="Runs")
    def runs_column(self, obj: ProcessedTask, stop_back: str = "") -> str:
        """The newest runs, linked to their pages; with `stop_back`, a Stop button for the
        live run that brings the user back there."""
        shown = list(obj.runs.all())
        cells = [run_link(run) for run in shown[:LIST_RUNS]]
        if len(shown) > LIST_RUNS:
            cells.append(format_html("and {} earlier", len(shown) - LIST_RUNS))
        live = next((r for r in shown if r.live and not r.stop_requested_at), None)
        if stop_back and live is not None:
            cells.append(stop_button(live, stop_back))
        return format_html_join(mark_safe("<br>"), "{}", ((c,) for c in cells)) or "—"

    def get_list_display(self, request: HttpRequest):
        # Stop is offered to those who may stop, and brings them back to this very list.
        if not request.user.has_perm("integrations.change_processedtask"):
            return self.list_display
        back = request.get_full_path()

        @admin.display(description="Runs")
        def runs_column(obj: ProcessedTask) -> str:
            return self.runs_column(obj, back)

        return [runs_column if name == "runs_column" else name for name in self.list_display]

    def changelist_view(self, request, extra_context=None):
        # Rows are looked at (and acted on), not changed.
        return super().changelist_view(
            request, {"title": "Processed tasks", **(extra_context or {})}
        )

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # Read-only: no Save buttons, and the title names the task instead of "Change …".
        context: dict[str, Any] = {"show_save": False, "show_save_and_continue": False}
        obj = self.get_object(request, object_id) if object_id else None
        if obj is not None:
            run = live_run(obj)
            latest = obj.runs.order_by("-number").first()
            context |= {
                "approval": approval_context(obj, request.user),
                "would_post": latest.would_post if latest and obj.shadow else [],
                "title": f"Processed task ASANA-{obj.task_gid}",
                "subtitle": obj.task_name or "(untitled task)",
                "live_run": run,
                "stop_button": stop_button(run, request.path)
                if run is not None
                and not run.stop_requested_at
                and self.has_change_permission(request, obj)
                else "",
            }
        return super().changeform_view(
            request, object_id, form_url, context | (extra_context or {})
        )

    def get_fieldsets(self, request, obj=None):
        named = {*TASK_FIELDS, *RESULT_FIELDS, *TIME_FIELDS, *SHOWN_OTHERWISE}
        details = [f.name for f in self.opts.fields if f.name not in named and f.name != "id"]
        return [
            (None, {"fields": TASK_FIELDS}),
            ("Result", {"fields": RESULT_FIELDS}),
            ("Timing", {"fields": TIME_FIELDS}),
            (
                "Output",
                {
                    "fields": ["output_text"],
                    "description": f"The end of the executor's standard output and error, at "
                    f"most {OUTPUT_LIMIT:,} characters.",
                },
            ),
            ("Details", {"fields": details, "classes": ["collapse"]}),
        ]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.opts.fields] + [
            "task_link",
            "workspace",
            "result_link",
            "waited",
            "ran",
            "output_text",
        ]

    @admin.display(description="Workspace", ordering="connection__workspace_name")
    def workspace(self, obj: ProcessedTask) -> str:
        return obj.connection.workspace_name or obj.connection.workspace_gid

    @admin.display(description="Claimed", ordering="claimed_at")
    def claimed(self, obj: ProcessedTask) -> str:
        if not obj.claimed_at:
            return "—"
        # Date and time each on one line, wrapping between them, so the list fits 1,280 px.
        moment = timezone.localtime(obj.claimed_at)
        return format_html(
            "<span>{}</span> <span>{}</span>",
            date_format(moment, "DATE_FORMAT"),
            date_format(moment, "TIME_FORMAT"),
        )

    @admin.display(description="Task", ordering="task_name")
    def task(self, obj: ProcessedTask) -> str:
        # The source (poll, webhook, admin) rides along here, so the list fits 1,366 px.
        return format_html(
            "{}<br><small>ASANA-{} · {}</small>",
            Truncator(obj.task_name or "(untitled task)").chars(80),
            obj.task_gid,
            obj.source or "—",
        )

    @admin.display(description="Task in Asana")
    def task_link(self, obj: ProcessedTask) -> str:
        label = f"{obj.task_name or '(untitled task)'} (ASANA-{obj.task_gid})"
        return external_link(asana_url(obj), label)

    @admin.display(description="Result link")
    def result_link(self, obj: ProcessedTask) -> str:
        return external_link(obj.result_url, obj.result_url_title) if obj.result_url else "—"

    @admin.display(description="Waited")
    def waited(self, obj: ProcessedTask) -> str:
        return seconds(obj.claimed_at, obj.started_at) or "—"

    @admin.display(description="Ran")
    def ran(self, obj: ProcessedTask) -> str:
        return seconds(obj.started_at, obj.ran_until) or "—"

    @admin.display(description="Result")
    def result(self, obj: ProcessedTask) -> str:
        # Cut short so the list fits 1,280 px; the whole text is the cell's title (hover).
        if obj.result_url:
            label = obj.result_url_title or obj.result_url
            short = Truncator(label).chars(RESULT_SHOWN)
            return format_html(
                '<span title="{}">{}</span>', label, external_link(obj.result_url, short)
            )
        text = obj.error or obj.result_summary or obj.skip_reason
        if len(text) <= RESULT_SHOWN:
            return text
        return format_html(
            '<span title="{}">{}</span>', text[:RESULT_TITLE], Truncator(text).chars(RESULT_SHOWN)
        )

    @admin.display(description="Output")
    def output_text(self, obj: ProcessedTask) -> str:
        return format_html("<pre>{}</pre>", obj.output) if obj.output else "—"

    def _report(self, request: HttpRequest, done: int, what: str, problems: list[str]) -> None:
        if done:
            self.message_user(request, f"{done} task(s) {what}.", messages.SUCCESS)
        for problem in problems:
            self.message_user(request, problem, messages.WARNING)

    @admin.action(
        description="Retry: remove pilot-failed in Asana so the next poll runs it again",
        permissions=["change"],
    )
    def retry_failed_tasks(self, request: HttpRequest, queryset) -> None:
        done, problems = 0, []
        for processed in queryset.select_related("connection"):
            if processed.state != ProcessedTask.State.FAILED:
                problems.append(f"{processed} was not retried: only failed tasks can be.")
                continue
            try:
                retry.retry_failed(processed, actor=request.user)
            except AsanaError as exc:
                problems.append(f"{processed} was not retried: {exc}")
                continue
            done += 1
        absent = (
            worker_absent_note(f"{done} task(s) will run again at the next poll") if done else ""
        )
        if absent:
            self.message_user(request, absent, messages.WARNING)
            done = 0
        self._report(request, done, "will run again at the next poll", problems)

    @admin.action(
        description="Stop: end the running executor, or the wait for input (pilot tags removed)",
        permissions=["change"],
    )
    def stop_running_tasks(self, request: HttpRequest, queryset) -> None:
        done, problems = 0, []
        for processed in queryset.select_related("connection"):
            if processed.state == ProcessedTask.State.WAITING:
                try:
                    stopped = stop_waiting_from_admin(processed, actor=request.user)
                except AsanaError as exc:
                    problems.append(f"{processed} was not stopped: {exc}")
                    continue
                if stopped:
                    done += 1
                    continue
            run = live_run(processed)
            if run is None or not stop_from_admin(run, actor=request.user):
                problems.append(
                    f"{processed} was not stopped: it is not running (or is reporting)."
                )
                continue
            done += 1
        self._report(request, done, "asked to stop", problems)

    @admin.action(
        description="Release: forget skipped tasks so the next poll may take them",
        permissions=["change"],
    )
    def release_skipped_tasks(self, request: HttpRequest, queryset) -> None:
        done, problems = 0, []
        for processed in queryset.select_related("connection"):
            if retry.release_skipped(processed, actor=request.user):
                done += 1
            else:
                problems.append(f"{processed} was not released: only skipped tasks can be.")
        self._report(request, done, "released", problems)


@admin.register(WebhookRegistration)
class WebhookRegistrationAdmin(ReadOnlyAdmin):
    list_display = ["resource_gid", "connection", "state", "webhook_gid", "last_delivery_at"]
    list_select_related = ["connection"]
    list_filter = ["state", "connection"]
    # The target embeds the hook id; it is not needed to verify deliveries (the secret is),
    # but there is no reason to show it in full either.
    exclude = ["secret", "target_url"]
    readonly_fields = ["target"]

    @admin.display(description="target URL")
    def target(self, obj: WebhookRegistration) -> str:
        return mask_hook_ids(obj.target_url)


class ActionFilter(admin.SimpleListFilter):
    """The audit list's "What happened" filter: the actions recorded so far, by their labels
    (`action_label`), not their stored codes."""

    title = "what happened"
    parameter_name = "action"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        codes = AuditLog.objects.order_by().values_list("action", flat=True).distinct()
        return sorted(((code, action_label(code)) for code in codes), key=lambda c: c[1])

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(action=self.value()) if self.value() else queryset


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdmin):
    list_display = ["when", "who", "what", "outcome", "detail_text"]
    list_filter = ["outcome", ActionFilter, "connection"]
    fields = ["actor", "actor_label", "action_text", "target", "outcome", "detail", "connection"]
    readonly_fields = ["action_text"]
    search_fields = ["action", "target", "detail", "actor_label"]
    date_hierarchy = "created_at"

    @admin.display(description="When", ordering="created_at")
    def when(self, obj: AuditLog) -> str:
        return date_format(timezone.localtime(obj.created_at), "DATETIME_FORMAT")

    @admin.display(description="Who", ordering="actor_label")
    def who(self, obj: AuditLog) -> str:
        return obj.actor_label

    @admin.display(description="What happened", ordering="action")
    def what(self, obj: AuditLog) -> str:
        return describe(obj, with_detail=False, with_actor=False)

    @admin.display(description="Action")
    def action_text(self, obj: AuditLog) -> str:
        return action_label(obj.action)

    @admin.display(description="Detail")
    def detail_text(self, obj: AuditLog) -> str:
        return Truncator(" ".join(strip_tags(obj.detail).split())).chars(240)
