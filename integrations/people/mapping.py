"""Which Asana user each employee is, and the one policy every way of mapping follows.

The policy (`mapping_problem`), for the integrations tab, the CSV import and the admin's
mapping forms alike:

- the Asana user GID is a number;
- an Asana user is one employee's per workspace: a GID mapped to someone else is refused;
- an employee has one Asana user per workspace, and it is changed deliberately, in the
  admin's mapping form (the row being edited), never by mapping them again from the tab
  or an import, which would silently undo someone's choice;
- the GID names a user of the workspace whenever the workspace's users can be read
  (`known_users`); when Asana cannot list them, a typed GID is the way round and is
  accepted as given.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from integrations import audit
from integrations.asana.client import client_for
from integrations.asana.errors import AsanaError
from integrations.audit import Action
from integrations.connect import explain, interactive
from integrations.models import AsanaConnection, AsanaMapping, Employee
from pilotsite.untrusted import ascii_lower


class MappingError(Exception):
    """A mapping was refused; the message says why and nothing was saved."""


@dataclass(frozen=True)
class AsanaUser:
    """A user of a workspace as Asana lists them (`GET /users?workspace=`)."""

    gid: str
    name: str
    email: str


def unmapped_employees(connection: AsanaConnection) -> QuerySet[Employee]:
    return Employee.objects.exclude(mappings__connection=connection).order_by("name", "email")


def workspace_users(connection: AsanaConnection) -> list[AsanaUser]:
    """Every user of the connection's workspace, all pages read within the interactive
    timeout. Raises MappingError (with `explain`'s sentence) when Asana cannot list them."""
    try:
        with client_for(connection, **interactive()) as client:
            users = list(client.workspace_users(connection.workspace_gid))
    except AsanaError as exc:
        raise MappingError(f"Could not read the workspace's users: {explain(exc)}") from None
    # Items are objects (the client checks); a user without a usable GID is of no use here.
    return [
        AsanaUser(str(u["gid"]), str(u.get("name") or ""), str(u.get("email") or ""))
        for u in users
        if str(u.get("gid") or "").isdigit()
    ]


def known_users(connection: AsanaConnection) -> tuple[list[AsanaUser] | None, str]:
    """The workspace's users, or None and the reason when Asana could not list them.

    Remembered for ASANA_USERS_CACHE_SECONDS, and a failure for
    ASANA_USERS_FAILURE_CACHE_SECONDS, so a slow Asana costs one page view (or one import
    preview) at most ASANA_INTERACTIVE_TIMEOUT seconds per period instead of every one."""
    key = f"pilotsite:workspace-users:{connection.pk}:{connection.workspace_gid}"
    remembered = cache.get(key)
    if remembered is not None:
        return remembered
    try:
        found: tuple[list[AsanaUser] | None, str] = (workspace_users(connection), "")
        seconds = settings.ASANA_USERS_CACHE_SECONDS
    except MappingError as exc:
        found = (None, str(exc))
        seconds = settings.ASANA_USERS_FAILURE_CACHE_SECONDS
    cache.set(key, found, seconds)
    return found


def mapping_problem(
    asana_user_gid: str,
    *,
    workspace: str,
    employee: str,
    current_gid: str | None,
    owner: str | None,
    users: Sequence[AsanaUser] | None,
    editing: bool = False,
) -> str | None:
    """Why mapping `employee` to `asana_user_gid` in `workspace` is refused, or None.

    The facts come from the caller, so a single mapping and a 30,000-row import decide
    alike: `current_gid` is the employee's Asana user there now (None: unmapped), `owner`
    the employee another mapping gives this GID to (None: nobody), `users` the workspace's
    users (None: not known), and `editing` is True only for the admin's form of the
    employee's own mapping. Names are for the sentence only.
    """
    if not re.fullmatch(r"\d{1,32}", asana_user_gid, re.ASCII):
        return (
            f"Asana user GID {asana_user_gid!r} is not a number: it must be a number (digits "
            "only), for example 1204567890123456."
        )
    if owner is not None:
        return (
            f"Asana user {asana_user_gid} is already mapped to {owner} in {workspace}; fix the "
            "GID, or remove that mapping in the admin first if it is wrong."
        )
    if current_gid not in (None, asana_user_gid) and not editing:
        return (
            f"{employee} is already mapped to Asana user {current_gid} in {workspace}; change "
            "or delete that mapping in the admin instead."
        )
    if users is not None and all(u.gid != asana_user_gid for u in users):
        return (
            f"No user with GID {asana_user_gid} is in the workspace {workspace}; pick one from "
            "the list, or check the GID in Asana."
        )
    return None


def check_mapping(
    connection: AsanaConnection,
    employee: Employee,
    asana_user_gid: str,
    *,
    users: Sequence[AsanaUser] | None,
    editing: AsanaMapping | None = None,
) -> AsanaMapping | None:
    """Apply `mapping_problem` to one mapping, reading the facts from the database; raises
    MappingError with its sentence. Returns the employee's mapping in that workspace, if
    any. `editing` is the mapping the admin's form changes (it may move to another GID)."""
    taken = (
        AsanaMapping.objects.filter(connection=connection, asana_user_gid=asana_user_gid)
        .exclude(employee_id=employee.pk)
        .select_related("employee")
        .first()
    )
    existing = (
        AsanaMapping.objects.filter(connection=connection, employee_id=employee.pk).first()
        if employee.pk
        else None
    )
    problem = mapping_problem(
        asana_user_gid,
        workspace=str(connection),
        employee=str(employee),
        current_gid=existing.asana_user_gid if existing else None,
        owner=str(taken.employee) if taken else None,
        users=users,
        editing=editing is not None and existing is not None and editing.pk == existing.pk,
    )
    if problem:
        raise MappingError(problem)
    return existing


def user_name(users: Sequence[AsanaUser] | None, asana_user_gid: str) -> str:
    """The name Asana gives the user `asana_user_gid`, or "" when not known."""
    return next((u.name for u in users or () if u.gid == asana_user_gid), "")


def map_employee(
    connection: AsanaConnection,
    employee: Employee,
    asana_user_gid: str,
    *,
    users: Sequence[AsanaUser] | None,
    actor: audit.Actor = None,
) -> AsanaMapping:
    """Map an employee to an Asana user of the connection's workspace, by the module's
    policy (`users`: the workspace's users when known, see `known_users`); an employee
    already mapped to that user is returned as is. Records `mapping.create`. Raises
    MappingError, with nothing written."""
    asana_user_gid = (asana_user_gid or "").strip()
    existing = check_mapping(connection, employee, asana_user_gid, users=users)
    if existing is not None:
        return existing
    name = user_name(users, asana_user_gid)
    try:
        with transaction.atomic():
            mapping = AsanaMapping.objects.create(
                connection=connection,
                employee=employee,
                asana_user_gid=asana_user_gid,
                asana_user_name=name[:255],
            )
            audit.record(
                Action.MAPPING_CREATE,
                target=str(mapping),
                detail=name,
                actor=actor,
                connection=connection,
            )
    except IntegrityError:
        # Someone mapped the same employee or user between our check and the insert.
        raise MappingError(
            f"{employee} or Asana user {asana_user_gid} was mapped meanwhile; reload the page."
        ) from None
    return mapping


def automap_by_email(
    connection: AsanaConnection, *, actor: audit.Actor = None
) -> tuple[list[AsanaMapping], list[Employee]]:
    """Map every unmapped employee whose email matches a workspace user's exactly, ignoring
    the case of A-Z only (`ascii_lower`: a look-alike such as the Kelvin sign never matches).
    Users already mapped are never given to a second employee. Records `mapping.automap`."""
    users = workspace_users(connection)
    taken = set(
        AsanaMapping.objects.filter(connection=connection).values_list("asana_user_gid", flat=True)
    )
    by_email: dict[str, AsanaUser] = {}
    for user in users:
        email = ascii_lower(user.email.strip())
        if email and user.gid not in taken:
            by_email.setdefault(email, user)
    mapped: list[AsanaMapping] = []
    remaining: list[Employee] = []
    with transaction.atomic():
        for employee in unmapped_employees(connection):
            same_email = by_email.pop(ascii_lower(employee.email.strip()), None)
            if same_email is None:
                remaining.append(employee)
                continue
            mapping = AsanaMapping.objects.create(
                connection=connection,
                employee=employee,
                asana_user_gid=same_email.gid,
                asana_user_name=same_email.name[:255],
            )
            mapped.append(mapping)
        audit.record(
            Action.MAPPING_AUTOMAP,
            target=str(connection),
            detail=(
                f"mapped {len(mapped)} by email: "
                + (", ".join(m.employee.email for m in mapped) or "none")
                + f"; {len(remaining)} remain unmapped"
            ),
            actor=actor,
            connection=connection,
        )
    return mapped, remaining
