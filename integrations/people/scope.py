"""Who sees whose rows, for every admin list, tab and form of both apps.

The rule, once: a user who may change employees (`integrations.change_employee`; superusers
hold every permission) sees every employee's rows; anyone else sees the rows of employees
whose manager they are, and down their reporting lines: a report whose email matches
(case-insensitively) a user who manages others brings that user's reports along, level by
level (at most `MAX_DEPTH`, so a loop in the data cannot run on). Who may change employees
can re-point any employee's manager to themselves, so showing them less would protect
nothing.

Querysets are cut here, on the server, so the scope holds whatever a URL or a form asks for.
"""

from typing import Any, TypeVar

from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Model, QuerySet
from django.db.models.functions import Lower
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse

from integrations.models import Employee

M = TypeVar("M", bound=Model)

SEES_EVERYONE = "integrations.change_employee"
MAX_DEPTH = 5


def sees_everyone(user: User | AnonymousUser) -> bool:
    """True when `user` may see every employee's rows (see the module's rule)."""
    return bool(user.has_perm(SEES_EVERYONE))


def visible_managers(user: User) -> list[int]:
    """Ids of the users whose reports `user` sees: `user` and, level by level, the users whose
    email is that of one of those reports. One query per level, once per user object (a
    request's user), so a page asking several times pays once."""
    from django.contrib.auth import get_user_model

    cached = getattr(user, "_visible_managers", None)
    if cached is not None:
        return cached
    seen = [user.pk]
    level = [user.pk]
    for _ in range(MAX_DEPTH):
        emails = (
            Employee.objects.filter(manager_id__in=level)
            .exclude(email="")
            .annotate(lower_email=Lower("email"))
            .values("lower_email")
        )
        users = get_user_model().objects.annotate(lower_email=Lower("email"))
        level = [
            pk
            for pk in users.filter(lower_email__in=emails).values_list("pk", flat=True)
            if pk not in seen
        ]
        if not level:
            break
        seen.extend(level)
    user._visible_managers = seen  # type: ignore[attr-defined]
    return seen


def scope_to_reports(
    queryset: QuerySet[M], user: User | AnonymousUser, manager_lookup: str
) -> QuerySet[M]:
    """`queryset` cut to the rows `user` may see; `manager_lookup` is the ORM path from the
    queryset's model to the employee's manager ("manager" on Employee itself,
    "employee__manager" one step away). An anonymous user sees nothing."""
    if sees_everyone(user):
        return queryset
    if not user.is_authenticated:
        return queryset.none()
    return queryset.filter(**{f"{manager_lookup}__in": visible_managers(user)})


def scoped_employees(user: User | AnonymousUser) -> QuerySet[Employee]:
    """The employees `user` may see."""
    return scope_to_reports(Employee.objects.all(), user, "manager")


class OutsideReportsMessage:
    """Admin mixin for a model admin whose rows are cut to the user's scope: opening a row
    outside it reads as such (below)."""

    def _get_obj_does_not_exist_redirect(
        self, request: HttpRequest, opts: Any, object_id: str
    ) -> HttpResponseRedirect:
        """A row the user may not load, or one that does not exist, for someone who sees only
        their reports: the same message either way (whether another manager's row exists is
        not theirs to learn), and back to the list of the rows they do see. Who sees everyone
        gets Django's "doesn't exist" message."""
        if sees_everyone(request.user):
            return super()._get_obj_does_not_exist_redirect(  # type: ignore[misc]
                request, opts, object_id
            )
        messages.warning(
            request,
            f"You can only see your own reports (and theirs): no {opts.verbose_name} with ID "
            f"“{unquote(object_id)}” is among them.",
        )
        return HttpResponseRedirect(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))


class ReportsScopedAdmin(OutsideReportsMessage):
    """Admin mixin: the change list, change form and every URL load only the rows the user
    may see. `manager_lookup` is the path from the admin's model to the employee's manager."""

    manager_lookup = "manager"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)  # type: ignore[misc]
        return scope_to_reports(queryset, request.user, self.manager_lookup)
