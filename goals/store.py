"""Replace each employee's stored goals with what a sync read from Asana.

One transaction per employee: a failure part-way leaves every employee with either their old
list or their new one, never half of each. Rows are upserted by Asana GID, so a re-sync
updates goals and key results in place (keeping their ids) instead of duplicating them.
"""

import datetime
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.db import transaction
from django.utils import timezone

from goals import history
from goals.fields import goal_fields, key_result_fields, owner_gid
from goals.models import EmployeeGoalState, Goal, KeyResult
from integrations.models import AsanaConnection, AsanaMapping

# The rows _upsert keeps in Asana's order.
Row = TypeVar("Row", Goal, KeyResult)


@dataclass
class EmployeePlan:
    """One employee's goals as read: the kept ones in Asana's order, and their sub-goals."""

    mapping: AsanaMapping
    owned: int
    goals: list[dict]
    # goal gid -> sub-goal records (with status, due date, metric where known)
    key_results: dict[str, list[dict]] = field(default_factory=dict)


@dataclass
class Plan:
    """Everything one sync read, before anything is written."""

    employees: list[EmployeePlan]
    unowned: int
    unmapped: int
    mapped_employee_ids: set[int]


@dataclass
class EmployeeResult:
    """What storing one employee did: the counts `syncgoals` prints."""

    email: str
    name: str
    owned: int = 0
    kept: int = 0
    key_results: int = 0
    removed: int = 0
    truncated: bool = False


def _upsert(
    model: type[Row], existing: dict[str, Row], wanted: list[tuple[str, dict]], **parent: Any
) -> int:
    """Make the rows under `parent` exactly `wanted` (gid, fields) in order; returns removed."""
    keep = {gid for gid, _ in wanted}
    removed = [obj.pk for gid, obj in existing.items() if gid not in keep]
    if removed:
        model.objects.filter(pk__in=removed).delete()
    new: list[Row] = []
    changed: list[Row] = []
    names: set[str] = set()
    for position, (gid, values) in enumerate(wanted):
        values = {**values, "position": position}
        names.update(values)
        obj = existing.get(gid)
        if obj is None:
            new.append(model(asana_gid=gid, **parent, **values))
        elif any(getattr(obj, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(obj, k, v)
            changed.append(obj)
    model.objects.bulk_create(new, batch_size=500)
    if changed:
        model.objects.bulk_update(changed, sorted(names), batch_size=500)
    return len(removed)


def nested_subgoals(employee: EmployeePlan) -> set[str]:
    """GIDs of the employee's goals that are also a sub-goal, owned by the same person, of
    another of their kept goals: those are shown once, as a key result under that parent.

    Taken in Asana's order, so a goal that is already shown under a parent never hides its
    own parent (Asana forbids cycles; this keeps even a malformed answer from hiding both).
    """
    own = employee.mapping.asana_user_gid
    gids = {str(raw["gid"]) for raw in employee.goals}
    nested: set[str] = set()
    for raw in employee.goals:
        parent = str(raw["gid"])
        if parent in nested:
            continue
        for sub in employee.key_results.get(parent, []):
            gid = str(sub["gid"])
            if gid != parent and gid in gids and owner_gid(sub) == own:
                nested.add(gid)
    return nested


def _write_employee(
    connection: AsanaConnection, employee: EmployeePlan, now: datetime.datetime
) -> EmployeeResult:
    emp = employee.mapping.employee
    result = EmployeeResult(email=emp.email, name=emp.name, owned=employee.owned)
    with transaction.atomic():
        existing = {
            g.asana_gid: g for g in Goal.objects.filter(connection=connection, employee=emp)
        }
        nested = nested_subgoals(employee)
        wanted = [
            (str(raw["gid"]), goal_fields(raw))
            for raw in employee.goals
            if str(raw["gid"]) not in nested
        ]
        result.removed = _upsert(Goal, existing, wanted, connection=connection, employee=emp)
        goals = {g.asana_gid: g for g in Goal.objects.filter(connection=connection, employee=emp)}
        key_results: dict[int, dict[str, KeyResult]] = {}
        for kr in KeyResult.objects.filter(goal__in=goals.values()):
            key_results.setdefault(kr.goal_id, {})[kr.asana_gid] = kr
        for gid, goal in goals.items():
            subgoals = employee.key_results.get(gid, [])
            wanted_krs = [(str(raw["gid"]), key_result_fields(raw)) for raw in subgoals]
            _upsert(KeyResult, key_results.get(goal.pk, {}), wanted_krs, goal=goal)
            result.key_results += len(wanted_krs)
        history.record_snapshots(
            goals.values(), KeyResult.objects.filter(goal__in=goals.values()), now
        )
        result.kept = len(goals)
        result.truncated = employee.owned > len(employee.goals)
        EmployeeGoalState.objects.update_or_create(
            connection=connection,
            employee=emp,
            defaults={
                "last_synced_at": now,
                "owned": employee.owned,
                "kept": result.kept,
                "truncated": result.truncated,
            },
        )
    return result


def write_plan(connection: AsanaConnection, plan: Plan, *, prune: bool) -> list[EmployeeResult]:
    """Store what was read, employee by employee; with `prune`, drop employees no longer mapped."""
    now = timezone.now()
    results = [_write_employee(connection, employee, now) for employee in plan.employees]
    if prune:
        # Employees no longer mapped in this workspace keep no goals from it.
        with transaction.atomic():
            Goal.objects.filter(connection=connection).exclude(
                employee_id__in=plan.mapped_employee_ids
            ).delete()
            EmployeeGoalState.objects.filter(connection=connection).exclude(
                employee_id__in=plan.mapped_employee_ids
            ).delete()
    history.prune(now)
    return results
