"""The executor section of an Asana card: the executor in use, the tag rules, which executor
the latest runs got and why, and the form that picks among the executors the operator
defined (never a command: those live in the operator's configuration only)."""

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path

from integrations.models import AsanaConnection, ProcessedTask
from integrations.pipeline.executors import (
    ExecutorChoiceError,
    describe,
    executor_configured,
    load,
    set_executor_choice,
)
from pilotsite.admin import back_to_tab, tab_post

RECENT_RUNS = 5
BLANK_RULES = 2
# A refused choice waits in the session for the next page view: {connection pk: [errors]}.
_ERRORS = "integrations.executor_errors"


def card(request: HttpRequest, connection: AsanaConnection) -> dict[str, Any]:
    """What the section shows: `name`, `configured`, `description`, `rules` (tag, executor,
    description), `choices` (name, description), `problems` (definition mistakes), `recent`
    runs with the executor they got and why, `errors` of a refused save, `rows` for the form."""
    executors, problems = load()
    rules = [
        {"tag": r.get("tag", ""), "executor": r.get("executor", "")}
        for r in connection.executor_routes or []
    ]
    for rule in rules:
        rule["description"] = describe(rule["executor"])
        rule["defined"] = rule["executor"] in executors
    recent = (
        ProcessedTask.objects.filter(connection=connection)
        .exclude(executor="")
        .only("task_gid", "task_name", "state", "executor", "executor_reason", "started_at")
        .order_by("-started_at", "-pk")[:RECENT_RUNS]
    )
    errors = request.session.get(_ERRORS, {})
    mine = errors.pop(str(connection.pk), [])
    if mine:
        request.session[_ERRORS] = errors
    return {
        "name": connection.executor,
        "configured": executor_configured(connection),
        "description": describe(connection.executor),
        "rules": rules,
        "choices": [(name, spec.describe()) for name, spec in executors.items()],
        "problems": problems,
        "recent": list(recent),
        "errors": mine,
        "rows": [*rules, *({"tag": "", "executor": ""} for _ in range(BLANK_RULES))],
    }


@tab_post("integrations.change_asanaconnection")
def executor_view(request: HttpRequest, pk: int) -> HttpResponse:
    connection = get_object_or_404(AsanaConnection, pk=pk)
    routes = list(
        zip(request.POST.getlist("route_tag"), request.POST.getlist("route_executor"), strict=False)
    )
    try:
        changed = set_executor_choice(
            connection, request.POST.get("executor", ""), routes, actor=request.user
        )
    except ExecutorChoiceError as exc:
        request.session[_ERRORS] = {
            **request.session.get(_ERRORS, {}),
            str(connection.pk): [f"Executor not saved: {exc}"],
        }
        return back_to_tab("integrations", f"executor-{connection.pk}")
    messages.success(
        request,
        f"{connection}: executor {connection.executor} saved."
        if changed
        else f"{connection}: executor unchanged.",
    )
    return back_to_tab("integrations", f"executor-{connection.pk}")


urlpatterns = [path("<int:pk>/executor/", executor_view, name="executor")]
