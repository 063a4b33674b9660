"""Which goal data a user may see, by the one rule in integrations.people.scope: everyone's
for who may change employees, otherwise only their own reports'.

The tab and the admin both load rows through these querysets, so the scope holds on the server
whatever a URL or a form asks for.
"""

from typing import TypeVar

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Model, Q, QuerySet
from django.db.models.functions import Lower

from goals.models import GoalSync
from integrations.people import scope
from integrations.people.scope import scoped_employees

__all__ = ["scope_to_reports", "scoped_employees", "scoped_syncs"]

M = TypeVar("M", bound=Model)


def scope_to_reports(
    queryset: QuerySet[M], user: User | AnonymousUser, employee_path: str = "employee"
) -> QuerySet[M]:
    """`queryset` cut to rows whose employee (reached by `employee_path`) `user` may see."""
    return scope.scope_to_reports(queryset, user, f"{employee_path}__manager")


def scoped_syncs(user: User | AnonymousUser) -> QuerySet[GoalSync]:
    """Whole-workspace syncs, and one-employee syncs only of employees `user` may see: which
    of another manager's reports was synced, and why it failed, is not this manager's business."""
    syncs = GoalSync.objects.all()
    if scope.sees_everyone(user):
        return syncs
    emails = scoped_employees(user).annotate(lower_email=Lower("email")).values("lower_email")
    return syncs.filter(Q(employee_email="") | Q(employee_email__in=emails))
