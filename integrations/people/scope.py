"""Who sees whose rows, for every admin list, tab and form of both apps.

The rule, once: a user who may change employees (`integrations.change_employee`; superusers
hold every permission) sees every employee's rows; anyone else sees only the rows of
employees whose manager they are. Who may change employees can re-point any employee's
manager to themselves, so showing them less would protect nothing.

Querysets are cut here, on the server, so the scope holds whatever a URL or a form asks for.
"""

from typing import TypeVar

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from integrations.models import Employee

M = TypeVar("M", bound=Model)

SEES_EVERYONE = "integrations.change_employee"


def sees_everyone(user: AbstractBaseUser | AnonymousUser) -> bool:
    """True when `user` may see every employee's rows (see the module's rule)."""
    return bool(user.has_perm(SEES_EVERYONE))


def scope_to_reports(
    queryset: QuerySet[M], user: AbstractBaseUser | AnonymousUser, manager_lookup: str
) -> QuerySet[M]:
    """`queryset` cut to the rows `user` may see; `manager_lookup` is the ORM path from the
    queryset's model to the employee's manager ("manager" on Employee itself,
    "employee__manager" one step away). An anonymous user sees nothing."""
    if sees_everyone(user):
        return queryset
    if not user.is_authenticated:
        return queryset.none()
    return queryset.filter(**{manager_lookup: user})


def scoped_employees(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Employee]:
    """The employees `user` may see."""
    return scope_to_reports(Employee.objects.all(), user, "manager")


class ReportsScopedAdmin:
    """Admin mixin: the change list, change form and every URL load only the rows the user
    may see. `manager_lookup` is the path from the admin's model to the employee's manager."""

    manager_lookup = "manager"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)  # type: ignore[misc]
        return scope_to_reports(queryset, request.user, self.manager_lookup)
