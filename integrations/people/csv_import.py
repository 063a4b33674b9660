"""Import employees from a CSV file (`email,name[,asana_user_gid][,manager][,approver]`),
upserting by email.

One policy for the command line and the admin, in two steps:

- `plan_import` reads and validates the whole file against the database without writing: a
  file that cannot be read as that CSV raises `CsvImportError` (nothing is written, ever);
  otherwise each row gets its outcome (create, update, unchanged, rejected) and the reason.
  The admin shows this plan as the preview.
- `apply_plan` writes the accepted rows in batches of `EMPLOYEE_IMPORT_BATCH_ROWS`, one short
  transaction per batch, so a 30,000-row file never holds SQLite's write lock for long.
  Rows are upserts by email, so an import stopped half-way is finished by importing the same
  file again.

`import_employees_csv` is both steps at once.
"""

import csv
import io
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db import connection as db_connection
from django.utils import timezone

from integrations import audit
from integrations.audit import Action
from integrations.models import AsanaConnection, AsanaMapping, AuditLog, Employee
from integrations.people.mapping import AsanaUser, known_users, mapping_problem, user_name
from pilotsite.untrusted import ascii_lower

REQUIRED = ("email", "name")
OPTIONAL = ("asana_user_gid", "manager", "approver")
# The `approver` column (Employee.is_approver); an empty cell leaves it as it is.
APPROVER_VALUES = {"yes": True, "true": True, "1": True, "no": False, "false": False, "0": False}
MAX_EMAIL = Employee._meta.get_field("email").max_length
HEADER_HINT = (
    "the header must be `email,name` with optional `asana_user_gid`, `manager` and `approver` "
    "columns"
)


class CsvImportError(Exception):
    """The file as a whole is unusable; nothing was imported."""


class RowRejected(Exception):
    """One row cannot be imported; the message is the reason shown beside it."""


@dataclass
class RejectedRow:
    line: int
    email: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line} ({self.email or 'no email'}): {self.reason}"


@dataclass
class ImportReport:
    """What an import did: emails per outcome, and the rejected rows with their reasons."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    rejected: list[RejectedRow] = field(default_factory=list)
    # New employee-to-Asana-user mappings, "email → GID".
    mapped: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{len(self.created)} created, {len(self.updated)} updated, "
            f"{len(self.unchanged)} unchanged, {len(self.rejected)} rejected"
        )

    def sentence(self, file_name: str) -> str:
        """The audit row's text: "Imported people.csv: 2 created, … ; rejected line 3 (…): …"."""
        text = f"Imported {file_name}: {self.summary()}."
        if self.rejected:
            text += " Rejected " + "; ".join(str(r) for r in self.rejected) + "."
        if self.mapped:
            text += " Mapped to Asana users: " + ", ".join(self.mapped) + "."
        return text


class Outcome:
    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    REJECTED = "rejected"


@dataclass
class PlannedRow:
    """One data row of the file and what importing it would do (`reason` says why, or what
    changes for an update)."""

    line: int
    email: str
    name: str
    outcome: str
    reason: str = ""
    manager_id: int | None = None
    gid: str = ""
    employee_id: int | None = None
    # The `approver` cell: None when empty (unchanged).
    is_approver: bool | None = None
    # The row maps the employee to `gid` for the first time in this workspace.
    new_mapping: bool = False


@dataclass
class ImportPlan:
    """The validated file: every data row with its outcome. Nothing has been written."""

    file_name: str
    connection: AsanaConnection | None
    rows: list[PlannedRow]
    # The workspace's users the GIDs were checked against (None: not known).
    users: list[AsanaUser] | None = None

    def count(self, outcome: str) -> int:
        return sum(1 for row in self.rows if row.outcome == outcome)

    def counts(self) -> dict[str, int]:
        return {
            outcome: self.count(outcome)
            for outcome in (Outcome.CREATE, Outcome.UPDATE, Outcome.UNCHANGED, Outcome.REJECTED)
        }


def _read_text(path_or_file: str | os.PathLike | IO) -> tuple[str, str]:
    if isinstance(path_or_file, str | os.PathLike):
        name = os.fspath(path_or_file)
        try:
            with open(name, "rb") as handle:
                data: str | bytes = handle.read()
        except OSError as exc:
            raise CsvImportError(f"cannot read {name}: {exc.strerror}") from None
    else:
        name = getattr(path_or_file, "name", "upload")
        data = path_or_file.read()
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise CsvImportError(
                f"{name} is not UTF-8 text (invalid byte at position {exc.start}); "
                "save it as “CSV UTF-8” and try again"
            ) from None
    if "\x00" in data:
        raise CsvImportError(f"{name} is a binary file, not CSV; {HEADER_HINT}")
    return name, data


