"""Which Asana user each employee is: one mapping at a time, or by email for everyone."""

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from integrations import audit
from integrations.asana.client import client_for
from integrations.asana.errors import AsanaError
from integrations.audit import Action
from integrations.connect import ConnectError, explain, interactive, validate_gid
from integrations.models import AsanaConnection, AsanaMapping, Employee
from integrations.people.csv_import import CsvImportError, ImportReport, import_employees_csv
from pilotsite.untrusted import ascii_lower

__all__ = [
    "CsvImportError",
    "ImportReport",
    "MappingError",
    "automap_by_email",
    "import_employees_csv",
    "map_employee",
    "unmapped_employees",
    "workspace_users",
]


class MappingError(Exception):
    """A mapping was refused; the message says why and nothing was saved."""


def unmapped_employees(connection: AsanaConnection) -> QuerySet[Employee]:
    return Employee.objects.exclude(mappings__connection=connection).order_by("name", "email")


def workspace_users(connection: AsanaConnection) -> list[dict[str, str]]:
    """Every user of the connection's workspace (`gid`, `name`, `email`), all pages read."""
    try:
        with client_for(connection, **interactive()) as client:
            users = list(client.workspace_users(connection.workspace_gid))
    except AsanaError as exc:
        raise MappingError(f"Could not read the workspace's users: {explain(exc)}") from None
    # Items are objects (the client checks); a user without a usable GID is of no use here.
    return [
        {"gid": str(u["gid"]), "name": str(u.get("name") or ""), "email": str(u.get("email") or "")}
        for u in users
        if str(u.get("gid") or "").isdigit()
    ]


def check_mapping(
    connection: AsanaConnection, employee: Employee, asana_user_gid: str
) -> AsanaMapping | None:
    """Refuse a mapping that would clash; returns the employee's existing mapping, if any."""
    try:
        asana_user_gid = validate_gid(asana_user_gid, "Asana user GID")
    except ConnectError as exc:
        raise MappingError(str(exc)) from None
    taken = (
        AsanaMapping.objects.filter(connection=connection, asana_user_gid=asana_user_gid)
        .exclude(employee=employee)
        .select_related("employee")
        .first()
    )
    if taken is not None:
        raise MappingError(
            f"Asana user {asana_user_gid} is already mapped to {taken.employee} in "
            f"{connection}; remove that mapping first if it is wrong."
        )
    return AsanaMapping.objects.filter(connection=connection, employee=employee).first()


def map_employee(
    connection: AsanaConnection,
    employee: Employee,
    asana_user_gid: str,
    actor: AbstractBaseUser | None = None,
    *,
    asana_user_name: str = "",
) -> AsanaMapping:
    """Map an unmapped employee to an Asana user of the connection's workspace."""
    asana_user_gid = (asana_user_gid or "").strip()
    existing = check_mapping(connection, employee, asana_user_gid)
    if existing is not None:
        if existing.asana_user_gid == asana_user_gid:
            return existing
        raise MappingError(
            f"{employee} is already mapped to Asana user {existing.asana_user_gid} in "
            f"{connection}; change or delete that mapping in the admin instead."
        )
    try:
        with transaction.atomic():
            mapping = AsanaMapping.objects.create(
                connection=connection,
                employee=employee,
                asana_user_gid=asana_user_gid,
                asana_user_name=asana_user_name[:255],
            )
            audit.record(
                Action.MAPPING_CREATE,
                target=str(mapping),
                detail=asana_user_name,
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
    connection: AsanaConnection, actor: AbstractBaseUser | None = None
) -> tuple[list[AsanaMapping], list[Employee]]:
    """Map every unmapped employee whose email matches a workspace user's exactly, ignoring
    the case of A-Z only (`ascii_lower`: a look-alike such as the Kelvin sign never matches)."""
    users = workspace_users(connection)
    taken = set(
        AsanaMapping.objects.filter(connection=connection).values_list("asana_user_gid", flat=True)
    )
    by_email: dict[str, dict[str, str]] = {}
    for user in users:
        email = ascii_lower(user["email"].strip())
        if email and user["gid"] not in taken:
            by_email.setdefault(email, user)
    mapped: list[AsanaMapping] = []
    remaining: list[Employee] = []
    with transaction.atomic():
        for employee in unmapped_employees(connection):
            user = by_email.pop(ascii_lower(employee.email.strip()), None)
            if user is None:
                remaining.append(employee)
                continue
            mapping = AsanaMapping.objects.create(
                connection=connection,
                employee=employee,
                asana_user_gid=user["gid"],
                asana_user_name=user["name"][:255],
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
