"""Goals with a progress history, written straight to the database for the tab's tests."""

import datetime

from django.utils import timezone

from goals.models import EmployeeGoalState, Goal, ProgressSnapshot
from integrations.models import Employee


def days_ago(n: float) -> datetime.datetime:
    return timezone.now() - datetime.timedelta(days=n)


def employee(name: str, manager=None, connection=None) -> Employee:
    """An employee, synced just now from `connection` when one is given."""
    person = Employee.objects.create(
        name=name, email=f"{name.lower().replace(' ', '.')}@example.com", manager=manager
    )
    if connection is not None:
        EmployeeGoalState.objects.create(
            employee=person, connection=connection, last_synced_at=days_ago(0)
        )
    return person


def goal(connection, owner, name, history=(), due_in_days=None, **fields) -> Goal:
    """A goal with a metric whose progress went through `history` [(days ago, progress)]."""
    progress = history[-1][1] if history else fields.pop("progress", None)
    item = Goal.objects.create(
        connection=connection,
        employee=owner,
        name=name,
        asana_gid=str(Goal.objects.count() + 100),
        due_on=None
        if due_in_days is None
        else timezone.localdate() + datetime.timedelta(days=due_in_days),
        has_metric=progress is not None,
        metric_initial=0,
        metric_target=100,
        metric_current=None if progress is None else progress * 100,
        progress=progress,
        **fields,
    )
    for ago, value in history:
        ProgressSnapshot.objects.create(goal=item, taken_at=days_ago(ago), progress=value)
    return item