def _parse(text: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [h.strip().lower() for h in next(reader, [])]
        rows = [(reader.line_num, row) for row in reader if any(cell.strip() for cell in row)]
    except csv.Error as exc:
        raise CsvImportError(f"not a valid CSV file (line {reader.line_num}: {exc})") from None
    if not any(header):
        raise CsvImportError(f"the file is empty; {HEADER_HINT}")
    if len(header) == 1 and (separator := next((s for s in ";\t" if s in header[0]), None)):
        # Spreadsheets in many locales export CSV with semicolons.
        name = "semicolons" if separator == ";" else "tabs"
        raise CsvImportError(
            f"the columns are separated by {name}, not commas: export the file again as "
            f"“CSV (comma delimited)”; {HEADER_HINT}"
        )
    missing = [c for c in REQUIRED if c not in header]
    unknown = [c for c in header if c not in REQUIRED + OPTIONAL]
    if missing or unknown:
        problems = []
        if missing:
            problems.append("missing column(s) " + ", ".join(missing))
        if unknown:
            problems.append("unknown column(s) " + ", ".join(repr(c) for c in unknown))
        raise CsvImportError(f"{'; '.join(problems)}: {HEADER_HINT}")
    if len(set(header)) != len(header):
        raise CsvImportError(f"a column appears twice in the header; {HEADER_HINT}")
    return header, rows


def _resolve_connection(
    connection: AsanaConnection | None, wants_mapping: bool
) -> AsanaConnection | None:
    if connection is not None or not wants_mapping:
        return connection
    connections = list(AsanaConnection.objects.all()[:2])
    if not connections:
        raise CsvImportError(
            "the file has asana_user_gid values but no Asana workspace is connected: "
            "connect one first or remove that column"
        )
    if len(connections) > 1:
        raise CsvImportError(
            "the file has asana_user_gid values and several workspaces are connected: "
            "choose one (--workspace GID)"
        )
    return connections[0]


class _Planner:
    """Validates rows against what the database holds, read once up front (employees by email,
    the connection's mappings, the managers named), so planning 30,000 rows costs a handful
    of queries."""

    def __init__(
        self, connection: AsanaConnection | None, managers: set[str], wants_mapping: bool
    ) -> None:
        self.connection = connection
        # Keyed the way rows are read (A-Z folded only), so a look-alike never matches.
        self.employees = {
            ascii_lower(row["email"]): row
            for row in Employee.objects.values("id", "email", "name", "manager_id", "is_approver")
        }
        self.mapping_by_employee: dict[int, str] = {}
        self.owner_of_gid: dict[str, tuple[int, str]] = {}
        if connection is not None:
            for employee_id, gid, name, email in AsanaMapping.objects.filter(
                connection=connection
            ).values_list("employee_id", "asana_user_gid", "employee__name", "employee__email"):
                self.mapping_by_employee[employee_id] = gid
                self.owner_of_gid[gid] = (employee_id, f"{name} <{email}>")
        user_model = get_user_model()
        username = user_model.USERNAME_FIELD
        self.managers = dict(
            user_model.objects.filter(**{f"{username}__in": managers}).values_list(username, "pk")
        )
        self.seen_emails: dict[str, int] = {}
        self.seen_gids: dict[str, str] = {}
        # The workspace's users, to check GIDs by the mapping policy (None: not known).
        self.users: list[AsanaUser] | None = None
        if connection is not None and wants_mapping:
            self.users, _ = known_users(connection)

    def check_gid(self, gid: str, email: str, name: str, employee_id: int | None) -> None:
        """The file's own rule (one user per row), then the mapping policy every way of
        mapping follows (integrations.people.mapping.mapping_problem)."""
        if self.seen_gids.get(gid, email) != email:
            raise RowRejected(f"Asana user {gid} is already given to {self.seen_gids[gid]} above")
        owner = self.owner_of_gid.get(gid)
        problem = mapping_problem(
            gid,
            workspace=str(self.connection),
            employee=f"{name} <{email}>",
            current_gid=self.mapping_by_employee.get(employee_id) if employee_id else None,
            owner=owner[1] if owner is not None and owner[0] != employee_id else None,
            users=self.users,
        )
        if problem:
            raise RowRejected(problem)

    def row(self, line: int, values: dict[str, str]) -> PlannedRow:
        email = ascii_lower(values["email"])
        try:
            validate_email(email)
            if MAX_EMAIL is not None and len(email) > MAX_EMAIL:
                raise ValidationError("too long")
        except ValidationError:
            raise RowRejected(f"{values['email']!r} is not a valid email address") from None
        if email in self.seen_emails:
            raise RowRejected(f"duplicate of line {self.seen_emails[email]} (same email)")
        self.seen_emails[email] = line
        name = values["name"]
        if not name or len(name) > 200:
            raise RowRejected("the name must be 1 to 200 characters")
        manager_id = None
        if values.get("manager"):
            manager_id = self.managers.get(values["manager"])
            if manager_id is None:
                raise RowRejected(
                    f"unknown manager {values['manager']!r}: it must be a username in this site"
                )
        approver = values.get("approver", "").lower()
        if approver and approver not in APPROVER_VALUES:
            raise RowRejected(f"approver must be yes or no (or empty), not {values['approver']!r}")
        existing = self.employees.get(email)
        employee_id = existing["id"] if existing else None
        gid = values.get("asana_user_gid", "")
        if gid:
            self.check_gid(gid, email, existing["name"] if existing else name, employee_id)
            self.seen_gids[gid] = email
        planned = PlannedRow(line, email, name, Outcome.CREATE, "", manager_id, gid, employee_id)
        planned.is_approver = APPROVER_VALUES.get(approver)
        # The mapping policy refused any other GID for an employee already mapped.
        planned.new_mapping = bool(gid) and employee_id not in self.mapping_by_employee
        if existing is None:
            return planned
        changes = []
        if existing["name"] != name:
            changes.append("name")
        if manager_id is not None and existing["manager_id"] != manager_id:
            changes.append("manager")
        if gid and self.mapping_by_employee.get(existing["id"]) != gid:
            changes.append("Asana user")
        if planned.is_approver is not None and existing["is_approver"] != planned.is_approver:
            changes.append("approver")
        planned.outcome = Outcome.UPDATE if changes else Outcome.UNCHANGED
        planned.reason = ("changes " + ", ".join(changes)) if changes else ""
        return planned


def plan_import(
    path_or_file: str | os.PathLike | IO, *, connection: AsanaConnection | None = None
) -> ImportPlan:
    """Read and validate the whole CSV; return each row's outcome. Writes nothing.

    Raises CsvImportError when the file as a whole is unusable (not UTF-8, not CSV, wrong
    header, GIDs with no workspace to map them in).
    """
    name, text = _read_text(path_or_file)
    header, rows = _parse(text)
    records = [
        (line, dict(zip(header, (cell.strip() for cell in row), strict=False)), len(row))
        for line, row in rows
    ]
    wants_mapping = any(values.get("asana_user_gid") for _, values, _ in records)
    planner = _Planner(
        _resolve_connection(connection, wants_mapping),
        {values["manager"] for _, values, _ in records if values.get("manager")},
        wants_mapping,
    )
    planned = []
    for line, values, width in records:
        try:
            if width > len(header):
                raise RowRejected(f"{width} fields but the header has {len(header)}")
            planned.append(planner.row(line, {column: values.get(column, "") for column in header}))
        except RowRejected as exc:
            email = values.get("email", "")
            planned.append(
                PlannedRow(line, email, values.get("name", ""), Outcome.REJECTED, str(exc))
            )
    return ImportPlan(os.path.basename(name), planner.connection, planned, planner.users)


# SQLite grants its write lock to whoever asks first after it is released, and a writer that
# waits (busy timeout) only retries every 100 ms once it has waited a while: an import that
# starts its next batch at once would keep webhooks and pollers out for the whole import.
# Pausing this long between batches lets each waiting writer in.
SQLITE_BATCH_PAUSE = 0.1


def _batches(rows: list[PlannedRow], size: int) -> Iterator[list[PlannedRow]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _write_batch(
    batch: list[PlannedRow],
    connection: AsanaConnection | None,
    users: list[AsanaUser] | None,
) -> None:
    """One transaction: the batch's new employees, changed employees and their mappings."""
    now = timezone.now()
    new = [
        Employee(
            email=row.email,
            name=row.name,
            manager_id=row.manager_id,
            is_approver=bool(row.is_approver),
        )
        for row in batch
        if row.outcome == Outcome.CREATE
    ]
    Employee.objects.bulk_create(new)
    created_ids = iter(employee.pk for employee in new)
    for row in batch:
        if row.outcome == Outcome.CREATE:
            row.employee_id = next(created_ids)
    changed = [row for row in batch if row.outcome == Outcome.UPDATE]
    existing = Employee.objects.in_bulk([row.employee_id for row in changed])
    for row in changed:
        employee = existing[row.employee_id]
        employee.name = row.name
        if row.manager_id is not None:
            employee.manager_id = row.manager_id
        if row.is_approver is not None:
            employee.is_approver = row.is_approver
        employee.updated_at = now
    Employee.objects.bulk_update(
        existing.values(), ["name", "manager", "is_approver", "updated_at"]
    )
    with_gid: dict[int, str] = {}
    for row in batch:
        if row.gid:
            assert row.employee_id is not None  # created above, or already stored
            with_gid[row.employee_id] = row.gid
    if not with_gid or connection is None:
        return
    # The plan refused every change of an existing mapping (the mapping policy); an employee
    # mapped meanwhile makes the insert collide, and the batch is rejected as a whole.
    mapped = set(
        AsanaMapping.objects.filter(connection=connection, employee_id__in=with_gid).values_list(
            "employee_id", flat=True
        )
    )
    AsanaMapping.objects.bulk_create(
        AsanaMapping(
            connection=connection,
            employee_id=employee_id,
            asana_user_gid=gid,
            asana_user_name=user_name(users, gid)[:255],
        )
        for employee_id, gid in with_gid.items()
        if employee_id not in mapped
    )


def apply_plan(
    plan: ImportPlan, *, actor: audit.Actor = None, batch_rows: int | None = None
) -> ImportReport:
    """Write the plan's accepted rows, `batch_rows` (default EMPLOYEE_IMPORT_BATCH_ROWS) per
    transaction, and record one audit row. A batch that collides with a change made since
    the plan was read (a unique email or Asana user taken meanwhile) is rejected as a whole,
    with that reason; importing the file again picks those rows up."""
    size = batch_rows or settings.EMPLOYEE_IMPORT_BATCH_ROWS
    report = ImportReport()
    by_outcome = {
        Outcome.CREATE: report.created,
        Outcome.UPDATE: report.updated,
        Outcome.UNCHANGED: report.unchanged,
    }
    rejected = {row.line: row for row in plan.rows if row.outcome == Outcome.REJECTED}
    to_write = [row for row in plan.rows if row.outcome in (Outcome.CREATE, Outcome.UPDATE)]
    pause = SQLITE_BATCH_PAUSE if db_connection.vendor == "sqlite" else 0
    for number, batch in enumerate(_batches(to_write, size)):
        if number and pause:
            time.sleep(pause)
        try:
            with transaction.atomic():
                _write_batch(batch, plan.connection, plan.users)
        except IntegrityError:
            for row in batch:
                row.outcome = Outcome.REJECTED
                row.reason = (
                    "changed by someone else during the import (same email or Asana user); "
                    "import the file again"
                )
                rejected[row.line] = row
    for row in plan.rows:
        if row.outcome in by_outcome:
            by_outcome[row.outcome].append(row.email)
        if row.outcome in (Outcome.CREATE, Outcome.UPDATE) and row.gid and row.new_mapping:
            report.mapped.append(f"{row.email} → {row.gid}")
    report.rejected = [
        RejectedRow(row.line, row.email, row.reason) for _, row in sorted(rejected.items())
    ]
    audit.record(
        Action.EMPLOYEES_IMPORT,
        target=plan.file_name,
        outcome=AuditLog.Outcome.WARNING if report.rejected else AuditLog.Outcome.OK,
        detail=report.sentence(plan.file_name),
        actor=actor,
        connection=plan.connection,
    )
    return report


def import_employees_csv(
    path_or_file: str | os.PathLike | IO,
    *,
    connection: AsanaConnection | None = None,
    actor: audit.Actor = None,
) -> ImportReport:
    """Plan and apply in one go (`manage.py employees import`); raises CsvImportError for a
    malformed file, before anything is written."""
    return apply_plan(plan_import(path_or_file, connection=connection), actor=actor)
