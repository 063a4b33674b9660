"""django-q2's admin, restricted. django-q2 runs whatever function a schedule or a task
names, so its admin would otherwise let anyone allowed to add a schedule (or resubmit a
task) run any code on the server:

- adding, changing or deleting schedules, and resubmitting or deleting tasks, is for
  superusers only; other staff with django-q2's view permissions may look;
- a schedule may only name one of the job functions the apps registered
  (`schedules.register_job`) and no hook, and tasks are resubmitted only when their function
  is one of them (or its path in an earlier release);
- the schedules pilotsite owns ("pilotsite: …") are read-only for everyone and cannot be
  deleted: pilotsite recreates them after every migrate;
- every change is audited (the site announces every admin change), resubmissions included
  (`signals.task_resubmitted`).
"""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django_q import admin as q_admin
from django_q.models import Failure, OrmQ, Schedule, Success
from django_q.tasks import async_task

from pilotsite.schedules import OWNED_PREFIX, is_job_function, is_owned, job_functions
from pilotsite.signals import task_resubmitted


def _superuser(request: HttpRequest) -> bool:
    return request.user.is_active and request.user.is_superuser


class ScheduleForm(forms.ModelForm):
    func = forms.ChoiceField(
        label="Function",
        # A callable: the apps register their jobs after this module is imported.
        choices=lambda: [(f, f) for f in job_functions()],
        help_text="Only pilotsite's own jobs can be scheduled here.",
    )

    class Meta:
        model = Schedule
        # No `hook`: it names a function too, run after each task.
        fields = [
            "name",
            "func",
            "args",
            "kwargs",
            "schedule_type",
            "minutes",
            "repeats",
            "next_run",
            "cron",
            "cluster",
            "intended_date_kwarg",
        ]

    def clean_name(self) -> str:
        name = self.cleaned_data.get("name") or ""
        if is_owned(name):
            raise forms.ValidationError(
                f"Names starting with {OWNED_PREFIX!r} are reserved for pilotsite's own "
                "schedules; choose another name."
            )
        return name


class ScheduleAdmin(q_admin.ScheduleAdmin):
    form = ScheduleForm

    def has_add_permission(self, request: HttpRequest) -> bool:
        return _superuser(request)

    def has_change_permission(self, request: HttpRequest, obj: Schedule | None = None) -> bool:
        return _superuser(request) and not (obj is not None and is_owned(obj.name))

    def has_delete_permission(self, request: HttpRequest, obj: Schedule | None = None) -> bool:
        return _superuser(request) and not (obj is not None and is_owned(obj.name))

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple:
        # The bulk "delete selected" action asks per queryset, not per row: an owned schedule
        # among the rows refuses the whole deletion, as a missing permission does.
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        owned = [str(o) for o in objs if is_owned(o.name)]
        if owned:
            perms_needed = {*perms_needed, "pilotsite's own schedules (" + ", ".join(owned) + ")"}
        return deleted, counts, perms_needed, protected


@admin.action(description="Resubmit selected tasks to the queue (pilotsite's jobs only)")
def resubmit_task(model_admin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    if not _superuser(request):
        model_admin.message_user(request, "Only superusers may resubmit tasks.", messages.ERROR)
        return
    for task in queryset:
        if not is_job_function(task.func):
            model_admin.message_user(
                request,
                f"{task.name} was not resubmitted: {task.func} is not one of pilotsite's jobs.",
                messages.WARNING,
            )
            continue
        async_task(task.func, *task.args or (), group=task.group, **task.kwargs or {})
        task_resubmitted.send(type(task), request=request, task=task)
        if isinstance(task, Failure):
            task.delete()
        model_admin.message_user(request, f"{task.name} resubmitted.", messages.SUCCESS)


class _SuperuserChanges(admin.ModelAdmin):
    """Rows of django-q2's own bookkeeping: deleted (or resubmitted) by superusers only."""

    actions = [resubmit_task]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _superuser(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _superuser(request) and super().has_delete_permission(request, obj)


class TaskAdmin(_SuperuserChanges, q_admin.TaskAdmin):
    pass


class FailAdmin(_SuperuserChanges, q_admin.FailAdmin):
    pass


class QueueAdmin(_SuperuserChanges, q_admin.QueueAdmin):
    actions = []


def install(site: admin.AdminSite) -> None:
    """Replace django-q2's own admins (registered by its admin module) with these."""
    for model, model_admin in (
        (Schedule, ScheduleAdmin),
        (Success, TaskAdmin),
        (Failure, FailAdmin),
        (OrmQ, QueueAdmin),
    ):
        if site.is_registered(model):
            site.unregister(model)
            site.register(model, model_admin)
